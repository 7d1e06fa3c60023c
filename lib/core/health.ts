import { performance } from 'node:perf_hooks'
import { noUrlReason } from './primary-url.js'
import type { IncomingMessage } from 'node:http'
import type { CoreContext } from './context.js'
import { LOOP_STATUS } from './loop-guard.js'
import { PROBE_HEADER } from './primary-probe.js'
import { REACH_HEADER, type Unreachable } from './primary-reach.js'
import type { LitefsAnswer, LitefsInfo } from './request.js'
import { formatTxid } from './txid.js'

// The health check's answer (DESIGN §3.2), for a balancer and for the other
// nodes. 200 `ok`: this node can answer any request as the primary would. 503
// otherwise, the status saying why — take the node out of the balancer while
// it lasts: `unavailable` while LiteFS on this node does not answer (event
// stream lost, mount dead); `mismatch` when LiteFS's API and the mount are two
// nodes' (a misconfiguration: writes are refused); `fenced` on a primary whose
// lease Consul does not confirm as its own (lease-fence.ts); `unreachable` on
// a replica that cannot reach the primary's app to forward writes to
// (primary-reach.ts), or that has known no primary for `primaryRedirectTimeout`; `role-unknown` while LiteFS is up but this node's role
// cannot be known (`api: false`, no `.primary`, no `role`: its writes would be
// held, then refused); `lagging` when the lag is above `maxLag` (or unknown).
// With `peerSecret`, a primary's also lists its peers (peer-link.ts).
// It also carries the primary's position from `-pos` itself: replicas ask it
// whether a read's TXID exists (primary-probe.ts).

type Target = { origin: string, url: string } | { failed: Unreachable }

const NO_PRIMARY: Unreachable = { origin: null, error: 'LiteFS names no primary' }

/**
 * The primary's origin and health URL as this node would reach them, when it
 * forwards writes there; or why it has none (a `primaryUrl` function that
 * throws, or maps the hostname to no URL: no write can be forwarded either).
 */
function primaryTarget<C> (core: CoreContext<C>): Target | undefined {
  const { state, options } = core
  const primary = state.primaryHostname
  if (state.role !== 'replica' || primary === undefined || options.forward !== 'http' || options.healthPath === false) return undefined
  try {
    const origin = options.primaryOrigin(primary, core.probePort)
    return { origin, url: origin + options.healthPath }
  } catch (err) {
    return { failed: { origin: null, error: noUrlReason(err, primary) } }
  }
}

/**
 * The health answer for a request. On a replica that forwards writes, the
 * primary's app is asked whether it is there (at most once a second); the
 * first answer about a primary waits for that.
 */
export function healthFor<C> (core: CoreContext<C>, req: IncomingMessage, info: LitefsInfo): LitefsInfo | Promise<LitefsInfo> {
  core.probePort = req.socket.localPort as number
  // Its question to the primary speaks what this server spoke (an h2c-only primary answers nothing else), as a held read's probe does.
  core.probeProtocol = req.httpVersionMajor === 2 ? 'http2' : 'http1'
  const asker = req.headers[REACH_HEADER]
  if (asker === core.nodeName) {
    // This node asking itself whether the primary is there: `primaryUrl` leads back here (loop-guard.ts).
    // A plain answer, not a LitefsHttpError: Express hands errors to the app's error handling, which
    // could drop the echoed mark that tells the asker it reached itself.
    info.answer = { statusCode: LOOP_STATUS, headers: { 'content-type': 'application/json; charset=utf-8', [REACH_HEADER]: asker }, body: JSON.stringify({ error: 'this node asked itself for the primary\'s health: "primaryUrl" leads back here', code: 'LITEFS_FORWARD_LOOP' }) }
    return info
  }
  const target = asker === undefined ? primaryTarget(core) : undefined
  const first = target === undefined || 'failed' in target ? undefined : core.reach.check(target.origin, target.url)
  // A replica's probe asking a primary with '*': the answer must list every database there is now.
  const listing = first === undefined && req.headers[PROBE_HEADER] !== undefined && core.state.role === 'primary' ? core.several?.tracked.listNow() : undefined
  const before = first ?? listing
  const answer = (facts: MountFacts): LitefsInfo => {
    info.answer = health(core, facts)
    return info
  }
  return before === undefined ? mountFacts(core).then(answer) : before.then(() => mountFacts(core)).then(answer)
}

/**
 * What the health answer reads from LiteFS's mount: the replica's `.lag`, and
 * the positions `-pos` must give (positionOf). Empty when LiteFS is not up.
 */
