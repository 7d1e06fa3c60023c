import { EventsFeed } from './events-feed.js'
import { mountFiles, type MountFiles } from './mount-files.js'
import { NodeState, type Role, type StateDriver } from './node-state.js'
import { silentLogger, type Logger } from './logger.js'

export interface LitefsNodeOptions {
  /** The LiteFS FUSE mount directory. */
  mount: string
  /** LiteFS's HTTP API (`/events`), or false to rely on the mount files alone. */
  api: string | false
  /**
   * The role when LiteFS's API cannot say. A missing `.primary` means "primary"
   * or "replica cut off from the primary", so the files alone cannot tell: a
   * files-only primary must say so here. `.primary` present always means replica.
   */
  role?: 'primary' | 'replica'
  /** Databases whose positions are read at each (re)subscription. */
  databases: readonly string[]
  /** Milliseconds between file polls while requests wait and the API is not streaming. */
  pollInterval: number
  log?: Logger
}

/**
 * Drives a NodeState from a real LiteFS node: the `/events` stream while it
 * flows, the mount files otherwise. Files are polled only while a request
 * waits; an idle node does no I/O at all.
 */
class LitefsDriver implements StateDriver {
  readonly files: MountFiles
  readonly databases: Set<string>
  state!: NodeState
  feed: EventsFeed | undefined
  private demanded: ReadonlySet<string> = new Set()
  private wantsPrimary = false
  private poll: NodeJS.Timeout | undefined
  private closed = false

  constructor (private readonly opts: LitefsNodeOptions, private readonly log: Logger) {
    this.files = mountFiles(opts.mount)
    this.databases = new Set(opts.databases)
  }

  start (): void {
    this.refreshFromFiles()
    this.readAllPositions()
    if (this.opts.api === false) return
    this.feed = new EventsFeed(new URL('/events', this.opts.api).href, {
      role: (isPrimary, hostname) => this.state.setRole(isPrimary ? 'primary' : 'replica', hostname),
      tx: (db, txid) => this.state.setPosition(db, txid),
      subscribed: () => { this.readAllPositions(); this.stopPolling() },
      lost: () => { this.refreshFromFiles(); this.schedule() }
    }, this.log)
    this.feed.start()
  }

  get streaming (): boolean {
    return this.feed?.connected === true
  }

  readPosition = (db: string): bigint | undefined => this.files.readPosition(db)
  readLag = (): number | undefined => this.files.readLag()

  refresh = (): void => {
    if (!this.streaming) this.refreshFromFiles()
  }

  demand = (databases: ReadonlySet<string>, primary: boolean): void => {
    this.demanded = databases
    this.wantsPrimary = primary
    this.schedule()
  }

  close = async (): Promise<void> => {
    this.closed = true
    this.stopPolling()
    await this.feed?.close()
  }

  private readAllPositions (): void {
    for (const db of new Set([...this.databases, ...this.state.databases])) {
      const pos = this.files.readPosition(db)
      if (pos !== undefined) this.state.setPosition(db, pos)
    }
  }

  /** Role from `.primary`, for when the API is off or silent. */
  private refreshFromFiles (): void {
    this.applyPrimaryFile(this.files.readPrimary())
  }

  private applyPrimaryFile (hostname: string | undefined): void {
    if (hostname !== undefined) return this.state.setRole('replica', hostname)
    const state = this.state
    const role: Role = this.opts.role ?? (state.role === 'primary' ? 'primary' : state.role === 'replica' ? 'replica' : 'unknown')
    state.setRole(role, undefined)
  }

  private schedule (): void {
    const needed = !this.closed && !this.streaming && (this.demanded.size > 0 || this.wantsPrimary)
    if (!needed) return this.stopPolling()
    if (this.poll === undefined) this.poll = setTimeout(this.tick, this.opts.pollInterval)
  }

  private stopPolling (): void {
    clearTimeout(this.poll)
    this.poll = undefined
  }

  private readonly tick = (): void => {
    this.poll = undefined
    for (const db of this.demanded) {
      const pos = this.files.readPosition(db)
      if (pos !== undefined) this.state.setPosition(db, pos)
    }
    if (this.wantsPrimary) this.refreshFromFiles()
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

// One NodeState per mount per process, shared by every plugin instance and
// adapter that names the same mount and API, released when the last closes.
interface Shared { state: NodeState, driver: LitefsDriver, users: number }
const shared = new Map<string, Shared>()

export interface NodeLease {
  state: NodeState
  release: () => Promise<void>
}

export function acquireLitefsNode (opts: LitefsNodeOptions): NodeLease {
  const key = `${opts.mount}\0${String(opts.api)}\0${opts.role ?? ''}`
  let entry = shared.get(key)
  if (entry === undefined) {
    const state = openLitefsNode(opts)
    entry = { state, driver: state.driver as LitefsDriver, users: 0 }
    shared.set(key, entry)
  }
  for (const db of opts.databases) entry.driver.databases.add(db)
  entry.users++
  const held = entry
  let released = false
  return {
    state: held.state,
    release: async () => {
      if (released) return
      released = true
      if (--held.users > 0) return
      shared.delete(key)
      await held.state.close()
    }
  }
}
