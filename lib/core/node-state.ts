import { performance } from 'node:perf_hooks'
import { IndexedHeap } from './heap.js'
import type { LeaseFence } from './lease-fence.js'
import { SharedRead } from './shared-read.js'

// Longer than 300 lines: the cached view of a LiteFS node and the requests
// waiting on it change in one step (a position, role or status change releases
// its waiters in the same call, in TXID order), so they live together here.

export type Role = 'primary' | 'replica' | 'unknown'

/**
 * Whether LiteFS on this node answers now.
 * - `up`: it does (its event stream is connected; with `api: false`, its mount answers).
 *   Only then are role and primary believed.
 * - `stream-lost`: the event stream is down but the mount answers (LiteFS dropped a
 *   slow subscriber, or its API is unreachable): writes wait, reads are served.
 * - `down`: the mount is dead (ENOTCONN) or gone (a plain directory where SQLite
 *   would create a new, empty database): nothing may touch the database.
 */
export type LitefsStatus = 'up' | 'stream-lost' | 'down'

/** What a held request waits for, besides a position. */
type Condition = 'primary' | 'self' | 'mount' | 'up'

/**
 * How a wait ended. `unreachable`: the primary itself is behind the awaited
 * TXID, so no node will ever reach it (see primary-probe.ts).
 */
export type WaitResult = 'ready' | 'timeout' | 'cancelled' | 'closed' | 'unreachable'

/**
 * What feeds a NodeState: real LiteFS (mount files + /events) or the dev cluster.
 * The state calls it for authoritative reads and tells it what is being waited
 * for, so a polling driver polls only while somebody waits.
 */
export interface StateDriver {
  /** The position of `db` at this instant, from the authority (not a cache). */
  readPosition: (db: string) => bigint | undefined
  /**
   * The same, asynchronously, from a read that starts after the call (LiteFS:
   * on the thread pool, so the event loop never waits on FUSE). What a write's
   * answer waits for; without it, `readPosition` serves. A rejection counts as
   * no position.
   */
  readPositionAsync?: (db: string) => Promise<bigint | undefined>
  /**
   * Several databases' positions (in the order given) from reads that all
   * start after the call, one promise for them all (several databases:
   * positions-read.ts). Without it, `readPositionAsync` is called per database.
   */
  readPositionsAsync?: (dbs: readonly string[]) => Promise<Array<bigint | undefined>>
  /** Replication lag in milliseconds, or undefined when unknown. */
  readLag: () => number | undefined
  /** The same, from a read that starts after the call, off the event loop (LiteFS: `.lag` on FUSE). Never rejects. Without it, `readLag` serves. */
  readLagAsync?: () => Promise<number | undefined>
  /** Bring role and primary up to date before a write is decided (cheap; may do nothing). */
  refresh?: () => void
  /**
   * Whether LiteFS answers on the mount right now, looked at directly (LiteFS:
   * a stat of `.lag`); false also marks LiteFS down. Asked only when a write's
   * position could not be read. Without it, the state's own word is taken.
   */
  mountAnswers?: () => boolean
  /** Called whenever the set of awaited databases, or whether anybody waits for a role or the mount, changes. */
  demand?: (databases: ReadonlySet<string>, primary: boolean) => void
  close?: () => void | Promise<void>
  /** How the state is fed now (for stats): LiteFS's event stream, polling its mount, or the mount files alone. */
  source?: () => 'events' | 'polling' | 'files'
  /**
   * Whether this node may become primary (a candidate), when the driver knows
   * it itself (the dev cluster). Without it, replica reports (peer-link.ts)
   * ask LiteFS's `/info`, and a node without LiteFS's API sends none.
   */
  candidate?: () => boolean
  /**
   * This node's name as LiteFS would report it (`.primary`, `/events`), when
   * the driver knows it (the dev cluster: `node-1`…): its name among its peers
   * unless `peerName` says otherwise.
   */
  name?: string
}

/** One held request. Opaque to callers: pass it back to `cancel`. */
export class Waiter {
  posSlot = -1
  deadlineSlot = -1
  constructor (
    readonly db: string | undefined, // undefined: waits for `condition`
    readonly txid: bigint,
    readonly since: number, // performance.now() when it began
    readonly deadline: number,
    readonly done: (result: WaitResult) => void,
    readonly condition: Condition = 'primary'
  ) {}
}

function txidHeap (): IndexedHeap<Waiter> {
  return new IndexedHeap<Waiter>((a, b) => a.txid < b.txid, w => w.posSlot, (w, s) => { w.posSlot = s })
}

/**
 * The cached view of one LiteFS node, shared by every request of the process:
 * role, primary hostname, position per database, and the requests held until a
 * position or a primary arrives. A position change releases every satisfied
 * waiter in one pass over the satisfied ones only (a heap ordered by TXID);
 * deadlines sit in a second heap behind a single timer.
 */
