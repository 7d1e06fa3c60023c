/**
 * A real LiteFS cluster with a Consul lease, for failover tests: one Consul
 * agent (`consul-agent.ts`) and N LiteFS nodes with `lease.type: consul`, each
 * node's litefs.yml written by `litefs-proxy config` itself (lib/cli/config.ts),
 * so the suite runs the configuration users deploy. Optionally (`netns: true`)
 * every node lives in a network namespace of its own (`netns.ts`), so it can be
 * partitioned from Consul or from its peers; the test process reaches in through
 * the gateway (`cluster.dispatcher`) and its clients through a round-robin
 * balancer on 127.0.0.1 (`cluster.startBalancer()`).
 *
 * This module owns the options, the order of the start (Consul, then node 0,
 * which takes the lease, then the others), who holds the lease
 * (`leaseHolder()`, `waitForPrimary()`), and `close()`, which always ends every
 * app, LiteFS, mount, Consul, gateway and namespace (the safety net does it if
 * the test dies first). A node's process is `litefs-node.ts`'s, its faults
 * `consul-node.ts`'s.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Dispatcher } from 'undici'
import { runConfig } from '../cli/config.js'
import { startBalancer, type Balancer } from './balancer.js'
import type { LitefsNodeInfo } from './cluster-types.js'
import { findConsul, leaseHolder, startConsulAgent, type ConsulAgent, type LeaseHolder } from './consul-agent.js'
import { ConsulNode } from './consul-node.js'
import { clusterDir, clusterHostnames, litefsBinary } from './cluster-setup.js'
import { isExecutable } from './litefs-binary.js'
import { ERROR_LOG_LINES, type ClusterContext, type DynamicLease } from './litefs-node.js'
import { unmountAll } from './mounts.js'
import { CONSUL_IP, createNetwork, type ClusterNetwork } from './netns.js'
import { startGateway, type Gateway } from './netns-gateway.js'
import { installSafetyNet, trackCreatedDir, untrackCreatedDir, untrackNode } from './safety-net.js'
import { freePorts, sleep } from './wait.js'

export interface ConsulClusterOptions {
  /** How many nodes. Default 3. */
  nodes?: number
  /** Lease hostnames, one per node, unique, `[A-Za-z0-9._-]+`. Default `node-1` … `node-N`. */
  hostnames?: string[]
  /** Base directory (as LitefsClusterOptions.dir); default a fresh temp dir removed by `close()`. */
  dir?: string
  /** The litefs binary. Default `findLitefs()`. */
  binary?: string
  /** The consul binary. Default `findConsul()` (scripts/install-consul.sh builds it). */
  consulBinary?: string
  /**
   * Each node in its own network namespace (10.213.0.(10+i)), Consul at 10.213.0.2,
   * on a bridge that exists only inside the namespaces. Needed by `partition()`.
   * Needs root, ip, nsenter, iptables. Default false: everything on 127.0.0.1.
   */
  netns?: boolean
  /** The lease's TTL (`lease.consul.ttl`). Default "10s" (Consul's minimum). */
  ttl?: string
  /** The lease's lock delay (`lease.consul.lock-delay`). Default "1s". */
  lockDelay?: string
  /** `lease.promote` for a node: take the lease from the primary once in sync. Default false (LiteFS's default). */
  promote?: boolean | ((node: LitefsNodeInfo) => boolean)
  /** `lease.candidate` for a node. Default true on every node. */
  candidate?: (node: LitefsNodeInfo) => boolean
  /** The Consul key of the lease. Default `litefs/<base directory's name>`. */
  key?: string
  /** LiteFS's `exec:` for a node (see LitefsClusterOptions.exec); it runs in the node's namespace. */
  exec?: (node: LitefsNodeInfo) => string | undefined
  /** Extra environment for a node's LiteFS. */
  env?: (node: LitefsNodeInfo) => Record<string, string>
  /**
   * Where a node tells its peers to reach its LiteFS API (`advertise-url`), so
   * replication can go through a relay the test controls (the durability suite
   * delays it). Default the node's API URL.
   */
  advertiseUrl?: (node: LitefsNodeInfo) => string
  /** Called before each start of a node's LiteFS: the place to (re)start what it needs beside it, e.g. `node.spawnApp` a relay. */
  beforeStart?: (node: ConsulNode) => void
  /** Milliseconds; the bound for every readiness wait. Default 30000. */
  readyTimeout?: number
  /** Milliseconds `stop()` gives LiteFS after SIGTERM before SIGKILL. Default 10000. */
  stopTimeout?: number
  /** Every LiteFS line, with the node's hostname; Consul's lines come as hostname "consul". */
  log?: (hostname: string, line: string) => void
}

