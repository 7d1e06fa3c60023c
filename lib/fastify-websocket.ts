import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { isWebSocket, markUpgrade, type UpgradeSocket } from './core/upgrade-socket.js'

// The Fastify plugin and @fastify/websocket: that plugin takes the server's
// 'upgrade' event and routes the handshake through Fastify (its hooks, its
// router), with a ServerResponse standing on the raw socket, and keeps that
// socket and the handshake's `head` on the raw request under two symbols of
// its own (`ws-socket`, `ws-head`), which it does not export. The onRequest
// hook decides the handshake as any request, and may answer it before that
// plugin's own hooks ran; this finds the raw connection so that the handshake
// is watched while held, tunnelled when it writes (upgrade-socket.ts,
// tunnel.ts), and ended after an answer that is not a 101; and it puts back,
// for the route's `ws`, what the client sent meanwhile.

type Raw = IncomingMessage & Record<symbol, unknown>

/** @fastify/websocket's symbol on `raw` named `name`, if there. */
function symbolOf (raw: Raw, name: string): symbol | undefined {
  return Object.getOwnPropertySymbols(raw).find(s => s.description === name)
}

/**
 * A handshake @fastify/websocket routes: watch its socket (markUpgrade), and
 * end the connection with an answer given instead of a 101 (litefs-proxy's own,
 * or the primary's refusal relayed): nothing reads that socket as HTTP any
 * more. Anything else: undefined, at the cost of one header read.
 */
export function fastifyUpgrade (req: IncomingMessage, res: ServerResponse): UpgradeSocket | undefined {
  if (req.headers.upgrade === undefined || !isWebSocket(req)) return undefined
  const raw = req as Raw
  const socketKey = symbolOf(raw, 'ws-socket')
  const headKey = symbolOf(raw, 'ws-head')
  if (socketKey === undefined || headKey === undefined) return undefined
  const socket = raw[socketKey] as Duplex
  const marked = markUpgrade(req, socket, raw[headKey] as Buffer)
  res.shouldKeepAlive = false
  res.once('finish', () => { socket.end() })
  return {
    socket: marked.socket,
    take: () => {
      const head = marked.take()
      raw[headKey] = head // what @fastify/websocket hands to ws with the socket
      return head
    }
  }
}
