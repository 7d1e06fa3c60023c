import { AS_IS, type Acknowledgement, type Appended } from './acknowledgement.js'
import { commitConfirmed, outcomeUnknown } from './commit-check.js'
import type { CoreContext } from './context.js'
import { tokenSetCookie, txidToken } from './cookie.js'
import { dbLabel, sayDbMissing, sayNamedMissing } from './db-missing.js'
import { CLOSING_HEADER } from './hop-by-hop.js'
import { fromPeer } from './last-answer.js'
import type { ReadPositions } from './positions-read.js'
import { positionsToken, type Positions } from './positions-token.js'
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
  if (core.several !== undefined) return core.several.read.after().then(positions => withToken(core, info, c, positions))
  const txid = core.state.positionAfter(core.options.db as string)
  return txid instanceof Promise ? txid.then(t => withCookie(core, info, c, t)) : withCookie(core, info, c, txid)
}

/**
 * Several databases: the token names every tracked database's position after
 * the commit, not only those the handler changed. Positions only grow on one
 * primary, so that covers this write and every earlier one of the client's
 * whatever database it touched (a token naming only the databases this write
 * changed would forget the others'), it needs no view of what the request saw
 * before, and its size is bounded by the tracked databases (at most
 * MAX_DATABASES). The cost: a read may also wait for databases it did not
 * write — which LiteFS replicates over the same stream, about as far behind.
 */
function withToken<C> (core: CoreContext<C>, info: LitefsInfo, c: C, read: ReadPositions): Acknowledgement {
  const { any, token, setTxid } = minted(core, read)
  if (!commitConfirmed(core, any)) {
    const instead = outcomeUnknown(core, c)
    return instead === undefined ? AS_IS : { replace: instead }
  }
  if (any === undefined) {
    sayDbMissing(core)
    return AS_IS
  }
  if (core.dbMissing) {
    core.dbMissing = false
    core.warn.clear('LITEFS_DB', `${core.options.mount}/${dbLabel(core.options)}`, 'a tracked database exists now: writes are cookied')
  }
  if (token === undefined) return AS_IS
  info.setTxid = setTxid
  core.observer.cookieSet(core.hooks.req(c), setTxid as string)
  const ack = tokened(core, c, token)
  return core.lifecycle.closing ? leaving(core, c, ack) : ack
}

/** What one batch of `-pos` reads gives every answer that shared it: made once per batch (the token's HMAC included). */
interface Minted {
  /** A position read, if any (none: the mount is looked at). */
  any: bigint | undefined
  /** The token, or undefined when every position is 0 or unread. */
  token: string | undefined
  /** The main database's TXID (durability waits for it), or the first one's. */
  setTxid: string | undefined
}

const mintedFor = new WeakMap<ReadPositions, Minted>()

function minted<C> (core: CoreContext<C>, read: ReadPositions): Minted {
  let m = mintedFor.get(read)
  if (m !== undefined) return m
  const positions: Positions = new Map()
  let any: bigint | undefined
  for (const [db, txid] of read) {
    if (txid === undefined) continue
    any ??= txid
    if (txid !== 0n) positions.set(db, txid)
  }
  if (any !== undefined) {
    for (const db of core.options.databases.named) if (read.has(db) && read.get(db) === undefined) sayNamedMissing(core, db, [...read.keys()].filter(n => read.get(n) !== undefined))
  }
  const main = core.options.db
  const first = positions.get(main as string) ?? positions.values().next().value
  m = positions.size === 0
    ? { any, token: undefined, setTxid: undefined }
    : { any, token: positionsToken(core.options.cookie, positions, main), setTxid: formatTxid(first as bigint) }
  mintedFor.set(read, m)
  return m
}

const CLOSE = ['connection', 'close'] as const
/** To a replica's forward: this primary is closing (primary-closing.ts). */
const CLOSING = [CLOSING_HEADER, '1'] as const

function withCookie<C> (core: CoreContext<C>, info: LitefsInfo, c: C, txid: bigint | undefined): Acknowledgement {
  if (!commitConfirmed(core, txid)) {
    const instead = outcomeUnknown(core, c)
    return instead === undefined ? AS_IS : { replace: instead }
  }
  const ack = cookied(core, info, c, txid)
  return core.lifecycle.closing ? leaving(core, c, ack) : ack
}

/**
 * The app is closing (its core drained): this answer's connection closes once
 * it is sent. The drain resets the connections idle at that instant
 * (idle-reset.ts), but a connection whose write waits for its `-pos` read is
 * not idle, and a client that keeps it busy (a replica's forwarder) would keep
 * the server from ever closing: Node's server.close() ends only idle
 * connections. Told `connection: close`, the client sends its next request
 * elsewhere — a new connection, refused, retried (nothing was sent); a
 * replica told why holds it until this node is done (primary-closing.ts).
 */
function leaving<C> (core: CoreContext<C>, c: C, ack: Appended): Acknowledgement {
  // Said already when the request was decided after the close began (last-answer.ts).
  const tell = fromPeer(core.hooks.req(c)) && !core.hooks.res(c).hasHeader(CLOSING_HEADER)
  return { headers: tell ? [...ack.headers, CLOSE, CLOSING] : [...ack.headers, CLOSE] }
}

function cookied<C> (core: CoreContext<C>, info: LitefsInfo, c: C, txid: bigint | undefined): Appended {
  if (txid === undefined) {
    // A write served as primary, and no position for its database: it does not
    // exist yet, or `db` names the wrong file (db-missing.ts says which).
    sayDbMissing(core)
    return AS_IS
  }
  // Its -pos exists now: the state has its position (from this read, which
  // raises it, or from an event before), and that change said the warning
  // cleared, if one was said (db-missing.ts clearDbOnPosition).
  if (txid === 0n) return AS_IS
  info.setTxid = formatTxid(txid)
  core.observer.cookieSet(core.hooks.req(c), info.setTxid)
  return tokened(core, c, txidToken(core.options.cookie, txid))
}

/** The cookie and the token header carrying `token`. */
function tokened<C> (core: CoreContext<C>, c: C, token: string): Appended {
  const cookie = tokenSetCookie(core.options.cookie, token, core.hooks.secure(c))
  const header = core.options.tokenHeader
  if (header === false) return { headers: [['set-cookie', cookie]] }
  return { headers: [['set-cookie', cookie], [header, token]] }
}
