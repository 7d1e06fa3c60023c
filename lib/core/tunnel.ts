import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import { litefsError } from './answers.js'
import { clientGone, closeSource } from './client-gone.js'
import { LitefsHttpError, reasonOf } from './errors.js'
import type { ForwardResult } from './forward.js'
import { MAX_ANSWER_HEAD } from './forward-agent.js'
import type { ForwardedView } from './forwarded-headers.js'
import { requestHeaders, responseHeaders } from './hop-by-hop.js'
import type { Tunnels } from './tunnels.js'
import type { UpgradeSocket } from './upgrade-socket.js'

// A WebSocket handshake sent on, Upgrade and all, to another server: the
// primary's (a handshake on a path that writes, arriving on a replica), or,
// behind `serve`, the app. On 101 the two connections are piped both ways and
// the client's socket is the tunnel's for good; any other answer is relayed as
// an answer on the client's response. What reaches `tunnel` is decided
// elsewhere (write-path.ts sends an upgrade here instead of forward.ts; the
// entries that know the raw socket mark the request: upgrade-socket.ts).
// Failures are classified as forward.ts's: a connection refused sent nothing (the write
// path tries again), anything later is not retried. The connection to the
// other side is Node's own client (undici's upgrade() takes any answer but a
// 101 for an error, so a refusal could not be relayed), one per handshake,
// without an Agent: a tunnel holds its connection as long as the WebSocket lives,
// or until closing ends it (tunnels.ts).

export interface TunnelRequest {
  req: IncomingMessage
  /** The response assigned to the client's socket: a declined handshake's answer goes here. */
  res: ServerResponse
  upgrade: UpgradeSocket
  /** The request target to ask for. */
  path: string
  /** `http://host:port` (or https) of the other side. */
  origin: string
  view: ForwardedView
  /** The loop-guard marker; none behind `serve` (the app is local). */
  marker?: string
  /** How long the other side may take to answer (ms); 0: as long as it takes. */
  timeout: number
  /** Who the other side is, in messages: `the primary at …`, `the app at …`. */
  label: string
  /** Called once, just before the other side's answer is written to the client. */
  takeOver: () => void
  /** Where a tunnel, once piped, is kept, so that closing ends it (tunnels.ts). */
  tunnels: Tunnels
}

/** Send the handshake on; pipe on 101, relay any other answer. */
export async function tunnel (t: TunnelRequest): Promise<ForwardResult> {
  const { req, res } = t
  const client = t.upgrade.socket
  if (clientGone(res)) return { outcome: 'gone' }
  // The headers any forward sends (this hop's own dropped, this node's account
  // of the client added), and the handshake's Connection and Upgrade again.
  const headers = requestHeaders(req, t.view, t.marker, t.timeout)
  headers.connection = 'Upgrade'
  headers.upgrade = req.headers.upgrade as string
  const url = new URL(t.origin)
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise<ForwardResult>(resolve => {
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const closes = closeSource(res)
    const done = (result: ForwardResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      closes.off('close', gone)
      resolve(result)
    }
    // The client left before the other side answered: the handshake goes with it.
    const gone = (): void => {
      up.destroy()
      done({ outcome: 'gone' })
    }
    // Node's client checks an answer's head as its server's parser did; a head as large as browsers take is read.
    const up = send({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port, // '': the scheme's own
      method: 'GET',
      path: t.path,
      headers,
      setHost: false,
      agent: false,
      maxHeaderSize: MAX_ANSWER_HEAD
    })
    let connected = false
    up.once('socket', (s: Socket) => { s.once('connect', () => { connected = true }) })
    closes.once('close', gone)
    if (t.timeout > 0) {
      timer = setTimeout(() => {
        up.destroy()
        done({ outcome: 'failed', retry: false, error: litefsError('LITEFS_FORWARD_TIMEOUT', `${t.label} did not answer the WebSocket handshake within ${t.timeout} ms`) })
      }, t.timeout)
    }
    up.once('upgrade', (answer: IncomingMessage, other: Socket, otherHead: Buffer) => {
      t.takeOver()
      closes.off('close', gone)
      res.detachSocket(client as Socket)
      t.upgrade.switched?.(res)
      let text = `HTTP/1.1 101 ${answer.statusMessage as string}\r\n`
      for (let i = 0; i < answer.rawHeaders.length; i += 2) text += `${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}\r\n`
      client.write(text + '\r\n', 'latin1')
      if (otherHead.length > 0) client.write(otherHead)
      const early = t.upgrade.take()
      if (early.length > 0) other.write(early)
      other.pipe(client)
      client.pipe(other)
      other.once('error', () => client.destroy())
      client.once('error', () => other.destroy())
      other.once('close', () => client.destroy())
      client.once('close', () => other.destroy())
      t.tunnels.add(client, other)
      done({ outcome: 'sent' })
    })
    up.once('response', (answer: IncomingMessage) => {
      // Declined: an ordinary answer, relayed as any; cut short, the client's connection is cut too.
      clearTimeout(timer)
      t.takeOver()
      res.writeHead(answer.statusCode as number, responseHeaders(answer.rawHeaders.map(s => Buffer.from(s, 'latin1'))).headers)
      answer.pipe(res)
      answer.once('close', () => { if (!answer.complete) client.destroy() })
      done({ outcome: 'sent' })
    })
    up.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'HPE_HEADER_OVERFLOW') {
        return done({ outcome: 'failed', retry: false, error: litefsError('LITEFS_ANSWER_TOO_LARGE', `${t.label} answered the WebSocket handshake with a head larger than ${MAX_ANSWER_HEAD} bytes`) })
      }
      if (!connected) {
        // Nothing was sent: another attempt, or another primary, may take it.
        const error = new LitefsHttpError(503, 'LITEFS_NO_PRIMARY', `${t.label} could not be reached (${reasonOf(err)})`, { 'retry-after': '1' })
        return done({ outcome: 'failed', retry: true, error, ...(err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? { unresolved: true as const } : {}) })
      }
      done({ outcome: 'failed', retry: false, error: litefsError('LITEFS_FORWARD_FAILED', `${t.label} failed before answering the WebSocket handshake (${reasonOf(err)})`) })
    })
    up.end()
  })
}
