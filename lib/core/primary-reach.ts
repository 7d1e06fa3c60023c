import { performance } from 'node:perf_hooks'
import { request, type Dispatcher } from 'undici'
import { reasonOf } from './errors.js'
import { ANSWERS } from './answers.js'
import { REACH_HEADER } from './own-headers.js'

// Can this replica reach the primary's app? LiteFS can be fine — the primary
// named, replication flowing, health `ok` by lag — while no write landing here
// can succeed: `primaryUrl` names a host that does not resolve here, or the
// primary's app refuses connections. Health must say so (health.ts: 503
// `unreachable`) so that a balancer takes the node out instead of sending it
// writes that wait `primaryRedirectTimeout` and fail.
//
// What is known comes from two places: every forward (it got through, or it
// could not connect: write-path.ts), and health itself, which asks the
// primary's health (at most once every ASK_EVERY ms, one question in flight)
// when it has no fresh word. The first health answer after the primary
// changes waits for that question (at most ANSWER_WITHIN ms); later ones
// answer from what is known and ask again in the background.

/** How often health asks the primary at most (ms). */
const ASK_EVERY = 1000
/** How long the primary's health may take to answer (ms). */
const ANSWER_WITHIN = 1000

export { REACH_HEADER }

export interface Unreachable {
  /** The primary's origin as this node sends to it; null when `primaryUrl` gives it none. */
  origin: string | null
  /** Why the last attempt failed: `ENOTFOUND`, `ECONNREFUSED`, a timeout… */
  error: string
}

export class PrimaryReach {
  /** The origin the record is about; a new primary starts a new record. */
  private origin: string | undefined
  private failed: string | undefined
  private lastOk = -Infinity
  private askedAt = -Infinity
  private asking: Promise<void> | undefined

  /**
   * @param self this node's marker entry (loop-guard.ts), sent as the question's REACH_HEADER
   * @param dispatcher the Agent to ask on (the protocol the primary's server speaks: forward-agent.ts)
   */
  constructor (private readonly self: string, private readonly dispatcher: () => Dispatcher) {}

  /** Something got through to the primary at `origin` (a forward, or its health answered). */
  reached (origin: string): void {
    this.about(origin)
    this.failed = undefined
    this.lastOk = performance.now()
  }

  /** Nothing could be sent to the primary at `origin`: it does not resolve, refuses, or does not answer. */
  missed (origin: string, error: string): void {
    this.about(origin)
    this.failed = error
  }

  /**
   * Why the primary at `origin` cannot be reached, if the last attempt failed
   * and nothing got through for `windowMs` (the time a write waits): a write
   * arriving now would fail. Undefined otherwise, or when nothing is known.
   */
  unreachable (origin: string, windowMs: number): Unreachable | undefined {
    if (origin !== this.origin || this.failed === undefined) return undefined
    if (performance.now() - this.lastOk < windowMs) return undefined
    return { origin, error: this.failed }
  }

  /**
   * Ask the primary's health at `url` (on `origin`) unless it was asked within
   * ASK_EVERY ms. Resolves once answered when nothing is known about `origin`
   * yet (the caller waits for a first word), else at once (asked in the background).
   */
  check (origin: string, url: string): Promise<void> | undefined {
    const known = origin === this.origin
    if (this.asking === undefined && (!known || performance.now() - this.askedAt >= ASK_EVERY)) {
      this.askedAt = performance.now()
      this.asking = this.ask(origin, url).finally(() => { this.asking = undefined })
    }
    return known ? undefined : this.asking
  }

  private about (origin: string): void {
    if (origin === this.origin) return
    this.origin = origin
    this.failed = undefined
    this.lastOk = -Infinity
  }

  private async ask (origin: string, url: string): Promise<void> {
    try {
      const res = await request(url, { dispatcher: this.dispatcher(), headersTimeout: ANSWER_WITHIN, bodyTimeout: ANSWER_WITHIN, headers: { [REACH_HEADER]: this.self } })
      await res.body.dump()
      // A node's answer to its own question (loop-guard.ts: health.ts echoes the mark).
      if (res.statusCode === ANSWERS.LITEFS_FORWARD_LOOP.status && res.headers[REACH_HEADER] === this.self) {
        this.missed(origin, `${origin} is this node itself, not the primary: is "primaryUrl" right?`)
      } else {
        this.reached(origin) // any other answer: the primary's app is there
      }
    } catch (err) {
      const e = err as Error & { code?: string }
      this.missed(origin, e.code === 'UND_ERR_HEADERS_TIMEOUT' ? `no answer within ${ANSWER_WITHIN} ms` : reasonOf(e))
    }
  }
}
