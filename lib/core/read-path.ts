import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { CoreContext } from './context.js'
import { ended, unavailable, waitFor } from './hold.js'
import { FORWARDED_HEADER } from './hop-by-hop.js'
import type { Logger } from './logger.js'
import { cameBack, loopAnswer } from './loop-guard.js'
import type { WaitResult } from './node-state.js'
import { readTimedOut } from './read-timeout.js'
import type { LitefsInfo } from './request.js'
import { requestPositions } from './token.js'
import { trackedPositions, type Wanted } from './token-dbs.js'
import { formatTxid } from './txid.js'

// A read (DESIGN §3.4): served at once without a TXID, on the primary, or on a
// replica that has it; otherwise held until the replica's position reaches the
// client's TXID, until the primary shows that no node ever will (the probe:
// primary-probe.ts), or until `readTimeout` (read-timeout.ts's three answers). On a
// dead mount a read waits for LiteFS to come back first. Holding itself is
// hold.ts's. With several databases (databases.ts) a token names a position per
// database: the read is held for each one behind in turn, all within one
// `readTimeout`; the probe asks the primary about every one (primary-probe.ts).

/** A read without a token (most of them) allocates nothing here. */
const NOTHING: Wanted = []

export function read<C> (core: CoreContext<C>, c: C, req: IncomingMessage, info: LitefsInfo): LitefsInfo | Promise<LitefsInfo> {
  const wanted = wantedOf(core, req)
  if (wanted.length > 0) info.awaitedTxid = formatTxid(wanted[0][1])
  // A dead mount serves nothing but errors, or an empty directory where SQLite
  // creates a new database: wait for LiteFS to come back.
  if (core.state.litefs === 'down') return holdForMount(core, c, info, wanted)
  return readNow(core, c, info, wanted, performance.now() + core.options.readTimeout, 0)
}

/** The positions the request's token names, of the databases this core tracks (token-dbs.ts). */
function wantedOf<C> (core: CoreContext<C>, req: IncomingMessage): Wanted {
  const positions = requestPositions(core.options, req.headers, core.tokenRefused)
  return positions === undefined ? NOTHING : trackedPositions(core, positions)
}

function readNow<C> (core: CoreContext<C>, c: C, info: LitefsInfo, wanted: Wanted, deadline: number, started: number): LitefsInfo | Promise<LitefsInfo> {
  const state = core.state
  // The primary has every transaction there is; a cookie ahead of it cannot be
  // satisfied by waiting (see DESIGN §3.4).
  if (wanted.length === 0 || state.role === 'primary') return info
  for (const [db, txid] of wanted) {
    if (state.reached(db, txid)) continue
    return hold(core, c, info, wanted, db, txid, deadline, started === 0 ? performance.now() : started)
  }
  return info
}

async function holdForMount<C> (core: CoreContext<C>, c: C, info: LitefsInfo, wanted: Wanted): Promise<LitefsInfo> {
  const log = core.hooks.log(c)
  const started = performance.now()
  const readTimeout = core.options.readTimeout
  log.debug({ mount: core.options.mount }, 'litefs-proxy: holding read until LiteFS is back')
  const result = await waitFor(core, c, 'mount', info.awaitedTxid, done => core.state.waitForMount(readTimeout, done))
  info.waitedMs = performance.now() - started
  info.role = core.state.role
  if (result === 'timeout') return unavailable(core, info, log, readTimeout)
  if (result !== 'ready') return ended(core, info, result, log)
  return await readNow(core, c, info, wanted, performance.now() + readTimeout, 0)
}

// A promise chain, not an async function: a suspended async frame is most of
// what a held read would otherwise cost in heap (see waitFor).
function hold<C> (core: CoreContext<C>, c: C, info: LitefsInfo, wanted: Wanted, db: string, txid: bigint, deadline: number, started: number): Promise<LitefsInfo> {
  const state = core.state
  const log = core.hooks.log(c)
  info.awaitedTxid = formatTxid(txid)
  // With several databases (or a token for another one), which one: the request's info, a 504 and its log line say it.
  if (core.several !== undefined || db !== core.options.db) info.awaitedDb = db
  log.debug({ db, txid: info.awaitedTxid, position: formatTxid(state.position(db)) }, 'litefs-proxy: holding read until the replica catches up')
  const req = core.hooks.req(c)
  // A read this node sent to the primary (readTimeoutAction 'primary') that came
  // back: `primaryUrl` leads here, and holding it again would only time out again.
  const via = req.headers[FORWARDED_HEADER]
  if (via !== undefined && cameBack(via, core.nodeName)) return Promise.resolve(loopAnswer(core, c, info))
  core.probePort = req.socket.localPort as number
  core.probeProtocol = req.httpVersionMajor === 2 ? 'http2' : 'http1'
  return waitFor(core, c, 'position', info.awaitedTxid, done => {
    // Every database behind is waited for within the one readTimeout.
    const waiter = state.waitForPosition(db, txid, Math.max(0, deadline - performance.now()), done)
    if (waiter !== undefined) core.probe.held(db, txid)
    return waiter
  }).then(result => afterHold(core, c, info, wanted, db, result, deadline, started, log))
}

/** How a held read's wait ended: serve it (or wait for the next database behind), send it to the primary, or answer it. */
async function afterHold<C> (core: CoreContext<C>, c: C, info: LitefsInfo, wanted: Wanted, db: string, result: WaitResult | 'overloaded', deadline: number, started: number, log: Logger): Promise<LitefsInfo> {
  const state = core.state
  info.waitedMs = performance.now() - started
  info.role = state.role
  if (result === 'ready') {
    log.debug({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: replica caught up; serving read')
    // Another database of the token may still be behind.
    return await readNow(core, c, info, wanted, deadline, started)
  } else if (result === 'unreachable') {
    info.unreachable = true
    // Debug: the probe's one info line says it for every read its answer served (primary-probe.ts).
    log.debug({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: the primary is behind this read\'s TXID; serving it as the primary would')
  } else if (result === 'timeout') {
    return await readTimedOut(core, c, info, log)
  } else {
    ended(core, info, result, log)
  }
  return info
}
