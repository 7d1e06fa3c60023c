// Longer than 300 lines: the one driver where LiteFS's stream, its mount and the
// lease meet; each turn it takes (subscribed, lost, polled, the mount watched)
// reads the others' state, which a split would only pass back and forth.
/**
 * A NodeState fed by a real LiteFS node: the /events stream, the mount's files
 * (-pos, .primary) when the stream is down, the primary confirmation and the
 * lease fence. Whether the mount is live and the right one (and saying so) is
 * mount-check.ts's; sharing one per mount is shared-node.ts's.
 */
import { performance } from 'node:perf_hooks'
import { SharedRead } from './shared-read.js'
import { disagreement } from './api-mount.js'
import { ENDED, EventsFeed } from './events-feed.js'
import { MountCheck } from './mount-check.js'
import { mountFiles, type MountFiles } from './mount-files.js'
import { NodeState, type StateDriver } from './node-state.js'
import { PrimaryConfirmation } from './primary-confirm.js'
import { Agent } from 'undici'
import { LeaseFence, hostnameFromInfo, type ConsulLease } from './lease-fence.js'
import { LoopStall } from './loop-stall.js'
import { silentLogger, type Logger } from './logger.js'
import { warnings, type Warnings } from './warnings.js'

export interface LitefsNodeOptions {
  /** The LiteFS FUSE mount directory. */
  mount: string
  /** LiteFS's HTTP API (`/events`), or false to rely on the mount files alone. */
  api: string | false
  /**
   * With `api: false`, the role the files cannot tell: a missing `.primary`
   * means "primary" or "replica cut off from the primary", so a files-only
   * primary must say so here. `.primary` present always means replica.
   */
  role?: 'primary' | 'replica'
  /** Databases whose positions are read at each (re)subscription. */
  databases: readonly string[]
  /** Milliseconds between file polls while requests wait and the API is not streaming. */
  pollInterval: number
  /** The Consul lease LiteFS uses: writes as primary only while Consul confirms it is this node's (lease-fence.ts). */
  consul?: ConsulLease & { hostname?: string }
  log?: Logger
}

/** After the event stream drops, how long before the mount is looked at (ms): LiteFS may be unmounting. */
const PROBE_DELAY = 100
/** How often a mount that does not answer while LiteFS's API does is looked at again (ms): a stat-like open of `.lag`. */
const MOUNT_WATCH_MS = 250

/**
 * Drives a NodeState from a real LiteFS node: the `/events` stream while it
 * flows, the mount files otherwise. Role and primary are believed only while
 * LiteFS answers now (DESIGN §3.5): a stream that drops takes them with it, and
 * a primary named by LiteFS counts only once the replica is proven connected
 * to it (primary-confirm.ts). Files are polled only while a request waits; an
 * idle node does no I/O at all.
 */
export class LitefsDriver implements StateDriver {
  readonly files: MountFiles
  readonly databases: Set<string>
  state!: NodeState
  feed: EventsFeed | undefined
  private confirmation!: PrimaryConfirmation
  private demanded: ReadonlySet<string> = new Set()
  private wantsCondition = false
  private poll: NodeJS.Timeout | undefined
  private closed = false
  private looked = false // the files were looked at once (the first look is a snapshot)

  constructor (private readonly opts: LitefsNodeOptions, private readonly log: Logger) {
    this.files = mountFiles(opts.mount)
    this.databases = new Set(opts.databases)
    this.warn = warnings(this.log)
    this.check = new MountCheck(opts.mount, opts.api === false, this.files, this.warn, () => this.streaming)
  }

