import { performance } from 'node:perf_hooks'
import { IndexedHeap } from './heap.js'

export type Role = 'primary' | 'replica' | 'unknown'

/** How a wait ended. */
export type WaitResult = 'ready' | 'timeout' | 'cancelled' | 'closed'

/**
 * What feeds a NodeState: real LiteFS (mount files + /events) or the dev cluster.
 * The state calls it for authoritative reads and tells it what is being waited
 * for, so a polling driver polls only while somebody waits.
 */
export interface StateDriver {
  /** The position of `db` at this instant, from the authority (not a cache). */
  readPosition: (db: string) => bigint | undefined
  /** Replication lag in milliseconds, or undefined when unknown. */
  readLag: () => number | undefined
  /** Bring role and primary up to date before a write is decided (cheap; may do nothing). */
  refresh?: () => void
  /** Called whenever the set of awaited databases or the wish for a primary changes. */
  demand?: (databases: ReadonlySet<string>, primary: boolean) => void
  close?: () => void | Promise<void>
}

/** One held request. Opaque to callers: pass it back to `cancel`. */
export class Waiter {
  posSlot = -1
  deadlineSlot = -1
  constructor (
    readonly db: string | undefined, // undefined: waits for a primary
    readonly txid: bigint,
    readonly deadline: number,
    readonly done: (result: WaitResult) => void,
    readonly self = false // waits for this node to become primary, not for any primary
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
  private readonly positions = new Map<string, bigint>()
  private readonly waiting = new Map<string, IndexedHeap<Waiter>>()
  private readonly primaryWaiters = new Set<Waiter>()
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

  readLag (): number | undefined {
    return this.role === 'primary' ? 0 : this.driver.readLag()
  }

  refresh (): void {
    this.driver.refresh?.()
  }

  /** A write can be decided now: this node is primary, or a primary is known to forward to. */
  get primaryKnown (): boolean {
    return this.role === 'primary' || (this.role === 'replica' && this.primaryHostname !== undefined)
  }

  setRole (role: Role, primaryHostname?: string): void {
    this.role = role
    this.primaryHostname = role === 'primary' || primaryHostname === '' ? undefined : primaryHostname
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
    if (this.primaryWaiters.size > 0 && this.primaryKnown) {
      for (const w of this.primaryWaiters) {
        if (role === 'primary' || !w.self) this.finish(w, 'ready')
      }
      if (this.primaryWaiters.size === 0) this.changedDemand()
    }
  }

  /** Record a new position of `db` and release every waiter it satisfies. */
  setPosition (db: string, txid: bigint): void {
    this.positions.set(db, txid)
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
    if (this.position(db) >= txid) { done('ready'); return undefined }
    const w = new Waiter(db, txid, performance.now() + timeoutMs, done)
    let heap = this.waiting.get(db)
    const fresh = heap === undefined
    if (heap === undefined) { heap = txidHeap(); this.waiting.set(db, heap) }
    heap.push(w)
    this.track(w)
    if (fresh) this.changedDemand()
    return w
  }

  /**
   * Call `done` once a primary is known (or this node is it) — with `self`, once
   * this node is the primary — or after `timeoutMs`.
   */
  waitForPrimary (timeoutMs: number, done: (r: WaitResult) => void, self = false): Waiter | undefined {
    if (this.closed) { done('closed'); return undefined }
    if (self ? this.role === 'primary' : this.primaryKnown) { done('ready'); return undefined }
    const w = new Waiter(undefined, 0n, performance.now() + timeoutMs, done, self)
    this.primaryWaiters.add(w)
    this.track(w)
    if (this.primaryWaiters.size === 1) this.changedDemand()
    return w
  }

  /** Drop a waiter whose request went away. Its callback is called with 'cancelled'. */
  cancel (w: Waiter | undefined): void {
    if (w === undefined || w.deadlineSlot === -1) return
    this.unlink(w)
    this.finish(w, 'cancelled')
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
      this.primaryWaiters.delete(w)
      if (this.primaryWaiters.size === 0) this.changedDemand()
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
    if (w.db === undefined) this.primaryWaiters.delete(w)
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
    this.driver.demand?.(new Set(this.waiting.keys()), this.primaryWaiters.size > 0)
  }
}
