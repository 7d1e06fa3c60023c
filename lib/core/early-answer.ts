import type { Socket } from 'node:net'
import { buildConnector } from 'undici'
import { watchReuse } from './reused-connection.js'

// A server may answer before it has read the whole request body (413 over its
// body limit, 401, a redirect) and close the connection at once: with the rest
// of the upload unread, its kernel resets the connection. The next body chunk
// the forwarder writes then fails (EPIPE, ECONNRESET), and Node destroys the
// socket at once, taking the answer that had already arrived, unread, with it
// (undici reports only the write error: a 502 where the server said 413). Go's
// server lingers before it closes; Node's does not, nor do many others.
//
// So the sockets the forwarder uses stop writing when a write fails, and keep
// reading: the kernel hands over what the server sent before its reset, then
// the reset itself. undici parses that answer (an answer that completes while
// the body is still being sent ends the request; a reset after an answer head
// of a closing connection ends it as received). The failed write took the
// kernel's report of the reset with it, so the read side then sees a plain end
// of stream: that end is reported as the write's error instead, never as a
// clean close ("other side closed"), which would tell the forwarder the server
// may have read the request. A reset before any answer stays what it was (what
// it proves: reused-connection.ts).

const GONE = new Set(['EPIPE', 'ECONNRESET'])

type WriteGeneric = (writev: boolean, data: unknown, encoding: string, cb: (err?: Error | null) => void) => unknown

/** Make `socket` keep reading after a write fails because its peer reset or closed the connection. */
export function readAfterWriteFailure (socket: Socket): Socket {
  const guarded = socket as Socket & { _writeGeneric: WriteGeneric }
  const write = guarded._writeGeneric
  let failed: Error | undefined
  guarded._writeGeneric = function (this: Socket, writev, data, encoding, cb) {
    if (failed !== undefined) { cb(); return } // the peer is gone: what it sent is still being read
    return write.call(this, writev, data, encoding, err => {
      if (err !== null && err !== undefined && GONE.has((err as NodeJS.ErrnoException).code ?? '')) {
        failed = err
        cb()
        return
      }
      cb(err)
    })
  }
  // Before undici's own 'end' listener (it is added once connected).
  socket.on('end', () => { if (failed !== undefined) socket.destroy(failed) })
  return socket
}

/**
 * undici's connector, with every socket it makes guarded as above and watched
 * for reuse (for an Agent's `connect` option). `idleReset`: told the origin
 * (as URL.origin) of a connection reset while idle (reused-connection.ts).
 */
export function answerKeepingConnector (options: buildConnector.BuildOptions, idleReset?: (origin: string) => void): buildConnector.connector {
  const connect = buildConnector(options)
  return (opts, callback) => {
    connect(opts, (err, socket) => {
      if (err === null && socket !== null) {
        const origin = `${opts.protocol}//${opts.host as string}` // undici's URL.host: the port unless the scheme's own
        callback(null, readAfterWriteFailure(watchReuse(socket as Socket, idleReset === undefined ? undefined : () => { idleReset(origin) })))
      } else callback(err as Error, null)
    })
  }
}
