import type { Server, ServerResponse } from 'node:http'
import { Http2Sessions } from './h2-sessions.js'
import { resetIdleConnections } from './idle-reset.js'
import { markLastAnswers } from './last-answer.js'
import type { NodeState, Waiter } from './node-state.js'
import { Tunnels } from './tunnels.js'

// One core's life after its start: the requests it holds (so closing can
// answer them), the requests pausing between two connection attempts to a
// primary (so closing can wake them), the server and HTTP/2 sessions requests
// arrive on (so closing can close idle connections: idle-reset.ts,
// h2-sessions.ts), the WebSocket connections it tunnels (so closing can end
// them: tunnels.ts), and closing itself. Holding is hold.ts's and retrying is
// write-path.ts's: this only keeps track, and ends it all.

/** Milliseconds between connection attempts to a primary that refuses (as LiteFS). */
export const RETRY_EVERY = 100

/**
 * Resolves once each response has finished or its connection closed, or after
 * `withinMs`: a caller about to cut connections lets answers just given leave
 * first, and never hangs on a client.
 */
export async function whenAnswered (responses: ServerResponse[], withinMs = 1000): Promise<void> {
  const pending = responses.filter(res => !res.writableFinished && !res.destroyed)
  if (pending.length === 0) return
  await new Promise<void>(resolve => {
    let left = pending.length
    const timer = setTimeout(resolve, withinMs)
    for (const res of pending) {
      res.once('close', () => {
        if (--left === 0) { clearTimeout(timer); resolve() }
      })
    }
  })
}

export class Lifecycle<C> {
  closing = false
  /** The server this core's requests arrive on (the last one seen), whose idle connections a drain resets. */
  server: Server | undefined
  /** Requests this core holds now, and their contexts. */
  readonly held = new Map<Waiter, C>()
  /** Waits outside HTTP (waitForToken) this core holds now. */
  readonly outside = new Set<Waiter>()
  /** Requests between two connection attempts, and how to wake them. */
  private readonly pausing = new Map<C, () => void>()
  /** The HTTP/2 sessions requests arrive on. */
  readonly sessions = new Http2Sessions()
  /** The connections piped by tunnel.ts: not requests any more, so no drain of requests ends them. */
  readonly tunnels = new Tunnels()

  constructor (private readonly state: NodeState, private readonly res: (c: C) => ServerResponse) {}

  /** Wait RETRY_EVERY ms before the next attempt; drain() ends the wait at once. */
  async pause (c: C): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(wake, RETRY_EVERY)
      const pausing = this.pausing
      function wake (): void {
        clearTimeout(timer)
        pausing.delete(c)
        resolve()
      }
      pausing.set(c, wake)
    })
  }

  /**
   * Stop holding: every request this core holds is answered 503 LITEFS_CLOSED at
   * once, and none is held from now on. Returns the responses being answered,
   * so a caller about to cut connections can let those answers leave first.
   * Not the other answers in flight: waiting for them would keep the listener
   * open longer, and a replica's new connection landing as it closes is reset
   * unread, a write whose outcome it cannot know (primary-closing.ts).
   */
  drain (): ServerResponse[] {
    this.closing = true
    markLastAnswers(this.server) // busy connections end after their answer (last-answer.ts)
    resetIdleConnections(this.server) // see idle-reset.ts: racing forwards from replicas are then retried
    this.sessions.drain()
    const answered = [...this.held.values(), ...this.pausing.keys()]
    for (const w of [...this.held.keys(), ...this.outside]) this.state.end(w, 'closed')
    for (const wake of [...this.pausing.values()]) wake()
    return answered.map(c => this.res(c))
  }
}
