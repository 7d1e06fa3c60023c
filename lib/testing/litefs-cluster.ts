/**
 * A real LiteFS cluster on one machine, for tests: N `litefs mount` processes
 * with a static lease, each with its own FUSE mount, data directory and HTTP
 * API port on 127.0.0.1. Nodes can be stopped (SIGTERM), crashed (SIGKILL),
 * restarted, and the static primary moved ("static failover").
 *
 * Needs Linux, /dev/fuse, fusermount3, root, and a litefs binary
 * (`scripts/install-litefs.sh` installs the last two). Use `fuseProblem()` and
 * `findLitefs()` to skip tests where they are missing.
 *
 * This module is the public entry (`litefs-proxy/litefs-cluster`) and owns the
 * cluster: checking options, the base directory, which node is the static
 * primary, starting the nodes in order, `waitReplicated`, `setPrimary` and
 * `close()`. The rest is split by job:
 *   - cluster-types.ts      the public option and result types;
 *   - litefs-binary.ts      finding LiteFS, checking FUSE;
 *   - cluster-setup.ts      the checks and base directory both cluster kinds start with;
 *   - litefs-node.ts        one node's process: start/stop/kill/restart, /info, -pos;
 *   - litefs-config.ts      the litefs.yml of a static lease;
 *   - replication-relay.ts  the fault of pausing a replica's replication;
 *   - mounts.ts             the mount table and unmounting (dead mounts included);
 *   - safety-net.ts         the exit hook that ends processes and mounts a crashed test left;
 *   - wait.ts               sleeping, bounds, free ports, parsing -pos.
 * And, for failover tests with a Consul lease (`startConsulCluster`):
 *   - consul-cluster.ts     the cluster: Consul + N nodes configured by `litefs-proxy config`;
 *   - consul-agent.ts       the Consul agent, finding its binary, who holds the lease;
 *   - consul-node.ts        a node's faults: crash, kill, stop, pause, partition, heal;
 *   - node-app.ts           an app process beside a node, in its namespace;
 *   - netns.ts              a namespace per node on a private bridge, partitions (iptables);
 *   - netns-gateway.ts      how the test process reaches into the namespaces;
 *   - balancer.ts           a round-robin balancer on 127.0.0.1 over the nodes' apps.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { LitefsCluster, LitefsClusterOptions } from './cluster-types.js'
import { clusterDir, clusterHostnames, litefsBinary } from './cluster-setup.js'
import { ClusterNode, ERROR_LOG_LINES, type ClusterContext } from './litefs-node.js'
import { unmountAll } from './mounts.js'
import { installSafetyNet, trackCreatedDir, untrackCreatedDir, untrackNode } from './safety-net.js'
import { freePorts, sleep } from './wait.js'

export type { LitefsCluster, LitefsClusterOptions, LitefsInfo, LitefsNode, LitefsNodeInfo, LitefsProxySection } from './cluster-types.js'
export { findLitefs, fuseProblem } from './litefs-binary.js'
// The Consul lease, namespaces and faults for failover tests (consul-cluster.ts).
export { startConsulCluster, type ConsulCluster, type ConsulClusterOptions } from './consul-cluster.js'
export { findConsul, type ConsulAgent, type LeaseHolder } from './consul-agent.js'
export type { ConsulNode, PartitionOptions } from './consul-node.js'
export type { NodeApp, NodeAppOptions } from './node-app.js'
export type { Balancer } from './balancer.js'
export { netnsProblem, type ClusterNetwork } from './netns.js'

const DEFAULT_READY_TIMEOUT = 20_000
const DEFAULT_STOP_TIMEOUT = 10_000

class Cluster implements LitefsCluster, ClusterContext {
  readonly nodes: ClusterNode[] = []
  readonly dir: string
  readonly binary: string
  readonly readyTimeout: number
  readonly stopTimeout: number
  readonly options: LitefsClusterOptions
  closed = false
  private primaryIndex: number
  private readonly createdDir: boolean
  private closing: Promise<void> | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor (options: LitefsClusterOptions, dir: string, createdDir: boolean, binary: string, hostnames: string[], ports: number[], primary: number) {
    this.options = options
    this.dir = dir
    this.createdDir = createdDir
    this.binary = binary
    this.readyTimeout = options.readyTimeout ?? DEFAULT_READY_TIMEOUT
    this.stopTimeout = options.stopTimeout ?? DEFAULT_STOP_TIMEOUT
    this.primaryIndex = primary
    hostnames.forEach((hostname, i) => {
      const nodeDir = join(dir, hostname)
      mkdirSync(nodeDir, { recursive: true })
      this.nodes.push(new ClusterNode(this, i, hostname, nodeDir, ports[i]))
    })
    if (createdDir) trackCreatedDir(dir, this.nodes)
  }

  get primary (): ClusterNode { return this.nodes[this.primaryIndex] }

  private serial<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn)
    this.queue = result.catch(() => {})
    return result
  }

  async startAll (only?: ReadonlySet<ClusterNode>): Promise<void> {
    for (const node of this.nodes) node.writeConfig()
    // The primary first: a replica is only ready once connected to it.
    await this.primary.start()
    await Promise.all(this.nodes.filter((n) => n !== this.primary && (!only || only.has(n))).map((n) => n.start()))
  }

  async waitReplicated (db: string, timeoutMs: number = this.readyTimeout): Promise<bigint> {
    const primary = this.primary
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!primary.running) throw new Error(`litefs-cluster: waitReplicated(${JSON.stringify(db)}): the primary ${primary.hostname} is not running`)
      const target = primary.position(db)
      const lagging = this.nodes.filter((n) => n.running && n.position(db) !== target)
      if (target !== undefined && lagging.length === 0) return target
      if (Date.now() >= deadline) {
        const positions = this.nodes.map((n) => `${n.hostname}=${n.running ? (n.position(db)?.toString() ?? 'none') : 'stopped'}`).join(' ')
        const culprit = target === undefined ? primary : lagging[0]
        const tail = culprit.logs().slice(-ERROR_LOG_LINES).map((l) => '  ' + l).join('\n')
        throw new Error(`litefs-cluster: waitReplicated(${JSON.stringify(db)}): not every running node reached the primary's position within ${timeoutMs} ms (${target === undefined ? `${primary.hostname} has no ${db}-pos` : `waited for ${lagging.map((n) => n.hostname).join(', ')}`}); positions: ${positions}\n--- last LiteFS log lines of ${culprit.hostname} ---\n${tail}`)
      }
      await sleep(5)
    }
  }

  setPrimary (index: number): Promise<void> {
    return this.serial(async () => {
      if (!Number.isInteger(index) || index < 0 || index >= this.nodes.length) throw new RangeError(`litefs-cluster: setPrimary(${index}): no such node (0..${this.nodes.length - 1})`)
      if (this.closed) throw new Error('litefs-cluster: setPrimary: cluster is closed')
      const wasRunning = new Set(this.nodes.filter((n) => n.running))
      // Every node must stop: a static lease is only read at startup.
      await Promise.all(this.nodes.map((n) => n.stop()))
      this.primaryIndex = index
      await this.startAll(wasRunning)
    })
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      await this.queue
      const problems: string[] = []
      await Promise.all(this.nodes.map(async (node) => {
        try { await node.stop() } catch (err) {
          // Last resort for a process or mount stop() could not remove.
          node.killSync()
          const stuck = await unmountAll(node.mount)
          if (stuck) problems.push(stuck)
          else if (node.running) problems.push((err as Error).message)
          else untrackNode(node)
        }
      }))
      for (const node of this.nodes) node.closeRelay()
      if (this.createdDir && problems.length === 0) {
        try { rmSync(this.dir, { recursive: true, force: true }) } catch (err) { problems.push(`could not remove ${this.dir}: ${(err as Error).message}`) }
      }
      untrackCreatedDir(this.dir)
      if (problems.length > 0) throw new Error(`litefs-cluster: close() left things behind:\n${problems.join('\n')}`)
    })()
    return this.closing
  }
}

/**
 * Starts a LiteFS cluster: writes every node's litefs.yml, starts the primary, then
 * the replicas (in parallel), each bounded by `readyTimeout`. Throws when no litefs
 * binary is found, when options are invalid, or when a node does not become ready
 * (then everything started so far is closed first).
 */
export async function startLitefsCluster (opts: LitefsClusterOptions = {}): Promise<LitefsCluster> {
  const hostnames = clusterHostnames(opts)
  const count = hostnames.length
  const primary = opts.primary ?? 0
  if (!Number.isInteger(primary) || primary < 0 || primary >= count) throw new RangeError(`litefs-cluster: primary must be a node index 0..${count - 1}, got ${primary}`)
  const binary = litefsBinary(opts.binary)
  const { dir, created: createdDir } = clusterDir(opts.dir, 'litefs-cluster-')

  installSafetyNet()
  const cluster = new Cluster(opts, dir, createdDir, binary, hostnames, await freePorts(count), primary)
  try {
    if (opts.pausableReplication === true) for (const node of cluster.nodes) await node.openRelay()
    await cluster.startAll()
  } catch (err) {
    await cluster.close().catch(() => {})
    throw err
  }
  return cluster
}
