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
  // The instant of the last frame, as the first readable sample bounds it: [earliest, latest] (ms).
  private contact: [number, number] | undefined
  private timer: NodeJS.Timeout | undefined
  // Each announce and cancel starts a new one: a `.lag` read that began before
  // is about an announcement no longer pending, and its answer is dropped.
  private generation = 0

  /**
   * @param readLag `.lag` in ms from a read that starts now, undefined when
   *   unreadable. Read off the event loop (LiteFS's mount: the thread pool), one
   *   read at a time: a LiteFS that stops answering during a failover leaves the
   *   announcement pending, never the process (the walk-6 fault's other input).
   * @param confirmed called once with the hostname when the connection is proven.
   */
  constructor (
    private readonly readLag: () => Promise<number | undefined>,
    private readonly confirmed: (hostname: string) => void
  ) {}

  /**
   * LiteFS named `hostname` as the primary. `snapshot`: it comes from the first
   * line of a subscription (or the first look at the files), which describes the
   * present rather than a change. Pending from now on; confirmed, at the soonest,
   * once the first `.lag` read answers.
   */
  announce (hostname: string, snapshot: boolean): void {
    if (hostname === this.pending) return // already being confirmed
    this.cancel()
    this.pending = hostname
    this.since = performance.now()
    this.contact = undefined
    this.sample((lag, started, ended) => {
      if (snapshot && lag !== undefined && lag < FRESH) return this.confirm()
      this.check(lag, started, ended)
    })
  }

  /** LiteFS no longer names this primary (or any): nothing is pending. */
  cancel (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.pending = undefined
    this.generation++
  }

  /**
   * Reads `.lag` and hands it to `then` with when the read started and ended,
   * unless the announcement changed meanwhile. LiteFS computed the lag at some
   * instant between the two (the read is queued on the thread pool, then waits
   * for the event loop), so the last frame's instant is known within that span.
   */
  private sample (then: (lag: number | undefined, started: number, ended: number) => void): void {
    const generation = this.generation
    const started = performance.now()
    void this.readLag().then(lag => {
      if (generation === this.generation) then(lag, started, performance.now())
    })
  }

  private confirm (): void {
    const hostname = this.pending as string
    this.cancel()
    this.confirmed(hostname)
  }

  private arm (): void {
    const waited = performance.now() - this.since
    this.timer = setTimeout(this.tick, waited < 1000 ? FAST : SLOW)
    this.timer.unref() // never what keeps a process alive
  }

  private readonly tick = (): void => { this.sample(this.check) }

  private readonly check = (lag: number | undefined, started: number, ended: number): void => {
    let proven: boolean
    if (lag === undefined) {
      proven = this.contact === undefined && ended - this.since >= SETTLE
    } else if (this.contact === undefined) {
      this.contact = [started - lag, ended - lag] // first readable sample: the baseline
      proven = false
    } else {
      // Moved, in either direction, by more than both spans leave in doubt: a
      // slow read (a busy loop, a LiteFS that paused) widens them, never proves.
      const [earliest, latest] = this.contact
      proven = started - lag - latest > MOVED || earliest - (ended - lag) > MOVED
    }
    if (proven) this.confirm()
    else this.arm()
  }
}
