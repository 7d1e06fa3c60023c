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
  const hex = unsign(settings, value)
  return hex === undefined ? undefined : parseTxid(hex)
}

/**
 * A token's payload: the value itself without a secret; with one,
 * `<payload>.<base64url HMAC-SHA256>` verified against every secret (the MAC
 * has no dot; a payload may: a database name). Undefined when badly signed.
 */
export function unsign (settings: CookieSettings, value: string): string | undefined {
  if (settings.secrets.length === 0) return value
  const dot = value.lastIndexOf('.')
  if (dot === -1) return undefined
  const payload = value.slice(0, dot)
  const mac = Buffer.from(value.slice(dot + 1))
  for (const secret of settings.secrets) {
    const expected = Buffer.from(sign(secret, payload))
    if (expected.length === mac.length && timingSafeEqual(expected, mac)) return payload
  }
  return undefined
}

/** `payload` as a token: itself, or with a secret `<payload>.<MAC>` (the first secret signs). */
export function signToken (settings: CookieSettings, payload: string): string {
  return settings.secrets.length === 0 ? payload : `${payload}.${sign(settings.secrets[0], payload)}`
}

/**
 * The TXID carried by a Cookie header. Browsers may send a name twice (cookies
 * set for a parent domain and a subdomain); the highest valid value wins, since
 * waiting for the highest is what keeps every one of the client's writes visible.
 */
export function readTxidCookie (settings: CookieSettings, header: string | undefined): bigint | undefined {
  if (typeof header !== 'string') return undefined // none (or not a header: JavaScript callers)
  return highestCookie(header, settings.name, value => verify(settings, value))
}

/** The highest value `parse` accepts among the cookies named `name` in a Cookie header (peer-cookies.ts reads other formats). */
export function highestCookie (header: string | undefined, name: string, parse: (value: string) => bigint | undefined): bigint | undefined {
  let best: bigint | undefined
  eachCookie(header, name, value => {
    const txid = parse(value)
    if (txid !== undefined && (best === undefined || txid > best)) best = txid
  })
  return best
}

/**
 * Call `each` with the value of every cookie named `name` in a Cookie header,
 * read as cookie parsers read it (the `cookie` package, Django's): spaces
 * around `=` and the value are dropped, and a value in double quotes is
 * unquoted.
 */
export function eachCookie (header: string | undefined, name: string, each: (value: string) => void): void {
  if (header === undefined) return
  let from = 0
  for (;;) {
    const at = header.indexOf(name, from)
    if (at === -1) return
    from = at + name.length
    let eq = from
    while (header.charCodeAt(eq) === 32 || header.charCodeAt(eq) === 9) eq++ // ends at the header's end (NaN)
    if (header.charCodeAt(eq) !== 61 /* = */ || !atPairStart(header, at)) continue
    let end = header.indexOf(';', eq + 1)
    if (end === -1) end = header.length
    const value = header.slice(eq + 1, end).trim()
    each(value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34 ? value.slice(1, -1) : value)
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
  // Every answer of one shared `-pos` read carries the same TXID: its token
  // (an HMAC with a secret) is made once, not once per answer.
  const last = lastToken.get(settings)
  if (last?.txid === txid) return last.token
  const token = signToken(settings, formatTxid(txid))
  lastToken.set(settings, { txid, token })
  return token
}

/** The last token made per cookie settings (one core's). */
const lastToken = new WeakMap<CookieSettings, { txid: bigint, token: string }>()

/** The TXID in one token (a cookie's value or the token header's), or undefined when malformed, badly signed or not a string. Never throws. */
export function readToken (settings: CookieSettings, value: string): bigint | undefined {
  return typeof value === 'string' ? verify(settings, value.trim()) : undefined
}

/** The Set-Cookie value for `txid`. */
export function txidSetCookie (settings: CookieSettings, txid: bigint, secure: boolean): string {
  return tokenSetCookie(settings, txidToken(settings, txid), secure)
}

/** The Set-Cookie value carrying `token` (txidToken's, or positions-token.ts's for several databases). */
export function tokenSetCookie (settings: CookieSettings, token: string, secure: boolean): string {
  return `${settings.name}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${settings.maxAge}${secure ? '; Secure' : ''}`
}
