import Database from 'better-sqlite3'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { MAX_TIMER_MS, MAX_TIMER_WORDS } from '../core/duration.js'
import { removeAtExit } from './leftovers.js'
import { ReplicationLink } from './link.js'
import { ClusterNode, type DevNode } from './node.js'

export type { DevNode } from './node.js'

/** How often the primary looks for commits made outside a request (no request reads its position then). */
const POLL_MS = 2
export interface DevClusterOptions {
  /** How many nodes: `node-1` … `node-N`. Default 3. */
  nodes?: number
  /** The database's file name, as the plugin's options name it. Default `app.db`. */
  db?: string
  /**
   * Milliseconds between a commit on the primary and its data being readable on
   * a replica: a fixed number, or a `[min, max]` range drawn at random per
   * replica and per commit. Default 0 (still asynchronous: a replica is never
   * caught up within the request that wrote).
   */
  lag?: number | readonly [min: number, max: number]
  /**
   * Where the nodes' files live: `<dir>/<node>/<db>`. Default: a fresh
   * temporary directory, removed by `close()`. A given directory is left in
   * place; `node-1`'s database in it is kept and seeds the other nodes.
   */
  dir?: string
  /** SQL run once on `node-1` before replication starts, so every node starts with it. */
  schema?: string
}

/**
 * LiteFS for N nodes in one process, without FUSE: each node has its own
 * SQLite file, the primary's commits get increasing TXIDs, replicas receive
 * the data after the lag and only then advance their position. Nodes can be
 * stopped, restarted and promoted, as in a failover.
 */
export interface DevCluster {
  /** `node-1` … `node-N`; `node-1` starts as primary. */
  readonly nodes: readonly DevNode[]
  /** The node taking writes, or undefined after it stopped and before another is promoted. */
  readonly primary: DevNode | undefined
  /** The database's file name (`db` option), for `state.position(cluster.db)`. */
  readonly db: string
  /** The directory holding every node's files. */
  readonly dir: string
  /**
   * Make `node` the primary, as a LiteFS lease handoff or failover: the old
   * primary (if running) becomes a replica, `node` keeps its own position (commits
   * that had not reached it are lost), and every other running node follows it
   * and catches up from it. Rejects when `node` is stopped, or is stopped, promoted
   * over or closed before the handoff completes (it waits for a copy into `node`'s
   * file that is already running to land).
   */
  promote (node: DevNode): Promise<void>
  /** The node dies: role unknown, no replication to or from it; if it was primary, replicas have none. */
  stop (node: DevNode): void
  /** Bring a stopped node back as a replica of the current primary, catching up from it. */
  restart (node: DevNode): void
  /** Hold the data (and so the position) of a replica back until `resumeReplication`. */
  pauseReplication (node: DevNode): void
  resumeReplication (node: DevNode): void
  /**
   * Resolves once every running replica has the data of every commit made
   * before the call (later ones, made while it waits, are not waited for).
   * Waits for paused replicas; without a primary, for what is on its way.
   */
  settled (): Promise<void>
  /** Close every handle, timer and state, and remove the directory if the cluster made it. */
  close (): Promise<void>
}

/** Start a dev cluster: `node-1` is primary, the others are its replicas, all with the same data. */
export async function createDevCluster (options: DevClusterOptions = {}): Promise<DevCluster> {
  const { nodes = 3, db = 'app.db', lag = 0, schema } = options
  if (!Number.isInteger(nodes) || nodes < 1) throw new RangeError(`nodes must be a whole number ≥ 1, got ${nodes}`)
  if (db === '' || basename(db) !== db) throw new RangeError(`db must be a file name, got "${db}"`)
  const sample = lagSampler(lag)
  const ownsDir = options.dir === undefined
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'litefs-dev-'))
  const owned = ownsDir ? removeAtExit(dir) : undefined // from now: a process that ends while seeding leaves nothing either
  const names = Array.from({ length: nodes }, (_, i) => `node-${i + 1}`)
  try {
    for (const [i, name] of names.entries()) {
      // Only node-1's data seeds the cluster: stale replica files (and their -wal) must go.
      if (i > 0) await rm(join(dir, name), { recursive: true, force: true })
      await mkdir(join(dir, name), { recursive: true })
    }
    const { image, position } = seed(join(dir, names[0], db), schema)
    for (const name of names.slice(1)) await writeFile(join(dir, name, db), image)
    return new Cluster(dir, owned, db, names, position, sample)
  } catch (err) {
    if (owned !== undefined) { // a bad schema leaves no litter
      await rm(dir, { recursive: true, force: true })
      owned.forget()
    }
    throw err
  }
}

class Cluster implements DevCluster {
  readonly nodes: ClusterNode[]
  primary: ClusterNode | undefined
  private readonly poll: NodeJS.Timeout
  private settling: Array<{ target: bigint | undefined, resolve: () => void }> = []
  private handoffs = 0

  constructor (
    readonly dir: string,
    /** The directory is the cluster's own (made for it): removed by close(), or when the process ends. */
    private readonly owned: { forget: () => void } | undefined,
    readonly db: string,
    names: string[],
    position: bigint,
    private readonly lag: () => number
  ) {
    const hooks = {
      committed: (txid: bigint, snapshot: Buffer) => {
        for (const node of this.nodes) node.link?.send(txid, snapshot)
      },
      arrived: () => this.checkSettled()
    }
    this.nodes = names.map(name => new ClusterNode(name, join(dir, name, db), db, position, hooks))
    const primary = this.nodes[0]
    primary.becomePrimary()
    this.primary = primary
    // Same data everywhere already: replicas follow without a catch-up copy.
    for (const node of this.nodes.slice(1)) node.follow(this.linkTo(node), primary.name)
    this.poll = setInterval(() => this.primary?.detect(), POLL_MS).unref()
  }

