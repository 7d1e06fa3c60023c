import { performance } from 'node:perf_hooks'

/** How long a replica waits before copying again when a reader held its file's lock. */
const RETRY_MS = 5

/** The replica's side of a link. */
export interface LinkTarget {
  /** Replication to this replica is held back (`pauseReplication`). */
  readonly paused: boolean
  /** Copy a snapshot into the replica's file; false when it must be tried again. */
  copy: (snapshot: Buffer) => Promise<boolean>
  /** The data of `txid` is in the replica's file and readable there. */
  arrived: (txid: bigint) => void
}

interface Delivery {
  txid: bigint
  snapshot: Buffer
  sentAt: number
  dueAt: number
}

/**
 * The stream of transactions from the primary to one replica, as LiteFS's
 * replication stream: each commit lands a lag after it was made, in commit
 * order, never an older one after a newer one. A replica that fell behind
 * (lag, pause, a busy file) copies only the newest snapshot that is due, as
 * it would apply everything it has received at once; its position jumps.
 * A closed link (primary gone, replica stopped) delivers nothing more.
 */
export class ReplicationLink {
  private queue: Delivery[] = []
  private inflight: Delivery | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false
  /** The last TXID that landed through this link: the current primary's data, not what the replica had before. */
  landedTxid: bigint | undefined

  constructor (private readonly target: LinkTarget, private readonly lag: () => number) {}

  /** Send the primary's data at `txid`; it lands after the lag, and after everything sent before. */
  send (txid: bigint, snapshot: Buffer): void {
    const sentAt = performance.now()
    const previous = this.queue.at(-1) ?? this.inflight
    // A later commit cannot overtake an earlier one, however the random lags fall.
    const dueAt = Math.max(sentAt + this.lag(), previous?.dueAt ?? 0)
    this.queue.push({ txid, snapshot, sentAt, dueAt })
    this.pump()
  }

  /** When the oldest transaction sent and not yet readable on the replica was sent. */
  get oldestPending (): number | undefined {
    return (this.inflight ?? this.queue[0])?.sentAt
  }

  /** Everything sent has landed. */
  get idle (): boolean {
    return this.inflight === undefined && this.queue.length === 0
  }

  /** Land what is due, or wait for it. Called again on resume. */
  pump (): void {
    if (this.closed || this.target.paused || this.inflight !== undefined || this.timer !== undefined) return
    const head = this.queue[0]
    if (head === undefined) return
    const now = performance.now()
    if (head.dueAt > now) return this.wakeIn(head.dueAt - now)
    let last = 1
    while (last < this.queue.length && this.queue[last].dueAt <= now) last++
    const delivery = this.queue[last - 1]
    this.queue.splice(0, last)
    this.inflight = delivery
    void this.target.copy(delivery.snapshot).then(copied => this.landed(delivery, copied))
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.queue = []
  }

  private landed (delivery: Delivery, copied: boolean): void {
    this.inflight = undefined
    if (this.closed) return // the replica stopped or changed primary meanwhile: its position stays
    if (copied) {
      this.landedTxid = delivery.txid
      this.target.arrived(delivery.txid)
      this.pump()
    } else {
      this.queue.unshift(delivery)
      this.wakeIn(RETRY_MS)
    }
  }

  private wakeIn (ms: number): void {
    // Ref'd on purpose: a test awaiting settled() must not see the process exit
    // under it. Every timer is finite, and close() clears it.
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.pump()
    }, ms)
  }
}
