import { performance } from 'node:perf_hooks'

// LiteFS names a primary before it knows it can reach it: a replica's store
// sets the primary's hostname (the `primaryChange` event, `.primary`) and only
// then dials the primary's stream; when the dial fails it clears it again
// (store.go, monitorLeaseAsReplica). A replica whose static primary is down
// therefore announces the primary and retracts it 0–5 ms later, about once a
// second (reconnect-delay). Forwarding a write into that gap sends it to a node
// that cannot take it.
//
// What proves the connection is `.lag`: it is "now − timestamp of the last
// frame from the primary", and the primary sends a heartbeat frame as soon as a
// replica's stream connects (http/server.go), then at least every second. So
// the instant of last contact, `sampleTime − lag`, moves when a frame arrives
// and stands still while nothing does. Clocks of different machines never meet:
// only the movement of that instant is used, in either direction (a new primary
// whose clock is behind moves it backwards).

/** How far the instant of last contact must move to count as a new frame (ms); `.lag` has 1 ms resolution. */
const MOVED = 20
/** A freshly subscribed stream that names a primary is believed when the replica heard from it this recently (ms): under LiteFS's heartbeat interval, 1 s. */
const FRESH = 1000
/** Without a readable `.lag`, an announcement is believed once it has stood this long (ms). */
const SETTLE = 200
/** Sampling `.lag` while an announcement waits: fast at first, then slower (ms). */
const FAST = 10
const SLOW = 100

export class PrimaryConfirmation {
  /** The announced hostname not yet confirmed, if any. */
  pending: string | undefined
  private since = 0
  private contact: number | undefined
  private timer: NodeJS.Timeout | undefined

  /**
   * @param readLag `.lag` in ms now (a fresh read), undefined when unreadable.
   * @param confirmed called once with the hostname when the connection is proven.
   */
  constructor (
    private readonly readLag: () => number | undefined,
    private readonly confirmed: (hostname: string) => void
  ) {}

  /**
   * LiteFS named `hostname` as the primary. `snapshot`: it comes from the first
   * line of a subscription (or the first look at the files), which describes the
   * present rather than a change.
   */
  announce (hostname: string, snapshot: boolean): void {
    if (hostname === this.pending) return // already being confirmed
    this.cancel()
    const lag = this.readLag()
    if (snapshot && lag !== undefined && lag < FRESH) return this.confirmed(hostname)
    this.pending = hostname
    this.since = performance.now()
    this.contact = lag === undefined ? undefined : this.since - lag
    this.arm()
  }

  /** LiteFS no longer names this primary (or any): nothing is pending. */
  cancel (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.pending = undefined
  }

  private arm (): void {
    const waited = performance.now() - this.since
    this.timer = setTimeout(this.check, waited < 1000 ? FAST : SLOW)
    this.timer.unref() // never what keeps a process alive
  }

  private readonly check = (): void => {
    const hostname = this.pending as string
    const now = performance.now()
    const lag = this.readLag()
    let proven: boolean
    if (lag === undefined) {
      proven = this.contact === undefined && now - this.since >= SETTLE
    } else if (this.contact === undefined) {
      this.contact = now - lag // first readable sample: the baseline
      proven = false
    } else {
      proven = Math.abs(now - lag - this.contact) > MOVED
    }
    if (!proven) return this.arm()
    this.cancel()
    this.confirmed(hostname)
  }
}
