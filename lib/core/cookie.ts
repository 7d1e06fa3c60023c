import { createHmac, timingSafeEqual } from 'node:crypto'
import { formatTxid, parseTxid } from './txid.js'

// The TXID cookie, read and written without a cookie library: one name to find
// in the header and one fixed attribute list to write. Reading never throws;
// anything that is not a well-formed (and, with a secret, well-signed) TXID is
// "no TXID".

export interface CookieSettings {
  name: string
  maxAge: number // seconds
  secrets: readonly string[] // first signs, all verify (rotation); empty: unsigned
}

function sign (secret: string, hex: string): string {
  return createHmac('sha256', secret).update(hex).digest('base64url')
}

function verify (settings: CookieSettings, value: string): bigint | undefined {
  if (settings.secrets.length === 0) return parseTxid(value)
  const dot = value.indexOf('.')
  if (dot !== 16) return undefined
  const hex = value.slice(0, 16)
  const mac = Buffer.from(value.slice(17))
  for (const secret of settings.secrets) {
    const expected = Buffer.from(sign(secret, hex))
    if (expected.length === mac.length && timingSafeEqual(expected, mac)) return parseTxid(hex)
  }
  return undefined
}

/**
 * The TXID carried by a Cookie header. Browsers may send a name twice (cookies
 * set for a parent domain and a subdomain); the highest valid value wins, since
 * waiting for the highest is what keeps every one of the client's writes visible.
 */
export function readTxidCookie (settings: CookieSettings, header: string | undefined): bigint | undefined {
  return highestCookie(header, settings.name, value => verify(settings, value))
}

/** The highest value `parse` accepts among the cookies named `name` in a Cookie header (peer-cookies.ts reads other formats). */
export function highestCookie (header: string | undefined, name: string, parse: (value: string) => bigint | undefined): bigint | undefined {
  if (header === undefined) return undefined
  let best: bigint | undefined
  let from = 0
  for (;;) {
    const at = header.indexOf(name, from)
    if (at === -1) return best
    from = at + name.length
    if (header.charCodeAt(from) !== 61 /* = */ || !atPairStart(header, at)) continue
    let end = header.indexOf(';', from + 1)
    if (end === -1) end = header.length
    const txid = parse(header.slice(from + 1, end).trim())
    if (txid !== undefined && (best === undefined || txid > best)) best = txid
    from = end
  }
}

function atPairStart (header: string, at: number): boolean {
  for (let i = at - 1; i >= 0; i--) {
    const c = header.charCodeAt(i)
    if (c === 59 /* ; */) return true
    if (c !== 32 && c !== 9) return false
  }
  return true
}

/**
 * The token for `txid`: the cookie's value, and the token header's (token.ts):
 * 16 hex digits, with a secret `<hex>.<base64url HMAC-SHA256>`.
 */
export function txidToken (settings: CookieSettings, txid: bigint): string {
  const hex = formatTxid(txid)
  return settings.secrets.length === 0 ? hex : `${hex}.${sign(settings.secrets[0], hex)}`
}

/** The TXID in one token (a cookie's value or the token header's), or undefined when malformed or badly signed. */
export function readToken (settings: CookieSettings, value: string): bigint | undefined {
  return verify(settings, value.trim())
}

/** The Set-Cookie value for `txid`. */
export function txidSetCookie (settings: CookieSettings, txid: bigint, secure: boolean): string {
  return `${settings.name}=${txidToken(settings, txid)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${settings.maxAge}${secure ? '; Secure' : ''}`
}