export interface MountFacts {
  lag: number | undefined
  positions: ReadonlyMap<string, bigint | undefined>
  /** Several databases: the ones tracked when the facts were read (the answer lists these). */
  databases: readonly string[] | undefined
}

/**
 * The mount facts for the health route, read on the thread pool (shared with
 * the reads under way: NodeState), so a LiteFS that does not answer on its
 * mount (stopped: FUSE blocks whoever reads) leaves this answer pending, and a
 * balancer's own timeout takes the node out, while the event loop serves on.
 */
async function mountFacts<C> (core: CoreContext<C>): Promise<MountFacts> {
  const state = core.state
  state.refresh()
  const databases = core.several?.tracked.now()
  if (state.litefs !== 'up') return { lag: undefined, positions: new Map(), databases }
  // The positions health takes from `-pos` (positionOf), main first.
  const dbs = (databases ?? [core.options.db as string]).filter(db => state.role === 'primary' || state.position(db) === 0n)
  const [lag, ...positions] = await Promise.all([state.lagAfter(), ...dbs.map(db => state.positionAfter(db))])
  return { lag, positions: new Map(dbs.map((db, i) => [db, positions[i]])), databases }
}

/**
 * A database's position as health reports it: on the primary from `-pos`
 * itself (replicas probe it), else the replica's own — from `-pos` too while
 * no event has named it yet (a database `'*'` found in the mount).
 */
function positionOf<C> (core: CoreContext<C>, db: string, facts: MountFacts | undefined): string {
  const state = core.state
  const known = state.position(db)
  if (state.role !== 'primary' && known !== 0n) return formatTxid(known)
  // A database listed after the facts were read has none: what is known stands.
  return formatTxid((facts === undefined ? state.readPosition(db) : facts.positions.get(db)) ?? known)
}

/**
 * The health answer. Given `facts` (the route: mountFacts), from them; else
 * from synchronous reads of the mount (the public `health()`: it blocks while
 * LiteFS does not answer on its mount).
 */
export function health<C> (core: CoreContext<C>, facts?: MountFacts): LitefsAnswer {
  const state = core.state
  if (facts === undefined) state.refresh()
  const up = state.litefs === 'up'
  const lag = !up ? undefined : facts === undefined ? state.readLag() : facts.lag
  const max = core.options.maxLag
  const db = core.options.db
  const fence = state.fence
  // A primary whose lease Consul gave to another node, to none, or would not
  // say: a balancer should send it nothing (it holds writes meanwhile).
  const fenced = up && state.role === 'primary' && fence !== undefined && fence.view !== 'mine'
  const mismatch = up ? state.mismatch : undefined
  const target = up ? primaryTarget(core) : undefined
  // A replica that has known no primary for as long as a write waits for one
  // (a failover that takes longer, a static primary down): its writes fail too.
  const orphaned = up && state.role === 'replica' && state.noPrimarySince !== undefined && performance.now() - state.noPrimarySince >= core.options.primaryRedirectTimeout
  const unreachable: Unreachable | undefined = target === undefined ? (orphaned ? NO_PRIMARY : undefined) : 'failed' in target ? target.failed : core.reach.unreachable(target.origin, core.options.primaryRedirectTimeout)
  const status = !up
    ? 'unavailable'
    : mismatch !== undefined ? 'mismatch' : state.role === 'unknown' ? 'role-unknown' : fenced ? 'fenced' : unreachable !== undefined ? 'unreachable' : max === 0 || (lag !== undefined && lag <= max) ? 'ok' : 'lagging'
  const body: Record<string, unknown> = {
    status,
    role: state.role,
    primary: state.primaryHostname ?? null,
    lag: lag ?? null,
    // The main database's (replicas' probes read it: primary-probe.ts); null for `'*'` alone.
    txid: db === undefined ? null : positionOf(core, db, facts)
  }
  // Several databases: each one's position, main first.
  if (core.several !== undefined) body.databases = Object.fromEntries((facts?.databases ?? core.several.tracked.now()).map(name => [name, positionOf(core, name, facts)]))
  // Its peers, on the primary they report to: who is connected and how far behind.
  if (core.peers !== undefined && state.role === 'primary') body.peers = core.peers.view(db as string).map(({ hostname, candidate, connected, behind }) => ({ hostname, candidate, connected, behind }))
  if (fence !== undefined && state.role === 'primary') body.lease = fence.view === 'other' ? { holder: fence.holder } : fence.view
  if (unreachable !== undefined) body.unreachable = unreachable
  if (mismatch !== undefined) body.mismatch = mismatch
  return { statusCode: status === 'ok' ? 200 : 503, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) }
}
