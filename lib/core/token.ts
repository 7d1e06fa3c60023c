import type { IncomingHttpHeaders } from 'node:http'
import { eachCookie } from './cookie.js'
import type { ResolvedOptions } from './options.js'
import { readPeerCookies } from './peer-cookies.js'
import { addPosition, mergePositions, percentDecoded, readPositions, type Positions } from './positions-token.js'

// The client's token, from wherever it carries it: the cookie (and, with
// `peerCookies`, LiteFS's or litefs-js's: peer-cookies.ts), or the token
// header (option `tokenHeader`, default `litefs-txid`) for clients without
// cookies — API clients, mobile apps, cross-origin `fetch` without
// credentials. Both hold the same value (cookie.ts's txidToken, or
// positions-token.ts's for several databases), signed the same way; a token
// that does not verify is no token. The highest valid TXID of each database
// among all those sent wins, as for a cookie sent twice: waiting for the
// highest keeps every one of the client's writes visible. A bare TXID (and a
// peer's cookie) is the main database's. What a read does with it is
// read-path.ts's; writing the header on a write's answer is the acknowledgement's.

/**
 * The positions a request's tokens name (cookie, peers' cookies, token
 * header), or undefined for none. Never throws. `refused` is given each
 * token value that does not verify (token-refused.ts says why, once).
 */
export function requestPositions (options: ResolvedOptions, headers: IncomingHttpHeaders, refused?: (value: string) => void): Positions | undefined {
  const raw = options.tokenHeader === false ? undefined : headers[options.tokenHeader]
  // Most reads carry neither: no allocation for them.
  if (headers.cookie === undefined && raw === undefined) return undefined
  const main = options.db
  const found: Positions = new Map()
  // A cookie value a client percent-encoded (document.cookie with
  // encodeURIComponent: `app.db%3A…%7C…`) is read decoded once, as cookie
  // parsers (cookie, Django's) read it; only when it does not read as it is,
  // so a name's own encoding inside a token is never decoded twice.
  eachCookie(headers.cookie, options.cookie.name, value => {
    if (addToken(found, options, value)) return
    const decoded = value.includes('%') ? percentDecoded(value) : undefined
    if (decoded === undefined || !addToken(found, options, decoded)) refused?.(decoded ?? value)
  })
  if (options.peerCookies.length > 0 && main !== undefined) {
    const peer = readPeerCookies(options.peerCookies, headers.cookie)
    if (peer !== undefined) addPosition(found, main, peer)
  }
  // Node joins a repeated header with ", " (and keeps an array for a few names): every value counts.
  if (raw !== undefined) {
    for (const value of (Array.isArray(raw) ? raw.join(',') : raw).split(',')) {
      if (!addToken(found, options, value) && value.trim() !== '') refused?.(value)
    }
  }
  return found.size === 0 ? undefined : found
}

/** Fold the positions one token names into `found`; whether it named any (a valid token). */
function addToken (found: Positions, options: ResolvedOptions, value: string): boolean {
  const positions = readPositions(options.cookie, value, options.db)
  if (positions === undefined) return false
  mergePositions(found, positions)
  return true
}

/** The main database's TXID a request carries (cookie or token header), or undefined. Never throws. */
export function requestTxid (options: ResolvedOptions, headers: IncomingHttpHeaders): bigint | undefined {
  return requestPositions(options, headers)?.get(options.db as string)
}