  start (): void {
    const consul = this.opts.consul
    if (consul !== undefined) {
      const agent = new Agent({ connectTimeout: 1000 })
      const self = consul.hostname !== undefined ? async () => consul.hostname : hostnameFromInfo(this.opts.api as string, agent)
      this.fence = new LeaseFence(consul, self, agent, this.log, () => this.state.fenceChanged())
      this.state.fence = this.fence
      this.fenceAgent = agent
    }
    this.confirmation = new PrimaryConfirmation(this.files.readLagAsync, hostname => {
      if (this.state.litefs === 'up') this.state.setRole('replica', hostname)
    })
    if (this.opts.api === false) {
      this.refreshFromFiles()
      this.readAllPositions()
      return
    }
    // Nothing LiteFS said is known yet: writes wait for the first subscription.
    // The mount is judged (and any misconfiguration said) once the API answers
    // or fails: it tells a wrong `mount` from a LiteFS that is not running.
    this.state.setLitefs(this.files.live() ? 'stream-lost' : 'down')
    const api = this.opts.api
    this.readAllPositions()
    this.feed = new EventsFeed(new URL('/events', this.opts.api).href, {
      subscribed: (isPrimary, hostname) => {
        this.warn.clear('LITEFS_API_UNREACHABLE', api, `LiteFS's event stream at ${api} is back`)
        this.stopPolling()
        if (this.mountUp()) {
          this.applyRole(isPrimary, hostname, true)
          this.readAllPositions()
        } else {
          // LiteFS is not up for this app: no role (nothing is written here) until the mount answers.
          this.apiRole = { isPrimary, hostname }
          this.watchMount()
        }
      },
      role: (isPrimary, hostname) => {
        if (this.state.litefs === 'up') this.applyRole(isPrimary, hostname, false)
        else this.apiRole = { isPrimary, hostname } // taken up once the mount answers
      },
      tx: (db, txid) => this.state.setPosition(db, txid),
      lost: (reason, first) => {
        this.confirmation.cancel()
        clearTimeout(this.mountWatch) // the loss's own probe and polls look at the mount now
        this.files.keep(false) // never hold an fd that blocks LiteFS's unmount
        // From up, the mount is assumed alive until probed; a failed reconnect
        // leaves a dead mount dead.
        if (this.state.litefs === 'up') this.state.setLitefs('stream-lost')
        if (first && this.check.proven) {
          this.check.stopped(reason === ENDED ? reason : `its event stream failed: ${reason}`)
        } else if (first) {
          this.warn.say('LITEFS_API_UNREACHABLE', api, `LiteFS's event stream at ${api} is unavailable (${reason}): writes wait until it is back; is LiteFS running, and is "api" its http.addr?`, { api, reason })
        }
        // Is the mount dead too? Not asked at once: a LiteFS that is stopping may
        // still be unmounting, and any open file (even one to look) makes that fail.
        this.lostAt = performance.now()
        clearTimeout(this.probe)
        this.probe = setTimeout(this.refresh, PROBE_DELAY)
        this.probe.unref()
        this.schedule()
      }
    }, this.log)
    this.feed.start()
  }

  /**
   * The API answers: is the mount LiteFS's too? Only then is LiteFS up here. An
   * API answering beside a `mount` that is not its live mount (a typo, a plain
   * directory where SQLite would create a new database) is LiteFS absent for
   * this app: the state is down — writes wait, then 503, never run — and
   * LITEFS_MOUNT says why, once.
   */
  private mountUp (): boolean {
    if (!this.check.live(true)) {
      this.state.setLitefs('down')
      return false
    }
    this.check.proven = true
    this.check.databases(this.databases)
    this.files.keep(true) // LiteFS is up: a kept -pos fd is now as fresh as a new open
    this.state.setLitefs('up')
    return true
  }

  /** While the stream flows and the mount does not answer, look at it again every MOUNT_WATCH_MS until it does. */
  private watchMount (): void {
    clearTimeout(this.mountWatch)
    // close() and a lost stream clear this timer: when it fires, the stream flows.
    this.mountWatch = setTimeout(() => {
      if (!this.mountUp()) return this.watchMount()
      this.applyRole(this.apiRole.isPrimary, this.apiRole.hostname, true)
      this.readAllPositions()
    }, MOUNT_WATCH_MS)
    this.mountWatch.unref()
  }

