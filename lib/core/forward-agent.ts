import type { IncomingMessage } from 'node:http'
import { Agent } from 'undici'
import { answerKeepingConnector } from './early-answer.js'

// The undici Agents a forward goes out on (to the primary, or from `serve` to
// its app), one per protocol the other side may speak. Both read answers as a
// browser would: a response head up to 256 KiB (Chrome's limit; undici's
// default, Node's 16 KiB, turned a sign-in setting 24 KB of cookies into a 502
// after the primary had committed it); an answer that arrives while the body is
// still being sent is read even if the server then resets the connection
// (early-answer.ts).
//
// Which protocol: the `forwardProtocol` option, else the one this node's own
// server spoke for the request being forwarded. Replica and primary run the
// same app: a node whose server speaks only HTTP/2 without TLS (Fastify
// `http2: true`, `http2.createServer`; what a balancer sending h2c to its
// backends needs) has a primary that speaks only that too, and an HTTP/1.1
// request would get no answer from it. Over TLS, HTTP/2 is offered by ALPN
// beside HTTP/1.1, so the primary's server chooses.

export type ForwardProtocol = 'http1' | 'http2'

/** The protocol to speak to the primary for `req`: the option, else what this node's server spoke for it. */
export function protocolFor (option: ForwardProtocol | undefined, req: IncomingMessage): ForwardProtocol {
  return option ?? (req.httpVersionMajor === 2 ? 'http2' : 'http1')
}

/** The largest response head forwarded, in bytes: what browsers accept (Chrome: 256 KiB). */
export const MAX_ANSWER_HEAD = 256 * 1024

/** How long a connection to the primary (or the app) may take to open. */
const CONNECT_TIMEOUT = 2000

export interface ForwardAgents {
  /** HTTP/1.1 (over TLS for an https: origin). */
  http1: Agent
  /** HTTP/2: prior knowledge (h2c) for an http: origin, negotiated by ALPN for https:. */
  http2: Agent
  close: () => Promise<void>
}

/** `idleReset`: told the origin of a connection the other side reset while idle (a litefs-proxy closing: primary-closing.ts). */
export function forwardAgents (idleReset?: (origin: string) => void): ForwardAgents {
  const http1 = new Agent({ maxHeaderSize: MAX_ANSWER_HEAD, connect: answerKeepingConnector({ timeout: CONNECT_TIMEOUT }, idleReset) })
  const http2 = new Agent({ maxHeaderSize: MAX_ANSWER_HEAD, allowH2: true, connect: answerKeepingConnector({ timeout: CONNECT_TIMEOUT, allowH2: true, useH2c: true } as Parameters<typeof answerKeepingConnector>[0], idleReset) })
  return { http1, http2, close: async () => { await Promise.all([http1.close(), http2.close()]) } }
}
