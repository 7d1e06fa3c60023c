/**
 * A LiteFS node of a Consul-lease cluster, with the faults a failover test
 * makes on it. Its process, mount and readiness are `litefs-node.ts`'s (it is a
 * `ClusterNode`); this module adds the node's address and namespace, the apps
 * that run beside it (`node-app.ts`), and the faults:
 *   - `crash()`      SIGKILL LiteFS and every app of the node at once (a machine dies);
 *   - `kill()`       SIGKILL LiteFS only: its apps keep running (orphaned apps);
 *   - `stop()`       SIGTERM to LiteFS (a graceful stop: it gives the lease up);
 *   - `pause()`      SIGSTOP LiteFS and its apps (a frozen VM), `resume()` SIGCONT;
 *   - `partition()`  cut the node off from Consul and/or its peers (iptables in
 *                    its namespace, `netns.ts`), `heal()` undoes it.
 * Which node is primary, the lease's settings and the cluster's lifetime are
 * `consul-cluster.ts`'s.
 */
import { readdirSync, readFileSync } from 'node:fs'
import type { ClusterNetwork } from './netns.js'
import { ClusterNode, type ClusterContext } from './litefs-node.js'
import { spawnNodeApp, type NodeApp, type NodeAppOptions } from './node-app.js'
import { sleep } from './wait.js'

const PAUSE_WAIT = 5_000

/**
 * The state of each thread of `pid` (/proc/<pid>/task/<tid>/stat), or
 * undefined once the process is gone.
 */
function threadStates (pid: number): string[] | undefined {
  let tids: string[]
  try { tids = readdirSync(`/proc/${pid}/task`) } catch { return undefined }
  return tids.map((tid) => {
    try { return readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]?.[0] ?? 'X' } catch { return 'X' }
  })
}

/**
 * Frozen: no thread of it can run its own code again until SIGCONT. T: stopped;
 * D: in the kernel, uninterruptibly (an app's read through the mount of a
 * LiteFS that is stopped waits there for good), and it stops before it
 * returns; Z/X: a thread that already ended.
 */
const FROZEN = new Set(['T', 't', 'D', 'Z', 'X'])

/** Undefined once every thread of `pid` is frozen (or the process is gone); after `ms`, the states last seen. */
async function frozenWithin (pid: number, ms: number): Promise<string | undefined> {
  const deadline = Date.now() + ms
  for (;;) {
    const states = threadStates(pid)
    if (states === undefined || states.every((st) => FROZEN.has(st))) return undefined
    if (Date.now() > deadline) return states.join('')
    await sleep(10)
  }
}

export interface PartitionOptions {
  /** Cut the node off from Consul. Default true. */
  consul?: boolean
  /** Cut it off from these peers (node indexes), or from every other node with true. Default false. */
  peers?: boolean | readonly number[]
}

/** What a Consul node knows of its cluster beyond `ClusterContext`. */
export interface ConsulNodeEnv {
  readonly network: ClusterNetwork | undefined
  readonly consulIp: string
  readonly nodes: readonly ConsulNode[]
  /** ConsulClusterOptions.beforeStart. */
  readonly beforeStart?: (node: ConsulNode) => void
}

export class ConsulNode extends ClusterNode {
  /** Where this node's LiteFS API and apps listen: 127.0.0.1, or its address in its namespace. */
  readonly ip: string
  /** Its network namespace, when the cluster has them. */
  readonly netns: string | undefined
  private readonly apps = new Set<NodeApp>()
  private paused = false

  constructor (ctx: ClusterContext, private readonly env: ConsulNodeEnv, index: number, hostname: string, nodeDir: string, port: number) {
    const ip = env.network?.nodeIp(index) ?? '127.0.0.1'
    super(ctx, index, hostname, nodeDir, port, ip)
    this.ip = ip
    this.netns = env.network?.nodes[index]
  }

