import { AS_IS, type Acknowledgement, type Appended } from './acknowledgement.js'
import { commitConfirmed, outcomeUnknown } from './commit-check.js'
import type { CoreContext } from './context.js'
import { txidSetCookie, txidToken } from './cookie.js'
import { sayDbMissing } from './db-missing.js'
import type { LitefsInfo } from './request.js'
import { formatTxid } from './txid.js'

// The acknowledgement of a write served here as primary, today (DESIGN §3.5):
// the app's answer with the TXID cookie and the token header (`tokenHeader`,
// for clients without cookies: token.ts), its TXID read from the authority
// (`-pos`) by a read that starts once the answer is ready — so it includes the
// handler's own commit — shared with every answer ready before it started
// (NodeState.positionAfter). No position: no cookie, and the misconfiguration
// said once. A success whose commit this node can no longer vouch for is not
// sent (commit-check.ts). An answer decided while the app closes also closes its connection
// (see leaving()). How the head waits for this is the adapter's
// (deferred-head.ts); what the cookie looks like is cookie.ts's.

/** How a write's answer leaves: only a write served here as primary gets a cookie. */
export function acknowledgeWrite<C> (core: CoreContext<C>, info: LitefsInfo, c: C): Acknowledgement | Promise<Acknowledgement> {
  if (!info.local) return AS_IS
  const txid = core.state.positionAfter(core.options.db)
  return txid instanceof Promise ? txid.then(t => withCookie(core, info, c, t)) : withCookie(core, info, c, txid)
}

const CLOSE = ['connection', 'close'] as const

function withCookie<C> (core: CoreContext<C>, info: LitefsInfo, c: C, txid: bigint | undefined): Acknowledgement {
  if (!commitConfirmed(core, txid)) {
    const instead = outcomeUnknown(core, c)
    return instead === undefined ? AS_IS : { replace: instead }
  }
  const ack = cookied(core, info, c, txid)
  return core.lifecycle.closing ? leaving(ack) : ack
}

/**
 * The app is closing (its core drained): this answer's connection closes once
 * it is sent. The drain resets the connections idle at that instant
 * (idle-reset.ts), but a connection whose write waits for its `-pos` read is
 * not idle, and a client that keeps it busy (a replica's forwarder) would keep
 * the server from ever closing: Node's server.close() ends only idle
 * connections. Told `connection: close`, the client sends its next request
 * elsewhere — a new connection, refused, retried (nothing was sent).
 */
function leaving (ack: Appended): Acknowledgement {
  return { headers: [...ack.headers, CLOSE] }
}

function cookied<C> (core: CoreContext<C>, info: LitefsInfo, c: C, txid: bigint | undefined): Appended {
  const { mount, db } = core.options
  if (txid === undefined) {
    // A write served as primary, and no position for its database: it does not
    // exist yet, or `db` names the wrong file (db-missing.ts says which).
    sayDbMissing(core)
    return AS_IS
  }
  if (core.dbMissing) {
    core.dbMissing = false
    core.warn.clear('LITEFS_DB', `${mount}/${db}`, `${db}-pos exists now: writes are cookied`)
  }
  if (txid === 0n) return AS_IS
  info.setTxid = formatTxid(txid)
  core.observer.cookieSet(core.hooks.req(c), info.setTxid)
  const cookie = txidSetCookie(core.options.cookie, txid, core.hooks.secure(c))
  const header = core.options.tokenHeader
  if (header === false) return { headers: [['set-cookie', cookie]] }
  return { headers: [['set-cookie', cookie], [header, txidToken(core.options.cookie, txid)]] }
}
