import { performance } from 'node:perf_hooks'
import { IndexedHeap } from './heap.js'

// The primary's view of its replicas, as their litefs-proxy reports it
// (replica-report.ts): each peer's hostname, whether LiteFS lets it become
// primary (a candidate), and its position per database. LiteFS's own API tells
// a primary nothing of its replicas, and does not elect the most advanced
// candidate (fixtures README): a write is safe from any single failure only
// once every candidate that could take over has it. This table answers "has
// every connected candidate reached TXID t of db?" and holds the answers
// (durability.ts) that wait for it.
//
// A peer is connected while its reports keep coming: a replica reports on every
// change and at least every HEARTBEAT ms, so one silent for STALE ms is gone
// (crashed, partitioned, or following another primary).

/** A replica reports at least this often (ms), changed or not. */
export const HEARTBEAT = 500
/** A peer silent this long (ms) no longer counts as connected. */
export const STALE = 2000

/** What one report says, as sent (replica-report.ts): positions as 16 hex digits. */
export interface PeerReport {
  hostname: string
  candidate: boolean
  positions: Record<string, string>
  /**
   * The reporting process, a random id it keeps while it runs. Two nodes that
   * report one name (the OS host name of two containers, a copied peerName)
   * stay two peers, each one counted: one's report never stands for the other.
   */
  instance?: string
}

export interface PeerRow {
  hostname: string
  candidate: boolean
  positions: Map<string, bigint>
  /** Date.now() when this peer's current run of reports began. */
  since: number
  /** performance.now() of its last report. */
  seen: number
}

/** A held answer: ready once every connected candidate (at least the table's `min`) has `db` at `txid`. */
export class ReplicationWaiter {
  slot = -1
  timer: NodeJS.Timeout | undefined
  constructor (
    readonly db: string,
    readonly txid: bigint,
    readonly done: (result: 'replicated' | 'timeout' | 'closed') => void
  ) {}
}

const TXID = /^[0-9a-f]{16}$/
const INSTANCE = /^[A-Za-z0-9_-]{1,64}$/

/** A report's body, checked: undefined when it is not one. */
export function parseReport (body: string): PeerReport | undefined {
  let r: unknown
  try { r = JSON.parse(body) } catch { return undefined }
  const o = r as Partial<PeerReport> | null
  if (typeof o !== 'object' || o === null) return undefined
  if (typeof o.hostname !== 'string' || o.hostname === '' || o.hostname.length > 253) return undefined
  if (typeof o.candidate !== 'boolean') return undefined
  if (typeof o.positions !== 'object' || o.positions === null || Array.isArray(o.positions)) return undefined
  const entries = Object.entries(o.positions)
  if (entries.length > 1000 || !entries.every(([db, pos]) => db !== '' && typeof pos === 'string' && TXID.test(pos))) return undefined
  if (o.instance !== undefined && (typeof o.instance !== 'string' || !INSTANCE.test(o.instance))) return undefined
  return { hostname: o.hostname, candidate: o.candidate, positions: o.positions as Record<string, string>, ...(o.instance === undefined ? {} : { instance: o.instance }) }
}

export class PeerTable {
  /**
   * @param min how many connected candidates a write must reach, at least (durability's minCandidates).
   * @param shared called when two processes both go on reporting one hostname (said by the caller).
   */
  constructor (private readonly min = 1, private readonly shared?: (hostname: string) => void) {}

  /** Per hostname and reporting process (see PeerReport.instance). */
  private readonly rows = new Map<string, PeerRow>()
  /** performance.now() when each row's run of reports began. */
  private readonly began = new WeakMap<PeerRow, number>()
  private readonly waiting = new Map<string, IndexedHeap<ReplicationWaiter>>()
  private staleTimer: NodeJS.Timeout | undefined
  private closed = false

  /** Take one report in: the peer is connected now, at these positions. */
  report (r: PeerReport, now = performance.now()): void {
    const key = r.instance === undefined ? r.hostname : `${r.hostname}\n${r.instance}`
    let row = this.rows.get(key)
    if (row === undefined || now - row.seen >= STALE) {
      row = { hostname: r.hostname, candidate: r.candidate, positions: new Map(), since: Date.now(), seen: now }
      this.rows.set(key, row)
      this.began.set(row, now)
    } else {
      // Another process reported this name since this one began, and this one goes on: both run.
      // A process that restarted left its old row silent instead: gone once stale, not kept forever.
      const began = this.began.get(row) as number
      for (const [k, other] of this.rows) {
        if (other === row || other.hostname !== r.hostname) continue
        if (now - other.seen >= STALE) this.rows.delete(k)
        else if (other.seen > began) this.shared?.(r.hostname)
      }
    }
    row.candidate = r.candidate
    row.seen = now
    for (const [db, hex] of Object.entries(r.positions)) row.positions.set(db, BigInt('0x' + hex))
    for (const db of this.waiting.keys()) this.release(db, now)
  }