  private mountWatch: NodeJS.Timeout | undefined
  /** What the API last said of roles while the mount did not answer. */
  private apiRole: { isPrimary: boolean, hostname: string | undefined } = { isPrimary: false, hostname: undefined }
  private readonly warn: Warnings
  private readonly check: MountCheck
  private probe: NodeJS.Timeout | undefined
  private lostAt = -Infinity

  get streaming (): boolean {
    return this.feed?.connected === true
  }

  source = (): 'events' | 'polling' | 'files' => this.opts.api === false ? 'files' : this.streaming ? 'events' : 'polling'

  readPosition = (db: string): bigint | undefined => this.files.readPosition(db)
  // Handed on as they are: an async wrapper would cost a promise and a microtask per read.
  readPositionAsync = (db: string): Promise<bigint | undefined> => this.files.readPositionAsync(db)
  readPositionsAsync = (dbs: readonly string[]): Promise<Array<bigint | undefined>> => this.files.readPositionsAsync(dbs)
  readLag = (): number | undefined => this.files.readLag()
  readLagAsync = (): Promise<number | undefined> => this.files.readLagAsync()

  refresh = (): void => {
    if (this.opts.api === false) this.refreshFromFiles()
    else if (!this.streaming) this.state.setLitefs(this.check.live(false) ? 'stream-lost' : 'down')
    // After the loop stood still the stream's word may be stale: look at the
    // mount once, by a stat (an open file, even to look, can make an unmount
    // under way fail). A live mount changes nothing; a dead one is LiteFS gone.
    else if (this.loop.stalled()) this.lookAtMount('after the event loop stood still')
    // A write is being decided here as primary: the fence must be (kept) open.
    const fence = this.fence
    if (fence !== undefined && this.state.role === 'primary') {
      fence.touch()
      if (!fence.isOpen()) void fence.confirm()
    }
  }

  mountAnswers = (): boolean => this.lookAtMount('when a write\'s position was read')

  /** The mount looked at by a stat (mount-check.ts): a dead one is LiteFS gone, and the state goes down. */
  private lookAtMount (when: string): boolean {
    if (this.check.answers(when)) return true
    this.state.setLitefs('down')
    return false
  }

  private fence: LeaseFence | undefined
  private readonly loop = new LoopStall()
  private fenceAgent: Agent | undefined

  demand = (databases: ReadonlySet<string>, condition: boolean): void => {
    this.demanded = databases
    this.wantsCondition = condition
    this.schedule()
  }

  close = async (): Promise<void> => {
    this.closed = true
    this.loop.close()
    clearTimeout(this.probe)
    clearTimeout(this.mountWatch)
    this.stopPolling()
    this.confirmation.cancel()
    this.files.keep(false)
    this.fence?.close()
    await this.feed?.close()
    await this.fenceAgent?.close()
  }

  private applyRole (isPrimary: boolean, hostname: string | undefined, snapshot: boolean): void {
    const state = this.state
    if (this.opts.api !== false) this.agree(isPrimary, hostname)
    if (isPrimary || hostname === undefined) {
      this.confirmation.cancel()
      state.setRole(isPrimary ? 'primary' : 'replica', undefined)
      if (isPrimary) void this.fence?.confirm() // a new primary: is the lease really its own?
      return
    }
    if (state.role === 'replica' && state.primaryHostname === hostname) return // already confirmed
    // Named, not yet proven: a replica with no primary to forward to until then.
    state.setRole('replica', undefined)
    this.confirmation.announce(hostname, snapshot)
  }

  /** Do the API and the mount describe one node (api-mount.ts)? Said once, and when it clears. */
  private agree (isPrimary: boolean, hostname: string | undefined): void {
    const { api, mount } = this.opts
    const why = disagreement(this.files, api as string, mount, isPrimary, hostname)
    if (why === this.state.mismatch) return
    this.state.mismatch = why
    const scope = `${String(api)} ${mount}`
    if (why === undefined) this.warn.clear('LITEFS_MISMATCH', scope, `LiteFS's API at ${String(api)} and the mount ${mount} agree now: writes are served`)
    else this.warn.say('LITEFS_MISMATCH', scope, `${why}. Writes are refused (503 LITEFS_MISMATCH) until "api" is the http.addr and "mount" the fuse.dir of the same LiteFS`, { api, mount })
  }

