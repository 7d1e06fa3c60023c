import Database from 'better-sqlite3'
import { performance } from 'node:perf_hooks'
import { NodeState } from '../core/node-state.js'
import type { LinkTarget, ReplicationLink } from './link.js'
import { copySnapshot, takeSnapshot } from './snapshot.js'

const EMPTY = Buffer.alloc(0)

/** One node of a dev cluster, as an app running on it sees it. */
export interface DevNode {
  /** The hostname LiteFS would report for this node (`.primary`, `/events`): `node-1`, `node-2`… */
  readonly name: string
  /**
   * Give this to the plugin (option `state`): it behaves as a real LiteFS
   * node's state — role, primary hostname, positions that advance only once
   * the data is readable here, lag.
   */
  readonly state: NodeState
  /** This node's own SQLite file. */
  readonly file: string
  /**
   * The app's handle on this node's database: read-write on the primary,
   * read-only on a replica (a write throws SQLITE_READONLY, as under LiteFS),
   * closed while the node is stopped. A new handle is opened whenever the node
   * changes role, so an app must read `node.db` per request, never keep it.
   * The database is in WAL mode on every node and stays so: the cluster's own
   * connection to the primary's file keeps SQLite from leaving WAL mode there.
   */
  readonly db: Database.Database
  /** False between `stop()` and `restart()`, as if the node's process had died. */
  readonly running: boolean
}

/** What a node tells its cluster. */
export interface NodeHooks {
  /** The primary detected a commit: send it to the replicas. */
  committed: (txid: bigint, snapshot: Buffer) => void
  /** A replica's position advanced. */
  arrived: () => void
}

/**
 * The node's files, handles and state driver. A primary finds the app's
 * commits with a second, "observer" connection: `PRAGMA data_version` changes
 * whenever another connection has committed, whatever the app did to commit.
 */
export class ClusterNode implements DevNode, LinkTarget {
  readonly state: NodeState
  db: Database.Database
  running = true
  paused = false
  /** The TXID whose data is in this node's file (on the primary: its last commit). */
  position: bigint
  /** On the primary, the data at `position`, for replicas that join; else empty. */
  snapshot: Buffer = EMPTY
  /** Replication from the primary, while this node is a replica that has one. */
  link: ReplicationLink | undefined
  /** When this replica lost its primary, for its lag; undefined while it has one or is primary. */
  private detachedAt: number | undefined
  private observer: Database.Database | undefined
  private dataVersion = 0
  /** The last copy into this file: each waits for the one before, so copies land one at a time, in order. */
  private copying: Promise<unknown> = Promise.resolve()

  constructor (
    readonly name: string,
    readonly file: string,
    private readonly database: string,
    position: bigint,
    private readonly hooks: NodeHooks
  ) {
    this.position = position
    this.db = this.openReplica()
    this.state = new NodeState({
      readPosition: db => this.readPosition(db),
      readLag: () => this.readLag(),
      // Any running node can be promoted (DevCluster.promote): every node is a
      // candidate, so its replica reports count for a primary's durability.
      candidate: () => true,
      // Its name among its peers (durability's reports): one OS host name for every node would make them one peer.
      name
    })
    this.state.setPosition(database, position)
  }

  /** Take writes: the file becomes read-write, TXIDs continue from this node's own position. */
  becomePrimary (): void {
    this.closeHandles()
    this.db = new Database(this.file)
    this.observer = new Database(this.file)
    this.dataVersion = readDataVersion(this.observer)
    this.snapshot = takeSnapshot(this.observer)
    this.detachedAt = undefined
    this.state.setRole('primary')
  }

  /** Replicate from `primary` through `link` (the handle becomes read-only if it was not). */
  follow (link: ReplicationLink, primary: string): void {
    this.becomeReplica()
    this.link = link
    this.detachedAt = undefined
    this.state.setRole('replica', primary)
  }

  /** Lose the primary (it stopped, or a promotion is under way): a replica that knows of none. */
  detach (): void {
    this.becomeReplica()
    this.detachedAt ??= performance.now()
    this.state.setRole('replica', undefined)
  }

  /** Die, as LiteFS or the node's process would: no handle, no replication, role unknown. */
  stop (): void {
    this.link?.close()
    this.link = undefined
    this.closeHandles()
    this.snapshot = EMPTY
    this.detachedAt = undefined
    this.running = false
    this.state.setLitefs('down') // as an app sees a node whose LiteFS stopped: role unknown, mount dead
  }

  /** Come back as a replica with the data it had; the cluster decides whom it follows. */
  start (): void {
    this.running = true
    this.db = this.openReplica()
    this.state.setLitefs('up') // the cluster says whom it follows next
  }

  /** On the primary: give the app's commits since the last look their TXID, and send them. */
  detect (): void {
    if (this.observer === undefined) return
    const version = readDataVersion(this.observer)
    if (version === this.dataVersion) return
    this.dataVersion = version
    this.position++
    this.snapshot = takeSnapshot(this.observer)
    this.state.setPosition(this.database, this.position)
    this.hooks.committed(this.position, this.snapshot)
  }

  async copy (snapshot: Buffer): Promise<boolean> {
    const run = this.copying.then(async () => await copySnapshot(snapshot, this.file))
    this.copying = run
    return await run
  }

  arrived (txid: bigint): void {
    this.position = txid
    this.state.setPosition(this.database, txid)
    this.hooks.arrived()
  }

  /** Resolves once no copy into this file is running: before it takes writes, before close. */
  async idle (): Promise<void> {
    await this.copying
  }

  /** Authoritative, as LiteFS's `-pos` file: the primary's commits made so far are counted first. */
  private readPosition (db: string): bigint | undefined {
    if (db !== this.database || !this.running) return undefined
    this.detect()
    return this.position
  }

  /** How long the oldest transaction not yet readable here has been on its way, or since the primary was lost. */
  private readLag (): number | undefined {
    if (!this.running) return undefined
    const since = this.link?.oldestPending ?? this.detachedAt
    return since === undefined ? 0 : Math.round(performance.now() - since)
  }

  private becomeReplica (): void {
    this.link?.close()
    this.link = undefined
    if (this.observer === undefined) return // already a replica: its handle stays
    this.snapshot = EMPTY
    this.closeHandles()
    this.db = this.openReplica()
  }

  private openReplica (): Database.Database {
    return new Database(this.file, { readonly: true })
  }

  private closeHandles (): void {
    this.db.close()
    this.observer?.close()
    this.observer = undefined
  }
}

function readDataVersion (observer: Database.Database): number {
  return observer.pragma('data_version', { simple: true }) as number
}