export class NodeState {
  role: Role = 'unknown'
  primaryHostname: string | undefined = undefined
  /** Since when (performance.now(), ms) this replica has known no primary; undefined while it knows one, or is not a replica. Health reads it. */
  noPrimarySince: number | undefined = undefined
  /** Whether LiteFS answers now (see LitefsStatus). A state with no driver telling otherwise is `up`. */
  litefs: LitefsStatus = 'up'
  private readonly positions = new Map<string, bigint>()
  private readonly waiting = new Map<string, IndexedHeap<Waiter>>()
  private readonly conditionWaiters = new Set<Waiter>()
  private readonly deadlines = new IndexedHeap<Waiter>(
    (a, b) => a.deadline < b.deadline, w => w.deadlineSlot, (w, s) => { w.deadlineSlot = s }
  )

  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  private closed = false

  constructor (readonly driver: StateDriver) {}

  /** Last known position of `db` (0 when none is known yet). */
  position (db: string): bigint {
    return this.positions.get(db) ?? 0n
  }

  /** Authoritative position of `db` now, straight from the driver; also refreshes the cache. */
  readPosition (db: string): bigint | undefined {
    const pos = this.driver.readPosition(db)
    if (pos !== undefined) this.setPosition(db, pos)
    return pos
  }

  private readonly reads = new Map<string, SharedRead<bigint | undefined>>()

  /**
   * The authority's position of `db` from a read that starts after this call
   * (a write's answer is ready: the handler's commit is in), shared with every
   * caller that joins before it starts (shared-read.ts). A promise when the
   * driver reads asynchronously, else the position at once.
   */
  positionAfter (db: string): bigint | undefined | Promise<bigint | undefined> {
    if (this.driver.readPositionAsync === undefined) return this.readPosition(db)
    let shared = this.reads.get(db)
    if (shared === undefined) {
      const driver = this.driver as Required<Pick<StateDriver, 'readPositionAsync'>>
      shared = new SharedRead(async () => {
        const pos = await driver.readPositionAsync(db).catch(() => undefined)
        // Raised, never lowered: an event may have brought a newer position while this read was on its way.
        if (pos !== undefined && pos > this.position(db)) this.setPosition(db, pos)
        return pos
      })
      this.reads.set(db, shared)
    }
    return shared.join()
  }

  /**
   * Whether `db` is known to be at `txid` or past it without waiting: by the
   * cached position, or by the authority when the driver reads it
   * synchronously (the dev cluster, in memory). A driver that reads
   * asynchronously (LiteFS's FUSE mount) is not asked here: a mount that never
   * answers (LiteFS stopped) would stop the event loop with it. A wait for the
   * position asks it (waitForPosition).
   */
  reached (db: string, txid: bigint): boolean {
    return this.position(db) >= txid || (this.driver.readPositionAsync === undefined && (this.readPosition(db) ?? 0n) >= txid)
  }

  readLag (): number | undefined {
    return this.role === 'primary' ? 0 : this.driver.readLag()
  }

  private lagRead: SharedRead<number | undefined> | undefined

  /**
   * The lag (ms) from a read that starts after this call, shared with every
   * caller that joins before it starts: at most one read waits on the mount
   * however many ask (a stopped LiteFS holds it, and a thread of the pool,
   * until it answers). At once on a primary, or when the driver reads synchronously.
   */
  lagAfter (): number | undefined | Promise<number | undefined> {
    const read = this.driver.readLagAsync
    if (this.role === 'primary' || read === undefined) return this.readLag()
    this.lagRead ??= new SharedRead(read)
    return this.lagRead.join()
  }

  refresh (): void {
    this.driver.refresh?.()
  }

  /** Whether LiteFS answers on the mount now (StateDriver.mountAnswers), else whether LiteFS is up by this state. */
  mountAnswers (): boolean {
    return this.driver.mountAnswers?.() ?? this.litefs === 'up'
  }

  /**
   * The lease fence (lease-fence.ts), when the lease is Consul's: this node
   * writes as primary only while it is open. Undefined: LiteFS's word is enough.
   */
  fence: Pick<LeaseFence, 'isOpen' | 'view' | 'holder'> | undefined

  /**
   * Why LiteFS's API and the mount cannot be one node's (the API says primary,
   * the mount is a replica's…: litefs-node.ts), or undefined. While set, no
   * write is served here.
   */
  mismatch: string | undefined = undefined

  /** This node may serve a write as primary now: LiteFS says it is primary, its API and mount agree, and the fence (if any) is open. */
  get writable (): boolean {
    return this.role === 'primary' && this.mismatch === undefined && (this.fence === undefined || this.fence.isOpen())
  }

