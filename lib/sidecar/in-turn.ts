import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { clientGone, whenClosed } from '../core/client-gone.js'

// Requests pipelined on one client connection (RFC 9112 §9.3) reach the app
// one at a time, in the order sent, as they would without serve: Node's server
// hands them all over at once, and sent on at once each would go out on a
// connection of its own, run concurrently — a read pipelined behind a write
// could run before it — and open as many connections to the app as the client
// pipelined. So a request is decided (held, forwarded, sent to the app) only
// once the answer before it on its connection is over, as nginx does. Requests
// on a connection that is not pipelining never wait.

/** Per connection: whether a request is being answered, and the ones behind it. */
interface Turns {
  busy: boolean
  waiting: Array<() => boolean>
}

/** Run `start` for `res` now, or once every earlier request on its connection is answered (or its client gone). */
export type InTurn = (res: ServerResponse, start: () => void) => void

export function oneAtATime (): InTurn {
  const connections = new WeakMap<Socket, Turns>()
  return (res, start) => {
    const socket = res.req.socket
    let turns = connections.get(socket)
    if (turns === undefined) {
      turns = { busy: false, waiting: [] }
      connections.set(socket, turns)
    }
    const t = turns
    // Whether it started: a request whose client left while it waited is skipped.
    const run = (): boolean => {
      if (clientGone(res)) return false
      t.busy = true
      whenClosed(res, () => { next(t) })
      start()
      return true
    }
    if (t.busy) t.waiting.push(run)
    else run()
  }
}

/** The turn passes to the first request waiting that can still start. */
function next (t: Turns): void {
  t.busy = false
  for (let run = t.waiting.shift(); run !== undefined; run = t.waiting.shift()) if (run()) return
}
