/**
 * A cluster's private network: one network namespace per node and one "hub"
 * namespace holding a bridge, on a subnet that exists only inside them
 * (10.213.0.0/24; the host has no address on it, so two clusters, or two test
 * runs, can use the same subnet without meeting). In the hub, 10.213.0.1 is the
 * gateway (`netns-gateway.ts`: how the test process reaches in) and 10.213.0.2
 * is Consul's; node i is 10.213.0.(10+i) in its own namespace, with loopback up.
 *
 * Also the network faults: `partition(i, ips)` drops every packet between node i
 * and those addresses (iptables in node i's namespace, both directions, silently,
 * as a cut cable: TCP only notices by its own timeouts), `heal(i)` lets them
 * through again.
 *
 * Processes run in a namespace through `nsenter --net` (not `ip netns exec`,
 * which also makes a new mount namespace: a FUSE mount made there would be
 * invisible to the test and the other processes). Which processes, and ending
 * them, is the caller's job; `destroy()` (and the exit hook, `safety-net.ts`)
 * kills whatever is still inside before deleting the namespaces. Needs root,
 * `ip` (iproute2), `nsenter` (util-linux) and `iptables`.
 */
import { execFileSync } from 'node:child_process'
import { whichSync } from './litefs-binary.js'
import { trackFinal, untrackFinal } from './safety-net.js'

export const SUBNET_PREFIX = '10.213.0.'
export const GATEWAY_IP = `${SUBNET_PREFIX}1`
export const CONSUL_IP = `${SUBNET_PREFIX}2`
/** The iptables chain a partition's rules go in, jumped to from INPUT and OUTPUT. */
const CHAIN = 'LITEFS-PARTITION'
let clusters = 0

export interface ClusterNetwork {
  /** The hub namespace: the bridge, the gateway and Consul. */
  readonly hub: string
  /** Node i's namespace. */
  readonly nodes: readonly string[]
  nodeIp (index: number): string
  /** The command prefix that runs a program in namespace `ns`. */
  wrap (ns: string): string[]
  /** Drop every packet between node `index` and `ips` (added to what is already dropped). */
  partition (index: number, ips: readonly string[]): void
  /** Let node `index`'s traffic through again. */
  heal (index: number): void
  /** Kill every process left in the namespaces and delete them. Idempotent. */
  destroy (): void
}

/** One line naming what is missing for namespaces, or undefined. */
export function netnsProblem (): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  const missing = ['ip', 'nsenter', 'iptables'].filter((cmd) => whichSync(cmd) === undefined)
  const problems: string[] = []
  if (missing.length > 0) problems.push(`${missing.join(', ')} missing (apt-get install iproute2 util-linux iptables)`)
  if (process.getuid?.() !== 0) problems.push('not root')
  return problems.length > 0 ? problems.join('; ') : undefined
}

function sh (cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`netns: ${cmd} ${args.join(' ')}: ${String(e.stderr ?? '').trim() || e.message}`)
  }
}

/** SIGKILL every process in `ns`, then delete it; errors are ignored (it may be gone). */
export function deleteNamespaceSync (ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 })
    for (const pid of pids.split('\n').filter(Boolean)) { try { process.kill(Number(pid), 'SIGKILL') } catch {} }
  } catch {}
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 5_000 }) } catch {}
}

const NAME_RE = /^lfp(\d+)c\d+/

/** Namespaces an earlier test process left behind (it was SIGKILLed): its pid is gone. */
function sweepStale (): void {
  let list: string
  try { list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) } catch { return }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0]
    const m = NAME_RE.exec(name)
    if (m === null) continue
    let alive = true
    try { process.kill(Number(m[1]), 0) } catch (err) { alive = (err as NodeJS.ErrnoException).code !== 'ESRCH' }
    if (!alive) deleteNamespaceSync(name)
  }
}

/** Creates the hub and `count` node namespaces, wired and addressed. Throws (after removing what it made) on failure. */
export function createNetwork (count: number): ClusterNetwork {
  const problem = netnsProblem()
  if (problem !== undefined) throw new Error(`netns: cannot make network namespaces: ${problem}`)
  if (count > 200) throw new RangeError('netns: at most 200 nodes')
  sweepStale()
  // Names carry the test process's pid (for the sweep) and stay short: veth names have 15 bytes.
  const base = `lfp${process.pid}c${clusters++}`
  const hub = `${base}hub`
  const nodes = Array.from({ length: count }, (_, i) => `${base}n${i}`)
  const all = [hub, ...nodes]
  const nodeIp = (i: number): string => `${SUBNET_PREFIX}${10 + i}`
  let destroyed = false
  const destroy = (): void => {
    if (destroyed) return
    destroyed = true
    for (const ns of all) deleteNamespaceSync(ns)
    untrackFinal(destroy)
  }
  trackFinal(destroy)
  try {
    sh('ip', ['netns', 'add', hub])
    sh('ip', ['-n', hub, 'link', 'set', 'lo', 'up'])
    sh('ip', ['-n', hub, 'link', 'add', 'br0', 'type', 'bridge'])
    for (const ip of [GATEWAY_IP, CONSUL_IP]) sh('ip', ['-n', hub, 'addr', 'add', `${ip}/24`, 'dev', 'br0'])
    sh('ip', ['-n', hub, 'link', 'set', 'br0', 'up'])
    nodes.forEach((ns, i) => {
      sh('ip', ['netns', 'add', ns])
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
      sh('ip', ['-n', hub, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      sh('ip', ['-n', hub, 'link', 'set', `v${i}`, 'master', 'br0'])
      sh('ip', ['-n', hub, 'link', 'set', `v${i}`, 'up'])
      sh('ip', ['-n', ns, 'addr', 'add', `${nodeIp(i)}/24`, 'dev', 'eth0'])
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
      // The partition chain, empty until partition(): jumped to both ways.
      const ipt = (...args: string[]): string => sh('nsenter', [`--net=/run/netns/${ns}`, '--', 'iptables', '-w', ...args])
      ipt('-N', CHAIN)
      ipt('-I', 'INPUT', '-j', CHAIN)
      ipt('-I', 'OUTPUT', '-j', CHAIN)
    })
  } catch (err) {
    destroy()
    throw err
  }
  const iptables = (i: number, ...args: string[]): void => { sh('nsenter', [`--net=/run/netns/${nodes[i]}`, '--', 'iptables', '-w', ...args]) }
  return {
    hub,
    nodes,
    nodeIp,
    wrap: (ns) => ['nsenter', `--net=/run/netns/${ns}`, '--'],
    partition (index, ips) {
      for (const ip of ips) {
        iptables(index, '-A', CHAIN, '-s', ip, '-j', 'DROP')
        iptables(index, '-A', CHAIN, '-d', ip, '-j', 'DROP')
      }
    },
    heal (index) { iptables(index, '-F', CHAIN) },
    destroy,
  }
}