  /**
   * A write can be decided now: this node may write as primary, or a
   * (confirmed) primary is known to forward to.
   */
  get primaryKnown (): boolean {
    return this.writable || (this.role === 'replica' && this.primaryHostname !== undefined)
  }

  /** The fence opened or closed: release the writes held for it. */
  fenceChanged (): void {
    this.checkConditions()
  }

  /**
   * LiteFS on this node answers (`up`) or not. Anything else than `up` also
   * forgets role and primary: what LiteFS said before it went away no longer
   * holds (a node that was primary may not write into a dead mount).
   */
  setLitefs (status: LitefsStatus): void {
    if (status === this.litefs) return
    this.litefs = status
    if (status !== 'up') {
      this.role = 'unknown'
      this.primaryHostname = undefined
    }
    this.checkConditions()
    for (const listener of [...this.litefsListeners]) listener(status)
  }

  private readonly litefsListeners = new Set<(status: LitefsStatus) => void>()

  private readonly changeListeners = new Set<() => void>()

  /**
   * Call `listener` on every position and role change: this node's report to
   * the primary (peer-link.ts) goes out at once. Returns the unsubscriber.
   */
  onChange (listener: () => void): () => void {
    this.changeListeners.add(listener)
    return () => { this.changeListeners.delete(listener) }
  }

  /**
   * Call `listener` whenever LiteFS's status on this node changes (see
   * LitefsStatus): an app closes its database handle when LiteFS goes away (a
   * handle kept on a dead mount blocks its unmount, or ends in SIGBUS) and
   * reopens it when it is back. Returns the function that unsubscribes.
   */
  onLitefs (listener: (status: LitefsStatus) => void): () => void {
    this.litefsListeners.add(listener)
    return () => { this.litefsListeners.delete(listener) }
  }

  setRole (role: Role, primaryHostname?: string): void {
    this.role = role
    this.primaryHostname = role === 'primary' || primaryHostname === '' ? undefined : primaryHostname
    this.noPrimarySince = role === 'replica' && this.primaryHostname === undefined ? this.noPrimarySince ?? performance.now() : undefined
    for (const listener of this.changeListeners) listener()
    // A primary has every transaction there will be: reads held for a position
    // it lacks (lost in a failover, or forged) cannot be helped by waiting.
    if (role === 'primary' && this.waiting.size > 0) {
      for (const heap of this.waiting.values()) {
        let w: Waiter | undefined
        while ((w = heap.pop()) !== undefined) this.finish(w, 'ready')
      }
      this.waiting.clear()
      this.changedDemand()
    }
    this.checkConditions()
  }

  private met (condition: Condition): boolean {
    switch (condition) {
      case 'primary': return this.primaryKnown
      case 'self': return this.writable
      case 'up': return this.litefs === 'up'
      default: return this.litefs !== 'down'
    }
  }

  /** Release the requests whose condition now holds. Role and status change rarely; the scan is fine. */
  private checkConditions (): void {
    if (this.conditionWaiters.size === 0) return
    for (const w of this.conditionWaiters) {
      if (this.met(w.condition)) this.finish(w, 'ready')
    }
    if (this.conditionWaiters.size === 0) this.changedDemand()
  }

  /** Record a new position of `db` and release every waiter it satisfies. */
  setPosition (db: string, txid: bigint): void {
    this.positions.set(db, txid)
    for (const listener of this.changeListeners) listener()
    const heap = this.waiting.get(db)
    if (heap === undefined) return
    let top = heap.peek()
    if (top === undefined || top.txid > txid) return
    do {
      heap.pop()
      this.finish(top, 'ready')
      top = heap.peek()
    } while (top !== undefined && top.txid <= txid)
    if (heap.size === 0) {
      this.waiting.delete(db)
      this.changedDemand()
    }
  }

  /**
   * Call `done` once `db` reaches `txid` ('ready'), after `timeoutMs` ('timeout'),
   * or when the state closes. Calls back synchronously when already reached.
   */
  waitForPosition (db: string, txid: bigint, timeoutMs: number, done: (r: WaitResult) => void): Waiter | undefined {
    if (this.closed) { done('closed'); return undefined }
    if (this.reached(db, txid)) { done('ready'); return undefined }
    const now = performance.now()
    const w = new Waiter(db, txid, now, now + timeoutMs, done)
    let heap = this.waiting.get(db)
    const fresh = heap === undefined
    if (heap === undefined) { heap = txidHeap(); this.waiting.set(db, heap) }
    heap.push(w)
    this.track(w)
    if (fresh) this.changedDemand()
    // The cached position may trail LiteFS's (its event comes after the
    // commit): the authority is asked now that the waiter is in place, and its
    // answer releases it (raised positions only: positionAfter).
    if (this.driver.readPositionAsync !== undefined) void this.positionAfter(db)
    return w
  }

