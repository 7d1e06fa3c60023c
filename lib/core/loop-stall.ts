import { performance } from 'node:perf_hooks'

// Whether this process's event loop stood still lately. While it stood still
// nothing was read from LiteFS's event stream, so the stream's "LiteFS is up"
// may be old news: LiteFS can have stopped, its stream's end still unread in
// a socket buffer, while requests that arrived meanwhile are handed out. The
// first local write after a stall therefore looks at the mount itself
// (litefs-node.ts decides that; this module only keeps the clock).

/** How often the clock ticks (ms). */
export const TICK_MS = 20
/** A tick this late (ms) means the loop stood still. */
export const STALL_MS = 100

export class LoopStall {
  private last = performance.now()
  private readonly timer: NodeJS.Timeout

  constructor () {
    this.timer = setInterval(() => { this.last = performance.now() }, TICK_MS).unref()
  }

  /**
   * True once per stall: the loop stood still for more than STALL_MS before
   * `now` and no one asked since. Cost when not stalled: a clock read.
   */
  stalled (now = performance.now()): boolean {
    if (now - this.last <= STALL_MS) return false
    this.last = now
    return true
  }

  close (): void {
    clearInterval(this.timer)
  }
}
