import { request, type Dispatcher } from 'undici'
import { CLOSING_HEADER } from './hop-by-hop.js'
import { REACH_HEADER } from './primary-reach.js'

// A primary that is closing (its app shutting down: SIGTERM, a deploy, LiteFS
// handing the lease over) says so on its answers to its peers (CLOSING_HEADER,
// last-answer.ts), and resets the kept-alive connections idle when it began
// (idle-reset.ts). A write sent to it after that goes on a new connection, and
// a new connection can land in its closing: accepted by the kernel as the
// listener closes, or by the server just before it closes its idle
// connections — reset with the request unread, which the replica cannot tell
// from a primary that read it and died (so: 502, outcome unknown). So a
// replica sends it nothing more until it knows the closing is over: the
// primary refuses connections (its listener is closed: a refused write is
// tried again, nothing sent), answers without the header (a new process, or
// it never was closing), or LiteFS names another primary. The write path
// holds such writes (write-path.ts) within `primaryRedirectTimeout`; this
// module keeps which primaries are closing and asks each whether it still is
// — one question at a time per primary, a GET of its health path (answered
// by its litefs-proxy, not its app), nothing applied.

/** How long a closing primary may take to answer whether it still is (ms). */
const ANSWER_WITHIN = 1000

/** A question's failure that says the listener is gone: nothing there to land in. */
const GONE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

export class ClosingPrimaries {
  /** Each closing primary's origin, and the question to it in flight. */
  private readonly closing = new Map<string, Promise<void> | undefined>()

  /**
   * @param self this node's marker entry (loop-guard.ts), sent as the question's REACH_HEADER
   * @param path the path asked: the health path (a peer's litefs-proxy answers it itself)
   * @param dispatcher the agent the question goes through
   */
  constructor (private readonly self: string, private readonly path: string, private readonly dispatcher: () => Dispatcher) {}

  /** No primary is closing: the write path's one check per forward. */
  get none (): boolean {
    return this.closing.size === 0
  }

  /** Whether `origin` said it is closing, and has not said otherwise since. */
  has (origin: string): boolean {
    return this.closing.has(origin)
  }

  /** `origin` said it is closing. */
  mark (origin: string): void {
    if (!this.closing.has(origin)) this.closing.set(origin, undefined)
  }

  /**
   * Ask `origin`, one that has(), whether it is still closing (joining a question in flight).
   * Resolves once it answered or failed, within ANSWER_WITHIN ms; never rejects.
   * Afterwards `has(origin)` says what it said.
   */
  async ask (origin: string): Promise<void> {
    let asking = this.closing.get(origin)
    if (asking === undefined) {
      asking = this.question(origin)
      this.closing.set(origin, asking)
    }
    await asking
  }

  private async question (origin: string): Promise<void> {
    let over: boolean
    try {
      const res = await request(origin + this.path, {
        dispatcher: this.dispatcher(),
        headers: { [REACH_HEADER]: this.self },
        headersTimeout: ANSWER_WITHIN,
        bodyTimeout: ANSWER_WITHIN,
        signal: AbortSignal.timeout(ANSWER_WITHIN)
      })
      await res.body.dump()
      over = res.headers[CLOSING_HEADER] === undefined
    } catch (err) {
      // Refused: the listener closed. A reset or a timeout: still closing, or gone; asked again.
      over = GONE.has(String((err as { code?: unknown }).code))
    }
    if (over) this.closing.delete(origin)
    else this.closing.set(origin, undefined) // the next question is a new one
  }
}