  /** The command prefix that runs a program in this node's network (empty on loopback). */
  get wrap (): string[] { return this.netns !== undefined && this.env.network !== undefined ? this.env.network.wrap(this.netns) : [] }

  /** Start `command args` beside this node, in its namespace. Crash and pause include it; kill and stop do not. */
  spawnApp (command: string, args: readonly string[], options?: NodeAppOptions): NodeApp {
    const app = spawnNodeApp(this.wrap, command, args, options)
    this.apps.add(app)
    void app.exited.then(() => this.apps.delete(app))
    return app
  }

  /** The apps started with `spawnApp` that are still running. */
  get runningApps (): NodeApp[] { return [...this.apps] }

  /** SIGKILL LiteFS and its apps together, and wait for them. The mount stays dead until `start()`/`close()`. */
  async crash (): Promise<void> {
    const apps = [...this.apps]
    for (const app of apps) app.signal('SIGKILL')
    await Promise.all([this.kill(), ...apps.map((a) => a.exited)])
    this.paused = false
  }

  /**
   * SIGSTOP LiteFS and its apps: nothing answers, no lease is renewed, no socket closes.
   * Resolves once the kernel shows every thread of LiteFS frozen (`kill(2)`
   * returns before a multi-threaded group stop completes); when that takes
   * longer than 5 s, resumes them and rejects, naming its threads' states.
   */
  async pause (): Promise<void> {
    if (!this.running) throw new Error(`litefs-cluster: pause(): ${this.hostname}'s LiteFS is not running`)
    // Apps first, while LiteFS still answers the reads they have in flight through its mount.
    for (const app of this.apps) app.signal('SIGSTOP')
    this.signalGroup('SIGSTOP')
    this.paused = true
    // LiteFS, whose answers the fault is about, is waited for. An app is not:
    // the kernel starts a group stop from the thread it picked for the signal,
    // and an app thread waiting uninterruptibly on a read through this LiteFS's
    // mount (stopped now) never returns to pick it up; meanwhile that app's
    // other threads may still run, but its JavaScript waits on that read.
    const pid = this.pid
    const states = pid === undefined ? undefined : await frozenWithin(pid, PAUSE_WAIT)
    if (states !== undefined) {
      // Not left half frozen: the caller's fault did not happen.
      this.resume()
      throw new Error(`litefs-cluster: pause(): ${this.hostname}: LiteFS (pid ${pid as number}) was not stopped within ${PAUSE_WAIT} ms of SIGSTOP (thread states ${states})`)
    }
  }

  /** SIGCONT what `pause()` stopped. */
  resume (): void {
    this.signalGroup('SIGCONT')
    for (const app of this.apps) app.signal('SIGCONT')
    this.paused = false
  }

  override async start (): Promise<void> {
    this.env.beforeStart?.(this)
    await super.start()
  }

  override async stop (): Promise<void> {
    // A stopped process does not act on SIGTERM.
    if (this.paused) this.resume()
    await super.stop()
  }

  /** Drop every packet between this node and Consul and/or its peers, until `heal()`. Needs the cluster's namespaces. */
  partition (options: PartitionOptions = {}): void {
    const network = this.env.network
    if (network === undefined) throw new Error('litefs-cluster: partition() needs the netns option (a namespace per node)')
    const ips: string[] = []
    if (options.consul ?? true) ips.push(this.env.consulIp)
    const peers = options.peers === true ? this.env.nodes.filter((n) => n !== this).map((n) => n.index) : options.peers === false || options.peers === undefined ? [] : options.peers
    for (const i of peers) if (i !== this.index) ips.push(network.nodeIp(i))
    network.partition(this.index, ips)
  }

  heal (): void {
    this.env.network?.heal(this.index)
  }

  /** Stop every app (SIGTERM, then SIGKILL). */
  async stopApps (): Promise<void> {
    await Promise.all([...this.apps].map((a) => a.stop()))
  }
}
