import { performance } from 'node:perf_hooks'
import { request, type Dispatcher } from 'undici'
import type { Logger } from './logger.js'
import type { NodeState } from './node-state.js'
import { formatTxid, parseTxid } from './txid.js'

// A cookie no node will ever reach: a failover lost TXIDs 2–4, a client holds
// cookie 4, every replica is at 1. Waiting cannot help — only the primary's
// position can tell. When a held read's TXID is not arriving, this asks the
// primary for its position (its litefs-proxy health answer carries it, read
// from `-pos` there); held reads whose TXID is above it can never be satisfied
// and are served at once, as the primary itself would serve them (DESIGN §3.4).
//
// Cost: one question in flight per node; a read held less than PROBE_AFTER ms
// (replication on its way) asks nothing; an answer that shows the primary at or
// past a read's TXID settles that read for good; only reads held since the
// last question was sent make another one.

/** A read held this long (ms) without its TXID arriving makes the primary be asked. */
export const PROBE_AFTER = 25
/** How long an answer from the primary may take (ms). */
const ANSWER_WITHIN = 1000

export class PrimaryProbe {
  private timer: NodeJS.Timeout | undefined
  private inFlight = false
  private lastSent = -Infinity
  private newestHeld = -Infinity
  private known = -1n // the highest position the primary was seen at

  /**
   * @param url the primary's health URL now, or undefined while no primary is known
   */
  constructor (
    private readonly state: NodeState,
    private readonly db: string,
    private readonly url: () => string | undefined,
    private readonly dispatcher: () => Dispatcher,
    private readonly log: Logger
  ) {}

  /** A read for `txid` is being held from now. */
  held (txid: bigint): void {
    if (txid <= this.known) return // the primary has it: replication will bring it
    this.newestHeld = performance.now()
    if (this.timer === undefined) {
      this.timer = setTimeout(this.tick, PROBE_AFTER)
      this.timer.unref()
    }
  }

  close (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private readonly tick = (): void => {
    this.timer = undefined
    if (this.inFlight || this.newestHeld <= this.lastSent || !this.state.awaits(this.db)) return
    const url = this.url()
    if (url === undefined) return // no primary to ask; held() asks again for the next read
    this.inFlight = true
    const sentAt = this.lastSent = performance.now()
    this.ask(url).then(position => {
      if (position === undefined) return
      if (position > this.known) this.known = position
      const served = this.state.releaseUnreachable(this.db, position, sentAt)
      if (served > 0) {
        // A hex string, as every other TXID in a log line: a BigInt would throw in a logger
        // that JSON.stringify()s its fields, inside a promise (an unhandled rejection).
        this.log.info({ db: this.db, primaryTxid: formatTxid(position), reads: served },
          'litefs-proxy: served reads whose TXID is ahead of the primary (lost in a failover, restored away, or forged): nothing can bring it')
      }
    }, (err: Error) => {
      this.log.debug({ url, err: err.message }, 'litefs-proxy: could not ask the primary for its position')
    }).finally(() => {
      this.inFlight = false
      // Reads held while this question was on its way need an answer of their own.
      if (this.newestHeld > sentAt) this.held(this.known + 1n)
    })
  }

  private async ask (url: string): Promise<bigint | undefined> {
    const res = await request(url, { dispatcher: this.dispatcher(), headersTimeout: ANSWER_WITHIN, bodyTimeout: ANSWER_WITHIN, headers: { accept: 'application/json' } })
    const body = await res.body.text()
    if (res.statusCode !== 200) return undefined
    let health: { role?: unknown, txid?: unknown }
    try { health = JSON.parse(body) } catch { return undefined }
    // Only a node that is primary now, by its own LiteFS, knows the position that counts.
    return health.role === 'primary' && typeof health.txid === 'string' ? parseTxid(health.txid) : undefined
  }
}
