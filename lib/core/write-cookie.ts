import type { CoreContext } from './context.js'
import { txidSetCookie, txidToken } from './cookie.js'
import type { LitefsInfo } from './request.js'
import { formatTxid } from './txid.js'

// The cookie (and the token header) of a write served here as primary (DESIGN §3.5): its TXID is read
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
    // A write served as primary, and no position for its database: the app
    // writes somewhere LiteFS does not track (a wrong `db`), and read-your-writes is off.
    core.dbMissing = true
    core.warn.say('LITEFS_DB', `${mount}/${db}`, `a write was served here as primary, but ${mount}/${db}-pos does not exist, so its answer has no cookie: is "db" the file name your app opens under the mount?`, { mount, db })
    return undefined
  }
  if (core.dbMissing) {
    core.dbMissing = false
    core.warn.clear('LITEFS_DB', `${mount}/${db}`, `${db}-pos exists now: writes are cookied`)
  }
  if (txid === 0n) return undefined
  info.setTxid = formatTxid(txid)
  core.observer.cookieSet(core.hooks.req(c), info.setTxid)
  // The same token in a header, for clients without cookies (token.ts). Called
  // as the head is about to leave (on-head.ts): set now, it goes with it.
  const header = core.options.tokenHeader
  if (header !== false) core.hooks.res(c).appendHeader(header, txidToken(core.options.cookie, txid))
  return txidSetCookie(core.options.cookie, txid, core.hooks.secure(c))
}
