import type { Socket } from 'node:net'

// Whether a forward's connection had carried earlier answers when the other
// side reset it, before any answer to this request. That is the one reset a
// write may be sent again after: a litefs-proxy resets its idle keep-alive
// connections when it closes (idle-reset.ts), so a request sent on one at that
// instant is discarded unread. Any other reset proves nothing: an app that read
// the head, committed, and died with the rest of the body unread in its kernel
// buffer resets the connection too (Gunicorn's workers do, killed after a
// commit) — and a first request on a fresh connection cannot have met an idle
// close. Counted in bytes of HTTP (what the client's parser reads, after TLS),
// not of the wire: a TLS handshake or session ticket is no answer.

const reused = new WeakSet<object>()

/**
 * Watch `socket` (one the forwarder's connector made) so that its errors say
 * whether it was reused. `idleReset`: called when the other side resets it
 * after an answer, with no request sent since — as a closing litefs-proxy
 * resets its idle connections (idle-reset.ts): the first word a replica gets
 * of its primary closing (primary-closing.ts).
 */
export function watchReuse (socket: Socket, idleReset?: () => void): Socket {
  let answered = 0 // bytes of answers read on this connection so far
  let answeredAtWrite = 0 // as it was when this connection last sent something
  const read = socket.read
  socket.read = function (this: Socket, size?: number) {
    const chunk = read.call(this, size) as Buffer | string | null
    if (chunk !== null) answered += chunk.length
    return chunk
  }
  const write = socket.write as (...args: unknown[]) => boolean
  socket.write = function (this: Socket, ...args: unknown[]) {
    answeredAtWrite = answered
    return write.apply(this, args)
  } as Socket['write']
  // Added before the client's own listener: the error is marked before any request hears of it.
  // Earlier answers, and not a byte of one since this request was sent.
  socket.on('error', err => {
    if (answeredAtWrite > 0 && answered === answeredAtWrite) reused.add(err)
    else if (answered > answeredAtWrite && (err as { code?: string }).code === 'ECONNRESET') idleReset?.()
  })
  return socket
}

/** The connection `err` ended had answered earlier requests, and nothing of the one it failed (see above). */
export function failedOnReusedConnection (err: unknown): boolean {
  return reused.has(err as object) // false for anything not marked, non-objects included
}
