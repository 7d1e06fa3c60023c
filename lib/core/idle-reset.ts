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

interface Connections { idle: () => Array<{ socket: Socket & { _httpMessage?: { finished?: boolean } } }> }

/** Reset `server`'s idle keep-alive connections (those `closeIdleConnections()` would close). Returns how many. */
export function resetIdleConnections (server: Server | undefined): number {
  if (server === undefined) return 0
  const key = Object.getOwnPropertySymbols(server).find(s => s.description === 'http.server.connections')
  const list = key === undefined ? undefined : (server as unknown as Record<symbol, Connections | undefined>)[key]
  if (list === undefined || typeof list.idle !== 'function') return 0
  let reset = 0
  for (const { socket } of list.idle()) {
    if (socket._httpMessage !== undefined && socket._httpMessage !== null && socket._httpMessage.finished !== true) continue // an answer still going out
    socket.resetAndDestroy()
    reset++
  }
  return reset
}
