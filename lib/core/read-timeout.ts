import { litefsError } from './answers.js'
import type { CoreContext } from './context.js'
import type { Logger } from './logger.js'
import { mayForward } from './loop-guard.js'
import { appendOnHead } from './on-head.js'
import type { LitefsRouteOptions } from './options.js'
import type { LitefsInfo } from './request.js'
import { formatTxid } from './txid.js'
import { elsewhere } from './write-path.js'
import { STALE_HEADER } from './own-headers.js'

// A read held past `readTimeout` (DESIGN §3.4) gets one of three answers,
// `readTimeoutAction`'s: 504 LITEFS_READ_TIMEOUT (as LiteFS's proxy), the
// primary's answer (the read forwarded), or this replica's own answer marked
// as maybe stale (`litefs-stale` header + a warn line: the choice 37signals
// made for Rails, where showing something beats an error). Each answer given
// is counted and published (observe.ts). A read is forwarded as a write is,
// under the loop guard (loop-guard.ts). How the read came to time out is
// read-path.ts's.

export { STALE_HEADER }

export async function readTimedOut<C> (core: CoreContext<C>, c: C, info: LitefsInfo, log: Logger): Promise<LitefsInfo> {
  const { state, options } = core
  // The database the read waited for last: the main one, unless its token names several.
  const db = info.awaitedDb ?? options.db as string
  const req = core.hooks.req(c)
  const awaited = info.awaitedTxid as string
  const position = formatTxid(state.position(db))
  const action = options.readTimeoutAction
  if (action === 'stale') {
    info.stale = true
    log.warn({ method: req.method, path: core.hooks.url(c), db, txid: awaited, position, waitedMs: info.waitedMs }, 'litefs-proxy: read timed out waiting for replication; served from this replica, it may be stale')
    appendOnHead(core.hooks.res(c), STALE_HEADER, () => `txid=${awaited}; position=${formatTxid(state.position(db))}`)
    core.observer.readTimedOut(req, 'stale', awaited, position)
    return info
  }
  log.warn({ method: req.method, path: core.hooks.url(c), db, txid: awaited, position }, 'litefs-proxy: read timed out waiting for replication')
  // A read another node sent here goes no further than the loop guard lets it (loop-guard.ts): else the 504.
  // A read whose answer is about this node (serve's token path) is not the primary's to answer.
  // (A passthrough route, `false`, is never held: no read of one times out.)
  if (action === 'primary' && (core.hooks.route(c) as LitefsRouteOptions | undefined)?.localRead !== true && state.primaryKnown && state.role !== 'primary' && mayForward(req, core.nodeName)) {
    core.observer.readTimedOut(req, 'primary', awaited, position)
    return await elsewhere(core, c, info, options.primaryRedirectTimeout)
  }
  core.observer.readTimedOut(req, 'error', awaited, position)
  // With several databases the answer names the one the replica was behind on.
  const of = core.several !== undefined ? ` of ${db}` : ''
  info.answer = litefsError('LITEFS_READ_TIMEOUT', `replica did not reach TXID ${awaited}${of} within ${options.readTimeout} ms (at ${position})`)
  return info
}
