import { performance } from 'node:perf_hooks'
import { request, type Dispatcher } from 'undici'
import type { Logger } from './logger.js'
import type { NodeState } from './node-state.js'
import { formatTxid, parseTxid } from './txid.js'
import { PROBE_HEADER } from './own-headers.js'

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
// last question was sent make another one. With several databases one answer
// (the health check's \`databases\`) settles the held reads of every one.

export { PROBE_HEADER }

/** A read held this long (ms) without its TXID arriving makes the primary be asked. */
export const PROBE_AFTER = 25
/** How long an answer from the primary may take (ms). */
const ANSWER_WITHIN = 1000

export class PrimaryProbe {
  private timer: NodeJS.Timeout | undefined
  private inFlight = false
  private newestHeld = -Infinity
  /** The highest position the primary was seen at, per database. */
  private readonly known = new Map<string, bigint>()

  /**
   * @param mainDb the database a primary's single `txid` is the position of (`db`'s first name)
   * @param url the primary's health URL now, or undefined while no primary is known
   */
  constructor (
    private readonly state: NodeState,
    private readonly mainDb: string,
    private readonly url: () => string | undefined,
    private readonly dispatcher: () => Dispatcher,
    private readonly log: Logger
  ) {}

  /** A read for `txid` of `db` is being held from now. */
  held (db: string, txid: bigint): void {
    if (txid <= (this.known.get(db) ?? -1n)) return // the primary has it: replication will bring it
    this.newestHeld = performance.now()
    this.arm()
  }

  close (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (): void {
    if (this.timer !== undefined) return
    this.timer = setTimeout(this.tick, PROBE_AFTER)
    this.timer.unref()
  }

  private readonly tick = (): void => {
    this.timer = undefined
    // A question on its way: its end arms the next one if reads were held meanwhile.
    if (this.inFlight) return
    const awaited = this.state.awaitedDatabases()
    if (awaited.length === 0) return
    const url = this.url()
    if (url === undefined) return // no primary to ask; held() asks again for the next read
    this.inFlight = true
    const sentAt = performance.now()
    this.ask(url).then(positions => {
      if (positions === undefined) return
      for (const db of awaited) this.settle(db, positions, sentAt)
    }, (err: Error) => {
      this.log.debug({ url, err: err.message }, 'litefs-proxy: could not ask the primary for its position')
    }).finally(() => {
      this.inFlight = false
      // Reads held while this question was on its way need an answer of their own.
      if (this.newestHeld > sentAt) this.arm()
    })
  }

  /** Serve the reads of `db` held since before `sentAt` whose TXID the primary is behind. */
  private settle (db: string, positions: PrimaryPositions, sentAt: number): void {
    // A primary that lists its databases and not this one does not have it: no TXID of it exists there.
    const position = positions.of.get(db) ?? (positions.listed ? 0n : undefined)
    if (position === undefined) return
    if (position > (this.known.get(db) ?? -1n)) this.known.set(db, position)
    const served = this.state.releaseUnreachable(db, position, sentAt)
    if (served > 0) {
      this.log.info({ db, primaryTxid: formatTxid(position), reads: served },
        'litefs-proxy: served reads whose TXID is ahead of the primary (lost in a failover, restored away, or forged): nothing can bring it')
    }
  }

  private async ask (url: string): Promise<PrimaryPositions | undefined> {
    const res = await request(url, { dispatcher: this.dispatcher(), headersTimeout: ANSWER_WITHIN, bodyTimeout: ANSWER_WITHIN, headers: { accept: 'application/json', [PROBE_HEADER]: '1' } })
    const body = await res.body.text()
    if (res.statusCode !== 200) return undefined
    let health: { role?: unknown, txid?: unknown, databases?: unknown }
    try { health = JSON.parse(body) } catch { return undefined }
    // Only a node that is primary now, by its own LiteFS, knows the position that counts.
    if (health.role !== 'primary') return undefined
    const of = new Map<string, bigint>()
    const txid = typeof health.txid === 'string' ? parseTxid(health.txid) : undefined
    if (txid !== undefined) of.set(this.mainDb, txid)
    // Several databases: health.databases is every one the primary tracks (with '*', every one in its mount).
    const listed = typeof health.databases === 'object' && health.databases !== null && !Array.isArray(health.databases)
    if (listed) {
      for (const [db, hex] of Object.entries(health.databases as Record<string, unknown>)) {
        const position = typeof hex === 'string' ? parseTxid(hex) : undefined
        if (position !== undefined) of.set(db, position)
      }
    }
    return of.size === 0 ? undefined : { of, listed }
  }
}

/** What a primary's health answer says of its positions. */
interface PrimaryPositions {
  of: Map<string, bigint>
  /** It listed every database it tracks: one it did not list, it does not have. */
  listed: boolean
}