  /**
   * Call `done` once a primary is known (or this node is it) — with `self`, once
   * this node is the primary — or after `timeoutMs`.
   */
  waitForPrimary (timeoutMs: number, done: (r: WaitResult) => void, self = false): Waiter | undefined {
    return this.waitUntil(self ? 'self' : 'primary', timeoutMs, done)
  }

  /** Call `done` once LiteFS's mount answers again (`litefs` is not `down`), or after `timeoutMs`. */
  waitForMount (timeoutMs: number, done: (r: WaitResult) => void): Waiter | undefined {
    return this.waitUntil('mount', timeoutMs, done)
  }

  /** Call `done` once LiteFS answers in full (`litefs` is `up`: its event stream subscribed, its mount proven), or after `timeoutMs`. */
  waitForLitefs (timeoutMs: number, done: (r: WaitResult) => void): Waiter | undefined {
    return this.waitUntil('up', timeoutMs, done)
  }

  private waitUntil (condition: Condition, timeoutMs: number, done: (r: WaitResult) => void): Waiter | undefined {
    if (this.closed) { done('closed'); return undefined }
    if (this.met(condition)) { done('ready'); return undefined }
    const now = performance.now()
    const w = new Waiter(undefined, 0n, now, now + timeoutMs, done, condition)
    this.conditionWaiters.add(w)
    this.track(w)
    if (this.conditionWaiters.size === 1) this.changedDemand()
    return w
  }

  /** Whether any request waits for a position of `db`. */
  awaits (db: string): boolean {
    return this.waiting.has(db)
  }

  /** The databases some request waits for a position of. */
  awaitedDatabases (): string[] {
    return [...this.waiting.keys()]
  }

  /**
   * The primary is at `primaryPosition` (as asked at `askedAt`, a performance.now()
   * time): every read of `db` held since before then for a TXID above it can never
   * be satisfied. Those end with 'unreachable'; returns how many.
   */
  releaseUnreachable (db: string, primaryPosition: bigint, askedAt: number): number {
    const heap = this.waiting.get(db)
    if (heap === undefined) return 0
    const lost = heap.filter(w => w.txid > primaryPosition && w.since <= askedAt)
    for (const w of lost) {
      this.unlink(w)
      this.finish(w, 'unreachable')
    }
    return lost.length
  }

  /** Drop a waiter whose request went away. Its callback is called with 'cancelled'. */
  cancel (w: Waiter | undefined): void {
    this.end(w, 'cancelled')
  }

  /** End one wait now with `result` (an app closing ends its own with 'closed'). A wait already over is left alone. */
  end (w: Waiter | undefined, result: WaitResult): void {
    if (w === undefined || w.deadlineSlot === -1) return
    this.unlink(w)
    this.finish(w, result)
  }

  /** Held requests, for tests and metrics. */
  get waiterCount (): number {
    return this.deadlines.size
  }

  /** Databases whose positions have been seen or asked for. */
  get databases (): string[] {
    return [...this.positions.keys()]
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.timer)
    let w: Waiter | undefined
    while ((w = this.deadlines.peek()) !== undefined) {
      this.unlink(w)
      this.finish(w, 'closed')
    }
    await this.driver.close?.()
  }

  private track (w: Waiter): void {
    this.deadlines.push(w)
    if (w.deadline < this.timerAt) this.arm(w.deadline)
  }

  private unlink (w: Waiter): void {
    if (w.db === undefined) {
      this.conditionWaiters.delete(w)
      if (this.conditionWaiters.size === 0) this.changedDemand()
      return
    }
    // A waiter still on the deadline heap is still on its database's heap.
    const heap = this.waiting.get(w.db) as IndexedHeap<Waiter>
    heap.remove(w)
    if (heap.size === 0) {
      this.waiting.delete(w.db)
      this.changedDemand()
    }
  }

  /** Remove from the deadline heap and call back; the caller has unlinked the rest. */
  private finish (w: Waiter, result: WaitResult): void {
    if (w.db === undefined) this.conditionWaiters.delete(w)
    this.deadlines.remove(w)
    if (this.deadlines.size === 0 && this.timer !== undefined) {
      // Nobody waits: no timer keeps the process alive or fires for nothing.
      clearTimeout(this.timer)
      this.timer = undefined
      this.timerAt = Infinity
    }
    w.done(result)
  }

  private arm (at: number): void {
    clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(this.expire, Math.max(0, Math.ceil(at - performance.now())))
  }

  private readonly expire = (): void => {
    this.timerAt = Infinity
    const now = performance.now()
    let w: Waiter | undefined
    while ((w = this.deadlines.peek()) !== undefined && w.deadline <= now) {
      this.unlink(w)
      this.finish(w, 'timeout')
    }
    if (w !== undefined) this.arm(w.deadline)
  }

  private changedDemand (): void {
    this.driver.demand?.(new Set(this.waiting.keys()), this.conditionWaiters.size > 0)
  }
}
