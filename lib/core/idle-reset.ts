import type { Server } from 'node:http'
import type { Socket } from 'node:net'

// A replica forwarding a write over a kept-alive connection that the primary's
// server closes as idle, at that very instant, cannot tell whether the write was
// applied if the primary closed with a FIN (that is also how a server that read
// the request and then died looks). With a reset (RST) it can: TCP resets a
// connection that receives data after its owner reset it, unread — and the
// replica retries. So a litefs-proxy app that shuts down gracefully resets its
// idle connections itself, just before its server closes them.
//
// Node keeps the list `server.closeIdleConnections()` closes under a symbol
// (lib/_http_server.js, Node ≥ 18.2): it is used here, and where it is missing
// nothing happens (the server's own close then closes them with a FIN).
//
// Only a connection that is wholly open is reset. One whose client half-closed
// is already being closed by Node's server (it ends its side at once): libuv
// refuses to reset a TCP handle it is shutting down, Node then never frees the
// handle, and the process never exits, spinning (issue 18). Nothing can race
// on such a connection anyway: its client sends no more. Only TCP handles can
// be reset: on a TLS connection or a Unix socket Node throws
// ERR_INVALID_HANDLE_TYPE. Those are left to the server's close (a FIN).

type Connection = Socket & { _httpMessage?: { finished?: boolean } | null }
interface Connections { idle: () => Array<{ socket: Connection }>, all: () => Array<{ socket: Connection }> }

/** Node's list of `server`'s HTTP/1.1 connections (undefined: none, or a Node without it). */
export function connectionsOf (server: Server | undefined): Connections | undefined {
  if (server === undefined) return undefined
  const key = Object.getOwnPropertySymbols(server).find(s => s.description === 'http.server.connections')
  const list = key === undefined ? undefined : (server as unknown as Record<symbol, Connections | undefined>)[key]
  return list === undefined || typeof list.idle !== 'function' || typeof list.all !== 'function' ? undefined : list
}

/** Whether `socket` can be reset now: a plain TCP connection open both ways. */
function resettable (socket: Connection): boolean {
  // Ended (Node ends its side as soon as the client half-closes) or destroyed: not writable.
  if (!socket.writable) return false
  // TLS (TLSWrap) and Unix sockets (Pipe) cannot be reset: Node throws.
  if ((socket as unknown as { _handle: object })._handle.constructor.name !== 'TCP') return false // open: it has its handle
  const message = socket._httpMessage
  return message === undefined || message === null || message.finished === true // else an answer still going out
}

/** Reset `server`'s idle keep-alive connections (those `closeIdleConnections()` would close). Returns how many. */
export function resetIdleConnections (server: Server | undefined): number {
  const list = connectionsOf(server)
  if (list === undefined) return 0
  let reset = 0
  for (const { socket } of list.idle()) {
    if (!resettable(socket)) continue
    socket.resetAndDestroy()
    reset++
  }
  return reset
}
