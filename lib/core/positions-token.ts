import { signToken, unsign, type CookieSettings } from './cookie.js'
import { MAX_DATABASES, validName } from './databases.js'
import { formatTxid, parseTxid } from './txid.js'

// A token naming the positions of several databases (option `db` as a list or
// `'*'`: databases.ts). Its payload is one entry per database,
// `<name>:<16 hex digits>`, names percent-encoded (encodeURIComponent: no `:`,
// `|`, `,`, `;` or space survives it), entries joined by `|`:
//   app.db:000000000000002a|cache.db:0000000000000007
// at most MAX_DATABASES entries, each name at most MAX_NAME characters: under
// 2 KB whatever the names. A secret signs the whole payload as it signs a
// single TXID (`<payload>.<MAC>`, cookie.ts). A token naming the main database
// alone is written as before, 16 hex digits, and 16 hex digits are read as the
// main database's position: single-database tokens stay valid both ways.
// Reading never throws: anything malformed or badly signed is no token.

/** Database name → TXID. */
export type Positions = Map<string, bigint>

/** The token for `positions` (non-empty). `main`: the database a bare TXID means. */
export function positionsToken (settings: CookieSettings, positions: Positions, main: string | undefined): string {
  const only = positions.size === 1 && main !== undefined ? positions.get(main) : undefined
  if (only !== undefined) return signToken(settings, formatTxid(only))
  const entries: string[] = []
  for (const [db, txid] of positions) entries.push(`${encodeURIComponent(db)}:${formatTxid(txid)}`)
  return signToken(settings, entries.join('|'))
}

/** The positions one token names, or undefined when malformed, badly signed, or a bare TXID without a main database. */
export function readPositions (settings: CookieSettings, value: string, main: string | undefined): Positions | undefined {
  const payload = unsign(settings, value.trim())
  if (payload === undefined) return undefined
  const bare = parseTxid(payload)
  if (bare !== undefined) return main === undefined ? undefined : new Map([[main, bare]])
  const entries = payload.split('|')
  if (entries.length > MAX_DATABASES) return undefined
  const positions: Positions = new Map()
  for (const entry of entries) {
    const colon = entry.lastIndexOf(':')
    const txid = parseTxid(entry.slice(colon + 1))
    const db = colon > 0 ? percentDecoded(entry.slice(0, colon)) : undefined
    if (txid === undefined || db === undefined || !validName(db)) return undefined
    addPosition(positions, db, txid)
  }
  return positions
}

/** `text` with its percent-encoding decoded, or undefined when it is malformed (a lone %, broken UTF-8). */
export function percentDecoded (text: string): string | undefined {
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined // a lone % or a broken UTF-8 sequence
  }
}

/** Record `txid` for `db` unless a higher one is there: of several tokens, the highest position of each database counts. */
export function addPosition (positions: Positions, db: string, txid: bigint): void {
  const had = positions.get(db)
  if (had === undefined || txid > had) positions.set(db, txid)
}

/** Fold `from` into `into`, database by database (addPosition). */
export function mergePositions (into: Positions, from: Positions): void {
  for (const [db, txid] of from) addPosition(into, db, txid)
}