export interface ConsulCluster {
  readonly nodes: readonly ConsulNode[]
  readonly consul: ConsulAgent
  /** The lease's Consul key. */
  readonly key: string
  readonly dir: string
  /** The namespaces, when `netns` is on. */
  readonly network: ClusterNetwork | undefined
  /** Reaches addresses inside the cluster's network from the test process (undefined on loopback: any client will do). */
  readonly dispatcher: Dispatcher | undefined
  /** Who holds the lease, as Consul says now. */
  leaseHolder (): Promise<LeaseHolder>
  /** The node whose LiteFS says isPrimary and holds the lease in Consul, once there is one (other than `not`), bounded by `timeoutMs` (default readyTimeout). */
  waitForPrimary (options?: { not?: ConsulNode, timeoutMs?: number }): Promise<ConsulNode>
  /** Resolve with the primary's position of `db` once every running node has it. */
  waitReplicated (db: string, primary: ConsulNode, timeoutMs?: number): Promise<bigint>
  /** A round-robin balancer on 127.0.0.1 over `port` on each node's address (e.g. the apps). Closed by `close()`. */
  startBalancer (port: number | ((node: ConsulNode) => number)): Promise<Balancer>
  /** Always completes: apps, LiteFS (SIGTERM then SIGKILL), mounts, Consul, the gateway, the namespaces, the directory. Idempotent. */
  close (): Promise<void>
}

const DURATION_RE = /^\d+(?:\.\d+)?(?:ms|s|m)$/
const API_PORT = 20202

/** Starts Consul, then node 0 (which takes the lease), then the others, each bounded by `readyTimeout`. */
export async function startConsulCluster (opts: ConsulClusterOptions = {}): Promise<ConsulCluster> {
  const hostnames = clusterHostnames(opts)
  for (const [name, value] of [['ttl', opts.ttl], ['lockDelay', opts.lockDelay]] as const) {
    if (value !== undefined && !DURATION_RE.test(value)) throw new RangeError(`litefs-cluster: ${name} must be a duration such as "10s", got ${JSON.stringify(value)}`)
  }
  const binary = litefsBinary(opts.binary)
  const consulBinary = opts.consulBinary ?? findConsul()
  if (!consulBinary) throw new Error('litefs-cluster: no consul binary found (set CONSUL_BIN, or run scripts/install-consul.sh)')
  if (!isExecutable(consulBinary)) throw new Error(`litefs-cluster: consul binary ${consulBinary} is not an executable file`)

  const { dir, created: createdDir } = clusterDir(opts.dir, 'litefs-consul-')
  installSafetyNet()
  const cluster = new Cluster(opts, dir, createdDir, binary, hostnames)
  try {
    await cluster.start(consulBinary)
  } catch (err) {
    await cluster.close().catch(() => {})
    throw err
  }
  return cluster
}

class Cluster implements ConsulCluster, ClusterContext {
  readonly nodes: ConsulNode[] = []
  readonly key: string
  readonly readyTimeout: number
  readonly stopTimeout: number
  readonly lease: DynamicLease
  network: ClusterNetwork | undefined
  private gateway: Gateway | undefined
  private agent: ConsulAgent | undefined
  private readonly balancers: Balancer[] = []
  closed = false
  private closing: Promise<void> | undefined

  constructor (readonly options: ConsulClusterOptions, readonly dir: string, private readonly createdDir: boolean, readonly binary: string, private readonly hostnames: string[]) {
    this.readyTimeout = options.readyTimeout ?? 30_000
    this.stopTimeout = options.stopTimeout ?? 10_000
    this.key = options.key ?? `litefs/${dir.split('/').pop() as string}`
    const self = this
    this.lease = {
      config: (node) => self.config(node as ConsulNode),
      candidate: (node) => options.candidate?.(node) ?? true,
      wrap: (node) => (node as ConsulNode).wrap,
      get dispatcher () { return self.gateway?.dispatcher },
    }
  }

  /** A dynamic lease has no fixed primary; ClusterContext asks only for the static lease. */
  get primary (): ConsulNode { return this.nodes[0] }
  get consul (): ConsulAgent { return this.agent as ConsulAgent }
  get dispatcher (): Dispatcher | undefined { return this.gateway?.dispatcher }

  async start (consulBinary: string): Promise<void> {
    const netns = this.options.netns === true
    if (netns) {
      this.network = createNetwork(this.hostnames.length)
      this.gateway = await startGateway(this.network.wrap(this.network.hub), this.dir)
    }
    const consulLog = (line: string): void => this.options.log?.('consul', line)
    this.agent = await startConsulAgent({
      binary: consulBinary,
      ip: netns ? CONSUL_IP : '127.0.0.1',
      wrap: this.network?.wrap(this.network.hub),
      dispatcher: this.dispatcher,
      defaultPorts: netns,
      readyTimeout: this.readyTimeout,
      log: consulLog,
    })
    // In a namespace every node has LiteFS's usual port; on loopback each its own.
    const ports = netns ? this.hostnames.map(() => API_PORT) : await freePorts(this.hostnames.length)
    const env = { network: this.network, consulIp: netns ? CONSUL_IP : '127.0.0.1', nodes: this.nodes, beforeStart: this.options.beforeStart }
    this.hostnames.forEach((hostname, i) => {
      const nodeDir = join(this.dir, hostname)
      mkdirSync(nodeDir, { recursive: true })
      this.nodes.push(new ConsulNode(this, env, i, hostname, nodeDir, ports[i]))
    })
    if (this.createdDir) trackCreatedDir(this.dir, this.nodes)
    // Node 0 first, so it takes the free lease; then the others connect to it.
    await this.nodes[0].start()
    await this.waitForPrimary()
    await Promise.all(this.nodes.slice(1).map((n) => n.start()))
  }

