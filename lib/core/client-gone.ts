import type { ServerResponse } from 'node:http'

/**
 * Whether the client of `res` has gone away already (its 'close' event, if any,
 * is past: listeners added now would never hear it). HTTP/1.1: the response or
 * its socket is destroyed, or the socket was detached (null); HTTP/2 (node:http2's
 * compatibility response): its stream is destroyed or closed — a client may reset
 * one stream and keep its connection.
 */
export function clientGone (res: ServerResponse): boolean {
  const stream = (res as { stream?: { destroyed: boolean, closed: boolean } }).stream
  if (stream !== undefined) return stream.destroyed || stream.closed
  return res.destroyed === true || res.socket === null || res.socket?.destroyed === true
}
