import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

// An upgrade (a WebSocket handshake) or a CONNECT pipelined behind another
// request on one connection. Node hands its socket over (the server's
// 'upgrade' or 'connect' event) as soon as it has parsed the head, while the
// answer to the request before it may still be on its way out — a read held
// for its TXID, a write at the app — its response still assigned to the
// socket. Standing a response on that socket then threw
// ERR_HTTP_SOCKET_ASSIGNED from the event: an uncaught exception, so one
// client's two pipelined requests ended the process. And writing on it at
// once put this answer in that one's place (`serve`'s 501 to a CONNECT
// behind a POST: the write applied, its client told nothing reached the
// app). HTTP/1.1 answers in order: this request waits until the answer
// before it has gone out. Deciding it is its entry's (node-upgrade.ts,
// sidecar/upgrade.ts, sidecar/connect.ts).

/** The response Node's server has on a socket now; Node keeps it there (`_httpMessage`) until it has gone out. */
type HttpSocket = Duplex & { _httpMessage?: ServerResponse | null }

/** Run `next` once no earlier answer is going out on `socket`; never if the connection ends first (its client is gone). */
export function afterAnswerInFlight (socket: Duplex, next: () => void): void {
  const inFlight = (socket as HttpSocket)._httpMessage
  if (inFlight === undefined || inFlight === null) {
    next()
    return
  }
  // Node took its own error listener off the socket with its parser: an error meanwhile must not be uncaught.
  const ignore = (): void => {}
  socket.on('error', ignore)
  // 'close' comes once the answer has gone (Node detached it from the socket first) or its connection ended.
  inFlight.once('close', () => {
    socket.removeListener('error', ignore)
    if (!socket.destroyed) next()
  })
}
