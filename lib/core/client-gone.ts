import type { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'

// Whether, and when, the client of a response has left. One case needs care:
// a request pipelined behind another on an HTTP/1.1 connection. Its response
// has no socket until the answer before it is sent (`res.socket === null`),
// and when the connection ends first Node destroys the queued request but
// never closes the queued response: only the connection says it.

/**
 * Whether the client of `res` has gone away already (its 'close' event, if any,
 * is past: listeners added now would never hear it). HTTP/1.1: the response or
 * its connection is destroyed (a pipelined response still queued: its request's
 * connection); HTTP/2 (node:http2's compatibility response): its stream is
 * destroyed or closed — a client may reset one stream and keep its connection.
 */
export function clientGone (res: ServerResponse): boolean {
  const stream = (res as { stream?: { destroyed: boolean, closed: boolean } }).stream
  if (stream !== undefined) return stream.destroyed || stream.closed
  if (res.destroyed === true) return true
  const socket = res.socket === null ? res.req?.socket : res.socket // null: queued behind an earlier answer, no socket of its own yet
  return socket === null || socket?.destroyed === true
}

/** What `closeSource` gives: listeners of 'close', added and removed. */
export interface CloseSource {
  on: (event: 'close', listener: () => void) => unknown
  once: (event: 'close', listener: () => void) => unknown
  off: (event: 'close', listener: () => void) => unknown
}

/**
 * What emits 'close' when the client of `res` leaves: `res` itself, or, for a
 * pipelined response still queued behind an earlier answer, its connection
 * (see above). Listeners added there are the caller's to remove.
 */
export function closeSource (res: ServerResponse): CloseSource {
  return res.socket === null && !res.destroyed && res.req?.socket != null ? connectionClose(res.req.socket) : res
}

// Every request queued on one connection listens for its end — in serve three
// times (its wait, the open set, the access log) — and a connection may carry
// any number of them: one listener each on the socket would pass
// EventEmitter's limit and print MaxListenersExceededWarning. So the socket
// gets one listener, which calls theirs.
const connections = new WeakMap<EventEmitter, CloseSource>()

function connectionClose (socket: EventEmitter): CloseSource {
  let source = connections.get(socket)
  if (source !== undefined) return source
  const listeners = new Set<() => void>()
  socket.once('close', () => {
    for (const listener of listeners) listener() // each removes itself, or is the last call anyway
    listeners.clear()
  })
  const add = (_event: 'close', listener: () => void): void => { listeners.add(listener) }
  source = { on: add, once: add, off: (_event, listener) => listeners.delete(listener) }
  connections.set(socket, source)
  return source
}

/**
 * Call `done` once, when `res` closes — answered in full, or its client gone,
 * a queued pipelined response's included — and never later than that.
 */
export function whenClosed (res: ServerResponse, done: () => void): void {
  const source = closeSource(res)
  if (source === res) {
    res.once('close', done)
    return
  }
  const once = (): void => { // each listener removes both: called once
    source.off('close', once)
    res.off('close', once)
    done()
  }
  source.once('close', once)
  res.once('close', once)
}
