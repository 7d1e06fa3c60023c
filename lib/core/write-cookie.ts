import { AS_IS, type Acknowledgement } from './acknowledgement.js'
import type { CoreContext } from './context.js'
import { txidSetCookie } from './cookie.js'
import type { LitefsInfo } from './request.js'
import { formatTxid } from './txid.js'

// The acknowledgement of a write served here as primary, today (DESIGN §3.5):
// the app's answer with the TXID cookie, its TXID read from the authority
// (`-pos`) by a read that starts once the answer is ready — so it includes the
// handler's own commit — shared with every answer ready before it started
// (NodeState.positionAfter). No position: no cookie, and the misconfiguration
// said once. How the head waits for this is the adapter's (deferred-head.ts);
// what the cookie looks like is cookie.ts's.

/** How a write's answer leaves: only a write served here as primary gets a cookie. */
export function acknowledgeWrite<C> (core: CoreContext<C>, info: LitefsInfo, c: C): Acknowledgement | Promise<Acknowledgement> {
  if (!info.local) return AS_IS
  const txid = core.state.positionAfter(core.options.db)
  return txid instanceof Promise ? txid.then(t => withCookie(core, info, c, t)) : withCookie(core, info, c, txid)
}

function withCookie<C> (core: CoreContext<C>, info: LitefsInfo, c: C, txid: bigint | undefined): Acknowledgement {
  const { mount, db } = core.options
  if (txid === undefined) {
    // A write served as primary, and no position for its database: the app
    // writes somewhere LiteFS does not track (a wrong `db`), and read-your-writes is off.
    core.dbMissing = true
    core.warn.say('LITEFS_DB', `${mount}/${db}`, `a write was served here as primary, but ${mount}/${db}-pos does not exist, so its answer has no cookie: is "db" the file name your app opens under the mount?`, { mount, db })
    return AS_IS
  }
  if (core.dbMissing) {
    core.dbMissing = false
    core.warn.clear('LITEFS_DB', `${mount}/${db}`, `${db}-pos exists now: writes are cookied`)
  }
  if (txid === 0n) return AS_IS
  info.setTxid = formatTxid(txid)
  core.observer.cookieSet(core.hooks.req(c), info.setTxid)
  return { headers: [['set-cookie', txidSetCookie(core.options.cookie, txid, core.hooks.secure(c))]] }
}