  async promote (node: DevNode): Promise<void> {
    const next = this.member(node)
    if (!next.running) throw new Error(`${next.name} is stopped: restart it before promoting it`)
    if (next === this.primary) return
    const handoff = ++this.handoffs
    // The old primary stops taking writes at once; until the handoff completes nobody is primary.
    this.primary = undefined
    for (const n of this.running()) n.detach()
    this.checkSettled()
    await next.idle() // a copy still landing in next's file must not overwrite its first commits
    if (handoff !== this.handoffs || !next.running) {
      throw new Error(`the promotion of ${next.name} was overtaken by a stop, another promotion or close()`)
    }
    next.becomePrimary()
    this.primary = next
    for (const n of this.running()) if (n !== next) this.catchUp(n, next)
  }

  stop (node: DevNode): void {
    const n = this.member(node)
    if (!n.running) return
    n.stop()
    if (n === this.primary) {
      this.primary = undefined
      // LiteFS's replicas retry the lost primary about once a second, naming it for
      // 0–5 ms each time (fixtures README); litefs-proxy never believes those (.lag
      // does not move: primary-confirm.ts), so its state on real LiteFS names no
      // primary until another node takes the lease. As here.
      for (const replica of this.running()) replica.detach()
    }
    this.checkSettled()
  }

  restart (node: DevNode): void {
    const n = this.member(node)
    if (n.running) return
    n.start()
    if (this.primary === undefined) n.detach()
    else this.catchUp(n, this.primary)
  }

  pauseReplication (node: DevNode): void {
    this.member(node).paused = true
  }

  resumeReplication (node: DevNode): void {
    const n = this.member(node)
    n.paused = false
    n.link?.pump()
  }

  async settled (): Promise<void> {
    const primary = this.primary
    primary?.detect()
    // Commits made before the call, not every one: under writes that never pause the
    // cluster is never idle, and waiting for that hung a stop-then-promote under load.
    // Without a primary, what is on its way lands.
    const target = primary?.position
    if (this.isSettled(target)) return
    await new Promise<void>(resolve => this.settling.push({ target, resolve }))
  }

  async close (): Promise<void> {
    clearInterval(this.poll)
    this.primary = undefined
    for (const n of this.nodes) n.stop()
    this.checkSettled()
    await Promise.all(this.nodes.map(async n => {
      await n.idle()
      await n.state.close()
    }))
    if (this.owned !== undefined) {
      await rm(this.dir, { recursive: true, force: true })
      this.owned.forget()
    }
  }

  /** `replica` follows `primary` from a copy of the primary's current data, sent through the lag. */
  private catchUp (replica: ClusterNode, primary: ClusterNode): void {
    primary.detect() // the copy must be the data at the position it is sent with
    const link = this.linkTo(replica)
    replica.follow(link, primary.name)
    link.send(primary.position, primary.snapshot)
  }

  private linkTo (replica: ClusterNode): ReplicationLink {
    return new ReplicationLink(replica, this.lag)
  }

  private running (): ClusterNode[] {
    return this.nodes.filter(n => n.running)
  }

  private member (node: DevNode): ClusterNode {
    const n = this.nodes.find(m => m === node)
    if (n === undefined) throw new Error(`${node.name} is not a node of this cluster`)
    return n
  }

  /**
   * Every replica that follows has the primary's data at `target` (landed through its
   * link: a replica whose lost commit had the same TXID does not count), or has all it
   * was sent.
   */
  private isSettled (target: bigint | undefined): boolean {
    return this.nodes.every(n => n.link === undefined || n.link.idle || (target !== undefined && (n.link.landedTxid ?? -1n) >= target))
  }

  private checkSettled (): void {
    if (this.settling.length === 0) return
    this.settling = this.settling.filter(s => {
      if (!this.isSettled(s.target)) return true
      s.resolve()
      return false
    })
  }
}

/**
 * Create `file` (or open what is there) and run the schema: the bytes every
 * node starts from, and their TXID. Tables that exist at the start (the schema,
 * a kept database) are everybody's TXID 1; an empty database is TXID 0.
 */
function seed (file: string, schema: string | undefined): { image: Buffer, position: bigint } {
  const db = new Database(file)
  try {
    if (schema !== undefined) db.exec(schema)
    // Every node runs in WAL mode, as LiteFS apps mostly do. Replicas must: a copy
    // landing in a rollback-mode file would lock the app's reads there out.
    db.pragma('journal_mode = WAL')
    const tables = db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() as number
    return { image: db.serialize(), position: tables > 0 ? 1n : 0n }
  } finally {
    db.close()
  }
}

function lagSampler (lag: number | readonly [number, number]): () => number {
  const [min, max] = typeof lag === 'number' ? [lag, lag] : lag
  if (!(min >= 0 && max >= min && max <= MAX_TIMER_MS)) {
    throw new RangeError(`lag must be milliseconds ≥ 0 (${MAX_TIMER_WORDS}) or a [min, max] range of them, got ${String(lag)}`)
  }
  return () => min + Math.random() * (max - min)
}
