import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { CoreContext } from './context.js'
import { ended, unavailable, waitFor } from './hold.js'
import type { Logger } from './logger.js'
import type { WaitResult } from './node-state.js'
import { readTimedOut } from './read-timeout.js'
import type { LitefsInfo } from './request.js'
import { requestTxid } from './token.js'
import { formatTxid } from './txid.js'

// A read (DESIGN §3.4): served at once without a TXID, on the primary, or on a
// replica that has it; otherwise held until the replica's position reaches the
// client's TXID, until the primary shows that no node ever will (the probe:
// primary-probe.ts), or until `readTimeout` (read-timeout.ts's three answers). On a
// dead mount a read waits for LiteFS to come back first. Holding itself is
// hold.ts's.

export function read<C> (core: CoreContext<C>, c: C, req: IncomingMessage, info: LitefsInfo): LitefsInfo | Promise<LitefsInfo> {
  const txid = requestTxid(core.options, req.headers)
  if (txid !== undefined && txid !== 0n) info.awaitedTxid = formatTxid(txid)
  // A dead mount serves nothing but errors, or an empty directory where SQLite
  // creates a new database: wait for LiteFS to come back.
  if (core.state.litefs === 'down') return holdForMount(core, c, info, txid)
  return readNow(core, c, info, txid)
}

function readNow<C> (core: CoreContext<C>, c: C, info: LitefsInfo, txid: bigint | undefined): LitefsInfo | Promise<LitefsInfo> {
  if (txid === undefined || txid === 0n) return info
  const state = core.state
  // The primary has every transaction there is; a cookie ahead of it cannot be
  // satisfied by waiting (see DESIGN §3.4).
  if (state.role === 'primary') return info
  const db = core.options.db
  if (state.position(db) >= txid || (state.readPosition(db) ?? 0n) >= txid) return info
  return hold(core, c, info, txid)
}

async function holdForMount<C> (core: CoreContext<C>, c: C, info: LitefsInfo, txid: bigint | undefined): Promise<LitefsInfo> {
  const log = core.hooks.log(c)
  const started = performance.now()
  const readTimeout = core.options.readTimeout
  log.debug({ mount: core.options.mount }, 'litefs-proxy: holding read until LiteFS is back')
  const result = await waitFor(core, c, 'mount', info.awaitedTxid, done => core.state.waitForMount(readTimeout, done))
  info.waitedMs = performance.now() - started
  info.role = core.state.role
  if (result === 'timeout') return unavailable(core, info, log, readTimeout)
  if (result !== 'ready') return ended(core, info, result, log)
  return await readNow(core, c, info, txid)
}

// A promise chain, not an async function: a suspended async frame is most of
// what a held read would otherwise cost in heap (see waitFor).
function hold<C> (core: CoreContext<C>, c: C, info: LitefsInfo, txid: bigint): Promise<LitefsInfo> {
  const state = core.state
  const db = core.options.db
  const log = core.hooks.log(c)
  const started = performance.now()
  log.debug({ db, txid: info.awaitedTxid, position: formatTxid(state.position(db)) }, 'litefs-proxy: holding read until the replica catches up')
  const req = core.hooks.req(c)
  core.probePort = req.socket.localPort as number
  core.probeProtocol = req.httpVersionMajor === 2 ? 'http2' : 'http1'
  return waitFor(core, c, 'position', info.awaitedTxid, done => {
    const waiter = state.waitForPosition(db, txid, core.options.readTimeout, done)
    if (waiter !== undefined) core.probe.held(txid)
    return waiter
  }).then(result => afterHold(core, c, info, result, started, log))
}

/** How a held read's wait ended: serve it, send it to the primary, or answer it. */
async function afterHold<C> (core: CoreContext<C>, c: C, info: LitefsInfo, result: WaitResult | 'overloaded', started: number, log: Logger): Promise<LitefsInfo> {
  const state = core.state
  const db = core.options.db
  info.waitedMs = performance.now() - started
  info.role = state.role
  if (result === 'ready') {
    log.debug({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: replica caught up; serving read')
  } else if (result === 'unreachable') {
    info.unreachable = true
    log.info({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: the primary is behind this read\'s TXID; serving it as the primary would')
  } else if (result === 'timeout') {
    return await readTimedOut(core, c, info, log)
  } else {
    ended(core, info, result, log)
  }
  return info
}