  private readAllPositions (): void {
    for (const db of new Set([...this.databases, ...this.state.databases])) {
      const pos = this.files.readPosition(db)
      if (pos !== undefined) this.state.setPosition(db, pos)
    }
  }

  /**
   * Files only (`api: false`): LiteFS is up while its mount answers; `.primary`
   * names the primary of a replica; without it the node is what the `role`
   * option says (a primary and a cut-off replica look the same), else unknown.
   */
  private refreshFromFiles (): void {
    if (!this.check.live(false)) {
      this.confirmation.cancel()
      this.state.setLitefs('down')
      return
    }
    const snapshot = !this.looked
    if (snapshot) this.check.databases(this.databases)
    this.looked = true
    this.state.setLitefs('up')
    const hostname = this.files.readPrimary()
    if (hostname !== undefined) {
      if (this.roleSaid) {
        this.roleSaid = false
        this.warn.clear('LITEFS_ROLE', this.opts.mount, `${this.opts.mount}/.primary names the primary (${hostname}): this node is a replica, its role known`)
      }
      return this.applyRole(false, hostname, snapshot)
    }
    this.confirmation.cancel()
    if (this.opts.role === undefined && !this.roleSaid) {
      // A primary started with api: false and no role would hold every write,
      // then answer it 503: said once, naming the fix, while it lasts.
      this.roleSaid = true
      this.warn.say('LITEFS_ROLE', this.opts.mount, `api: false and no "role" option: ${this.opts.mount} has no .primary file, so this node is the primary or a replica cut off from it and the mount cannot tell which. Its role is unknown: health answers 503 "role-unknown" and writes are held, then answered 503 LITEFS_ROLE_UNKNOWN. Set "role" to "primary" on the primary ("replica" on the others)`, { mount: this.opts.mount })
    }
    this.state.setRole(this.opts.role ?? 'unknown', undefined)
  }

  /** LITEFS_ROLE was said and has not cleared. */
  private roleSaid = false

  private schedule (): void {
    const needed = !this.closed && !this.streaming && (this.demanded.size > 0 || this.wantsCondition)
    if (!needed) return this.stopPolling()
    if (this.poll === undefined) {
      // Polls wait out PROBE_DELAY after a loss too (see `lost`).
      const delay = Math.max(this.opts.pollInterval, this.lostAt + PROBE_DELAY - performance.now())
      this.poll = setTimeout(this.tick, delay)
      this.poll.unref()
    }
  }

  private stopPolling (): void {
    clearTimeout(this.poll)
    this.poll = undefined
  }

  private readonly tick = (): void => {
    this.poll = undefined
    if (this.wantsCondition) this.refresh()
    // Off the event loop (a stopped LiteFS blocks whoever reads its mount), and
    // shared: a mount that does not answer holds one read, not one a poll.
    void this.polled.join()
    this.schedule()
  }

  /** The polls' read of the awaited positions (set as read: a re-synced replica may go back). */
  private readonly polled = new SharedRead(async () => {
    const dbs = [...this.demanded]
    const positions = await this.files.readPositionsAsync(dbs)
    dbs.forEach((db, i) => {
      const pos = positions[i]
      if (pos !== undefined) this.state.setPosition(db, pos)
    })
  })
}

/** A NodeState fed by a real LiteFS node. Close it to end its stream and timers. */
export function openLitefsNode (opts: LitefsNodeOptions): NodeState {
  const driver = new LitefsDriver(opts, opts.log ?? silentLogger)
  const state = new NodeState(driver)
  driver.state = state
  driver.start()
  return state
}

/** Track `databases` too (read at each (re)subscription) on a state openLitefsNode made. */
export function trackDatabases (state: NodeState, databases: readonly string[]): void {
  for (const db of databases) (state.driver as LitefsDriver).databases.add(db)
}