  /** The peers reporting now, and those that stopped (with since/seen), for stats() and health. */
  peers (now = performance.now()): Array<PeerRow & { connected: boolean }> {
    return [...this.rows.values()].map(row => ({ ...row, connected: now - row.seen < STALE }))
  }

  /**
   * How far `db` has reached on every connected candidate: the lowest position
   * among them, and how many there are (0: none, position undefined).
   */
  replicated (db: string, now = performance.now()): { candidates: number, position: bigint | undefined } {
    let candidates = 0
    let position: bigint | undefined
    for (const row of this.rows.values()) {
      if (!row.candidate || now - row.seen >= STALE) continue
      candidates++
      const p = row.positions.get(db) ?? 0n
      if (position === undefined || p < position) position = p
    }
    return { candidates, position }
  }

  /**
   * Call `done('replicated')` once every connected candidate — at least `min`
   * of them — reports `db` at or past `txid`; 'timeout' after `timeoutMs`.
   * Calls back at once when that holds already. Returns the waiter to cancel.
   */
  wait (db: string, txid: bigint, timeoutMs: number, done: ReplicationWaiter['done']): ReplicationWaiter | undefined {
    if (this.closed) { done('closed'); return undefined }
    const { candidates, position } = this.replicated(db)
    if (candidates >= this.min && position !== undefined && position >= txid) { done('replicated'); return undefined }
    const w = new ReplicationWaiter(db, txid, done)
    let heap = this.waiting.get(db)
    if (heap === undefined) {
      heap = new IndexedHeap<ReplicationWaiter>((a, b) => a.txid < b.txid, x => x.slot, (x, s) => { x.slot = s })
      this.waiting.set(db, heap)
    }
    heap.push(w)
    w.timer = setTimeout(() => this.end(w, 'timeout'), timeoutMs)
    this.watchStale()
    return w
  }

  /** Drop a waiter (its client left). Nothing is called back. */
  cancel (w: ReplicationWaiter | undefined): void {
    if (w === undefined || w.slot === -1) return
    clearTimeout(w.timer)
    this.unlink(w)
  }

  close (): void {
    this.closed = true
    clearTimeout(this.staleTimer)
    for (const heap of [...this.waiting.values()]) {
      let w: ReplicationWaiter | undefined
      while ((w = heap.peek()) !== undefined) this.end(w, 'closed')
    }
  }

  /** Release every waiter of `db` the table now satisfies (in TXID order: the lowest first). */
  private release (db: string, now: number): void {
    const heap = this.waiting.get(db) as IndexedHeap<ReplicationWaiter>
    const { candidates, position } = this.replicated(db, now)
    if (position === undefined || candidates < this.min) return
    let top = heap.peek()
    while (top !== undefined && top.txid <= position) {
      this.end(top, 'replicated')
      top = this.waiting.get(db)?.peek()
    }
  }

  private end (w: ReplicationWaiter, result: 'replicated' | 'timeout' | 'closed'): void {
    clearTimeout(w.timer)
    this.unlink(w)
    w.done(result)
  }

  private unlink (w: ReplicationWaiter): void {
    const heap = this.waiting.get(w.db) as IndexedHeap<ReplicationWaiter>
    heap.remove(w)
    w.slot = -1
    if (heap.size === 0) this.waiting.delete(w.db)
  }

  /**
   * While answers wait, a candidate falling silent changes who must have a
   * write: look again when the next one would turn stale.
   */
  private watchStale (): void {
    if (this.staleTimer !== undefined || this.waiting.size === 0) return
    const now = performance.now()
    let next = Infinity
    for (const row of this.rows.values()) {
      const at = row.seen + STALE
      if (at > now && at < next) next = at
    }
    if (next === Infinity) return
    this.staleTimer = setTimeout(() => {
      this.staleTimer = undefined
      const t = performance.now()
      for (const db of [...this.waiting.keys()]) this.release(db, t)
      this.watchStale()
    }, next - now + 1)
    this.staleTimer.unref()
  }
}
