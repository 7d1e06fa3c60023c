import type { CoreContext } from './context.js'
import { txidSetCookie } from './cookie.js'
import { sayDbMissing } from './db-missing.js'
import type { LitefsInfo } from './request.js'
import { formatTxid } from './txid.js'

// The cookie of a write served here as primary (DESIGN §3.5): its TXID is read
// from the authority (`-pos`) when the answer is about to leave, so it includes
// the handler's own commit. When to call it is the adapter's (on-head.ts);
// what the cookie looks like is cookie.ts's.

/**
 * The Set-Cookie value for a response about to be sent, or undefined. Only a
 * write served here as primary gets one.
 */
export function writeCookie<C> (core: CoreContext<C>, info: LitefsInfo, c: C): string | undefined {
  if (!info.local) return undefined
  const { mount, db } = core.options
  const txid = core.state.readPosition(db)
  if (txid === undefined) {
    // A write served as primary, and no position for its database: it does not
    // exist yet, or `db` names the wrong file (db-missing.ts says which).
    sayDbMissing(core)
    return undefined
  }
  if (core.dbMissing) {
    core.dbMissing = false
    core.warn.clear('LITEFS_DB', `${mount}/${db}`, `${db}-pos exists now: writes are cookied`)
  }
  if (txid === 0n) return undefined
  info.setTxid = formatTxid(txid)
  core.observer.cookieSet(core.hooks.req(c), info.setTxid)
  return txidSetCookie(core.options.cookie, txid, core.hooks.secure(c))
}
