/**
 * A NodeState fed by a real LiteFS node: the /events stream, the mount's files
 * (-pos, .primary) when the stream is down, the primary confirmation and the
 * lease fence. Sharing one per mount is shared-node.ts's job.
 */
import { performance } from 'node:perf_hooks'
import { existsSync } from 'node:fs'
import { EventsFeed } from './events-feed.js'
import { mountFiles, type MountFiles } from './mount-files.js'
import { NodeState, type StateDriver } from './node-state.js'
import { PrimaryConfirmation } from './primary-confirm.js'
import { Agent } from 'undici'
import { LeaseFence, hostnameFromInfo, type ConsulLease } from './lease-fence.js'
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
  }

  /**
   * Say so when the mount is not a live LiteFS mount, and why if it can tell;
   * `apiUp`: LiteFS's API answers, so the mount option itself is wrong. Returns
   * whether the mount is live.
   */
  private checkMount (apiUp: boolean): boolean {
    const mount = this.opts.mount
    if (this.files.live()) {
      if (this.mountWarned) this.warn.clear('LITEFS_MOUNT', mount, `${mount} is a live LiteFS mount again`)
      this.mountWarned = false
      if (this.opts.api === false) this.proven = true
      if (this.opts.api === false || this.streaming) this.warn.clear('LITEFS_STOPPED', mount, 'LiteFS on this node is back')
      return true
    }
    // Once LiteFS ran here with these settings, a dead mount is LiteFS stopping, not a wrong "mount".
    if (this.proven) {
      this.stopped(`its mount ${mount} does not answer`)
      return false
    }
    if (this.mountWarned) return false
    this.mountWarned = true
    const exists = existsSync(mount)
    this.warn.say('LITEFS_MOUNT', mount, !exists
      ? `the mount ${mount} does not exist: is "mount" LiteFS's fuse.dir? Writes wait and reads are held until it answers`
      : apiUp
        ? `LiteFS's API answers but ${mount} is not its mount (no .lag in it): set "mount" to LiteFS's fuse.dir`
        : `${mount} is not a live LiteFS mount (no .lag in it): LiteFS is not running there (yet), or "mount" is not its fuse.dir; writes wait and reads are held until it answers`,
    { mount })
    return false
  }

  /**
   * LiteFS ran here with these settings and is gone now: said once, as what it
   * is (LiteFS stopping or restarting), never as a configuration hint.
   */
  private stopped (how: string): void {
    this.warn.say('LITEFS_STOPPED', this.opts.mount, `LiteFS on this node stopped or is restarting (${how}); writes wait until it is back`, { mount: this.opts.mount })
  }

  /** A database named like none LiteFS has, while it has others: a wrong `db` option, most likely. */
  private checkDatabases (): void {
    const names = this.files.databases()
    for (const db of this.databases) {
      if (names.length === 0 || names.includes(db)) continue
      this.warn.say('LITEFS_DB', `${this.opts.mount}/${db}`, `no database "${db}" under ${this.opts.mount}, where LiteFS has ${names.map(n => `"${n}"`).join(', ')}: is "db" the file name your app opens?`, { db, databases: names })
    }
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
    this.confirmation = new PrimaryConfirmation(this.files.readLag, hostname => {
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
        if (this.checkMount(true)) {
          this.proven = true
          this.checkDatabases()
        }
        this.files.keep(true) // LiteFS is up: a kept -pos fd is now as fresh as a new open
        this.state.setLitefs('up')
        this.applyRole(isPrimary, hostname, true)
        this.readAllPositions()
        this.stopPolling()
      },
      role: (isPrimary, hostname) => this.applyRole(isPrimary, hostname, false),
      tx: (db, txid) => this.state.setPosition(db, txid),
      lost: (reason, first) => {
        this.confirmation.cancel()
        this.files.keep(false) // never hold an fd that blocks LiteFS's unmount
        // From up, the mount is assumed alive until probed; a failed reconnect
        // leaves a dead mount dead.
        if (this.state.litefs === 'up') this.state.setLitefs('stream-lost')
        if (first && this.proven) {
          this.stopped(`its event stream ended: ${reason}`)
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

  private readonly warn: Warnings
  private mountWarned = false
  /** LiteFS answered here once, on its stream and its mount: the settings are right. */
  private proven = false
  private probe: NodeJS.Timeout | undefined
  private lostAt = -Infinity

  get streaming (): boolean {
    return this.feed?.connected === true
  }

  source = (): 'events' | 'polling' | 'files' => this.opts.api === false ? 'files' : this.streaming ? 'events' : 'polling'

  readPosition = (db: string): bigint | undefined => this.files.readPosition(db)
  readPositionAsync = async (db: string): Promise<bigint | undefined> => await this.files.readPositionAsync(db)
  readLag = (): number | undefined => this.files.readLag()

  refresh = (): void => {
    if (this.opts.api === false) this.refreshFromFiles()
    else if (!this.streaming) this.state.setLitefs(this.checkMount(false) ? 'stream-lost' : 'down')
    // A write is being decided here as primary: the fence must be (kept) open.
    const fence = this.fence
    if (fence !== undefined && this.state.role === 'primary') {
      fence.touch()
      if (!fence.isOpen()) void fence.confirm()
    }
  }

  private fence: LeaseFence | undefined
  private fenceAgent: Agent | undefined

  demand = (databases: ReadonlySet<string>, condition: boolean): void => {
    this.demanded = databases
    this.wantsCondition = condition
    this.schedule()
  }

  close = async (): Promise<void> => {
    this.closed = true
    clearTimeout(this.probe)
    this.stopPolling()
    this.confirmation.cancel()
    this.files.keep(false)
    this.fence?.close()
    await this.feed?.close()
    await this.fenceAgent?.close()
  }

  private applyRole (isPrimary: boolean, hostname: string | undefined, snapshot: boolean): void {
    const state = this.state
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
    if (!this.checkMount(false)) {
      this.confirmation.cancel()
      this.state.setLitefs('down')
      return
    }
    const snapshot = !this.looked
    if (snapshot) this.checkDatabases()
    this.looked = true
    this.state.setLitefs('up')
    const hostname = this.files.readPrimary()
    if (hostname !== undefined) return this.applyRole(false, hostname, snapshot)
    this.confirmation.cancel()
    this.state.setRole(this.opts.role ?? 'unknown', undefined)
  }

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
    for (const db of this.demanded) {
      const pos = this.files.readPosition(db)
      if (pos !== undefined) this.state.setPosition(db, pos)
    }
    this.schedule()
  }
}

/** A NodeState fed by a real LiteFS node. Close it to end its stream and timers. */
export function openLitefsNode (opts: LitefsNodeOptions): NodeState {
  const driver = new LitefsDriver(opts, opts.log ?? silentLogger)
  const state = new NodeState(driver)
  driver.state = state
  driver.start()
  return state
}