  /** The node's litefs.yml, as `litefs-proxy config` writes it for these settings. */
  private config (node: ConsulNode): string {
    const o = this.options
    const promote = typeof o.promote === 'function' ? o.promote(node) : o.promote ?? false
    const argv = [
      '--lease', 'consul', '--node', node.hostname,
      '--consul-url', this.consul.url, '--consul-key', this.key,
      '--consul-ttl', o.ttl ?? '10s', '--consul-lock-delay', o.lockDelay ?? '1s',
      '--candidate', String(node.candidate), '--promote', String(promote),
      '--fuse-dir', node.mount, '--data-dir', node.dataDir,
      '--http-addr', new URL(node.apiUrl).host, '--advertise-url', o.advertiseUrl?.(node) ?? node.apiUrl,
      // Stay up after a startup error, so the harness reports it with the log.
      '--exit-on-error', 'false',
    ]
    const exec = o.exec?.(node)
    if (exec !== undefined) argv.push('--exec', exec)
    let text = ''
    let err = ''
    const status = runConfig(argv, { out: (t) => { text += t }, err: (t) => { err += t }, env: {} })
    if (status !== 0) throw new Error(`litefs-cluster: litefs-proxy config ${argv.join(' ')} failed (${status}): ${err.trim()}`)
    return text
  }

  async leaseHolder (): Promise<LeaseHolder> {
    return await leaseHolder(this.consul.url, this.key, this.dispatcher)
  }

  async waitForPrimary (options: { not?: ConsulNode, timeoutMs?: number } = {}): Promise<ConsulNode> {
    const timeoutMs = options.timeoutMs ?? this.readyTimeout
    const deadline = Date.now() + timeoutMs
    let last = 'nobody'
    for (;;) {
      try {
        const holder = await this.leaseHolder()
        last = holder.hostname ?? 'nobody'
        const node = this.nodes.find((n) => n.hostname === holder.hostname)
        if (node !== undefined && node !== options.not && node.running && (await node.info()).isPrimary) return node
      } catch {}
      if (Date.now() > deadline) throw new Error(`litefs-cluster: no primary${options.not === undefined ? '' : ` other than ${options.not.hostname}`} within ${timeoutMs} ms (Consul's lease holder: ${last})`)
      await sleep(100)
    }
  }

  async waitReplicated (db: string, primary: ConsulNode, timeoutMs: number = this.readyTimeout): Promise<bigint> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const target = primary.position(db)
      const lagging = this.nodes.filter((n) => n.running && n.position(db) !== target)
      if (target !== undefined && lagging.length === 0) return target
      if (Date.now() >= deadline) {
        const positions = this.nodes.map((n) => `${n.hostname}=${n.running ? (n.position(db)?.toString() ?? 'none') : 'stopped'}`).join(' ')
        const culprit = target === undefined ? primary : lagging[0]
        throw new Error(`litefs-cluster: waitReplicated(${JSON.stringify(db)}): not every running node reached ${primary.hostname}'s position within ${timeoutMs} ms; positions: ${positions}\n--- last LiteFS log lines of ${culprit.hostname} ---\n${culprit.logs().slice(-ERROR_LOG_LINES).map((l) => '  ' + l).join('\n')}`)
      }
      await sleep(5)
    }
  }

  async startBalancer (port: number | ((node: ConsulNode) => number)): Promise<Balancer> {
    const backends = this.nodes.map((n) => ({ host: n.ip, port: typeof port === 'number' ? port : port(n) }))
    const gateway = this.gateway
    const balancer = await startBalancer(backends, gateway === undefined ? undefined : (host, p) => gateway.connect(host, p))
    this.balancers.push(balancer)
    return balancer
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      const problems: string[] = []
      for (const b of this.balancers) await b.close().catch(() => {})
      await Promise.all(this.nodes.map(async (node) => {
        await node.stopApps().catch(() => {})
        try { await node.stop() } catch (err) {
          node.killSync()
          const stuck = await unmountAll(node.mount)
          if (stuck) problems.push(stuck)
          else if (node.running) problems.push((err as Error).message)
          else untrackNode(node)
        }
      }))
      await this.agent?.stop().catch((err: Error) => { problems.push(err.message) })
      await this.gateway?.close().catch(() => {})
      this.network?.destroy()
      if (this.createdDir && problems.length === 0) {
        try { rmSync(this.dir, { recursive: true, force: true }) } catch (err) { problems.push(`could not remove ${this.dir}: ${(err as Error).message}`) }
      }
      untrackCreatedDir(this.dir)
      if (problems.length > 0) throw new Error(`litefs-cluster: close() left things behind:\n${problems.join('\n')}`)
    })()
    return this.closing
  }
}
