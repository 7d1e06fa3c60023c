import type { IncomingHttpHeaders } from 'node:http'
import { readToken, readTxidCookie } from './cookie.js'
import type { ResolvedOptions } from './options.js'
import { readPeerCookies } from './peer-cookies.js'

// The client's token, from wherever it carries it: the cookie (and, with
// `peerCookies`, LiteFS's or litefs-js's: peer-cookies.ts), or the token
// header (option `tokenHeader`, default `litefs-txid`) for clients without
// cookies — API clients, mobile apps, cross-origin `fetch` without
// credentials. Both hold the same value (cookie.ts's txidToken), signed the
// same way; a token that does not verify is no token. The highest valid TXID
// among all those sent wins, as for a cookie sent twice: waiting for the
// highest keeps every one of the client's writes visible. What a read does
// with it is read-path.ts's; writing the header on a write's answer is the
// acknowledgement's.

/** The TXID a request carries (cookie or token header), or undefined. Never throws. */
export function requestTxid (options: ResolvedOptions, headers: IncomingHttpHeaders): bigint | undefined {
  let best = readTxidCookie(options.cookie, headers.cookie)
  if (options.peerCookies.length > 0) {
    const peer = readPeerCookies(options.peerCookies, headers.cookie)
    if (peer !== undefined && (best === undefined || peer > best)) best = peer
  }
  if (options.tokenHeader === false) return best
  const raw = headers[options.tokenHeader]
  if (raw === undefined) return best
  // Node joins a repeated header with ", " (and keeps an array for a few names): every value counts.
  for (const value of (Array.isArray(raw) ? raw.join(',') : raw).split(',')) {
    const txid = readToken(options.cookie, value)
    if (txid !== undefined && (best === undefined || txid > best)) best = txid
  }
  return best
}
