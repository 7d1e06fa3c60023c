import { MAX_TIMER_MS, MAX_TIMER_WORDS, parseDuration } from './duration.js'
import { PathPatterns } from './path-match.js'

// The checks of options.ts, one per kind of value: each returns the value or
// throws LitefsOptionsError naming the option, what it expected and what it
// got. Which option is which kind, and the defaults, are options.ts's.

/** A bad option, thrown when the plugin or middleware is created. */
export class LitefsOptionsError extends TypeError {
  readonly code = 'LITEFS_BAD_OPTION'

  /**
   * `option`: the option at fault (`"consul.url"` for a nested one); `expected`:
   * what fail() said it must be. For `serve`, which says the same in flag terms
   * (sidecar/flag-errors.ts).
   */
  constructor (message: string, readonly option?: string, readonly expected?: string) {
    super(message)
  }
}

export function show (value: unknown): string {
  if (typeof value !== 'string' && (typeof value !== 'object' || value === null)) return String(value)
  try {
    return JSON.stringify(value)
  } catch {
    return Object.prototype.toString.call(value) // circular
  }
}

export function fail (name: string, expected: string, got: unknown): never {
  const shown = show(got)
  throw new LitefsOptionsError(`litefs-proxy: option "${name}" must be ${expected}, got ${shown}`, name, expected)
}

/** A duration option (ms). `timer`: it becomes a timer, so at most MAX_TIMER_MS (duration.ts). */
export function duration (opts: Record<string, unknown>, name: string, fallback: number, positive: boolean, timer = true): number {
  const raw = opts[name]
  if (raw === undefined) return fallback
  const ms = parseDuration(raw)
  if (ms === undefined || (positive && ms === 0)) {
    fail(name, `a ${positive ? 'positive ' : ''}duration (milliseconds, or a string such as "5s" or "250ms")`, raw)
  }
  if (timer && ms > MAX_TIMER_MS) fail(name, `a duration ${MAX_TIMER_WORDS}`, raw)
  return ms
}

/**
 * The cookie's Max-Age, in whole seconds. Under a second it would be
 * `Max-Age=0`, which deletes the cookie as it arrives: refused (300 means
 * 300 ms, as every duration given as a number, not LiteFS's 300 s).
 */
export function cookieMaxAge (opts: Record<string, unknown>): number {
  const ms = duration(opts, 'cookieMaxAge', 300_000, true, false)
  if (ms < 1000) fail('cookieMaxAge', 'a duration of at least 1 s (a Max-Age of 0 deletes the cookie; a number is milliseconds: 300000 or "5m" for five minutes)', opts.cookieMaxAge)
  return Math.round(ms / 1000)
}

export function patterns (opts: Record<string, unknown>, name: string): PathPatterns {
  const raw = opts[name] ?? []
  // A path never holds `?` or `#` (the query and fragment are not compared): such a glob would never match.
  if (!Array.isArray(raw) || !raw.every(p => (typeof p === 'string' && p.startsWith('/') && !/[?#]/.test(p)) || p instanceof RegExp)) {
    fail(name, 'an array of path globs starting with "/" (without "?" or "#": the query is not compared) or RegExps', raw)
  }
  return new PathPatterns(raw)
}

export function bytes (opts: Record<string, unknown>, name: string): number {
  const raw = opts[name]
  if (raw === undefined) return Infinity
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) fail(name, 'a number of bytes', raw)
  return raw
}

export function count (opts: Record<string, unknown>, name: string, fallback: number): number {
  const raw = opts[name] ?? fallback
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) fail(name, 'a whole number ≥ 0', raw)
  return raw
}

export function flag (opts: Record<string, unknown>, name: string): boolean {
  const raw = opts[name] ?? false
  if (typeof raw !== 'boolean') fail(name, 'true or false', raw)
  return raw
}

export function text (opts: Record<string, unknown>, name: string, fallback: string, check: RegExp, expected: string): string {
  const raw = opts[name] ?? fallback
  if (typeof raw !== 'string' || !check.test(raw)) fail(name, expected, raw)
  return raw
}

export const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/ // an RFC 6265 token

export function oneOf<T extends string> (opts: Record<string, unknown>, name: string, values: readonly T[], fallback: T): T {
  const raw = opts[name] ?? fallback
  if (!values.includes(raw as T)) fail(name, values.map(v => `"${v}"`).join(' or '), raw)
  return raw as T
}
