// Path patterns for `passthrough` and `alwaysForward`, matched as the app's
// router matches paths (DESIGN §6: a replica classifies a path the way the
// primary's router will route it). Strings are LiteFS globs: anchored on the
// whole path, `*` matches any run of characters including `/`. RegExps are used
// as given, against the path as sent and as the router sees it.
export type PathPattern = string | RegExp

/** A predicate over a request path (query string already removed). */
export type PathMatcher = (path: string) => boolean

/**
 * How a router compares paths. Fastify (find-my-way): percent-decoded with
 * `decodeURI` (`'uri'`: reserved characters such as `%2F` stay encoded),
 * case-sensitive unless `caseSensitive: false`, trailing and duplicate slashes
 * significant unless `ignoreTrailingSlash` / `ignoreDuplicateSlashes`. Express:
 * not decoded, case-insensitive and a trailing slash optional unless `case
 * sensitive routing` / `strict routing`. The app behind node:http or `serve`
 * (DECODED): every escape decoded (`'all'`).
 */
export interface PathRules {
  decode: 'none' | 'uri' | 'all'
  caseSensitive: boolean
  strictTrailingSlash: boolean
  collapseSlashes: boolean
}

/** Paths compared exactly as sent. */
export const EXACT: PathRules = { decode: 'none', caseSensitive: true, strictTrailingSlash: true, collapseSlashes: false }

/**
 * Paths as the app behind node:http or `serve` routes them, which litefs-proxy
 * cannot ask: Go's `URL.Path` (LiteFS's proxy matches it) and WSGI's
 * `PATH_INFO` (Django, Flask) have every escape decoded, `%2F` included, so
 * `/%6fauth/callback` is `/oauth/callback` to both. Case, trailing and double
 * slashes count, as in both.
 */
export const DECODED: PathRules = { decode: 'all', caseSensitive: true, strictTrailingSlash: true, collapseSlashes: false }

// Runs of escapes, decoded as UTF-8 bytes together (`%C3%A9` is one character).
const ESCAPES = /(?:%[0-9a-fA-F]{2})+/g

/**
 * Every valid escape decoded, an invalid one (`%zz`, a lone `%`) left as sent,
 * bytes that are not UTF-8 as U+FFFD: Python's `unquote`, which is what a WSGI
 * app routes on. (Go refuses such a request with 400 before its router, so
 * what a Go app's router would match does not arise.) Never throws.
 */
function decodeAll (path: string): string {
  return path.replace(ESCAPES, run => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'))
}

function decodePath (path: string, decode: PathRules['decode']): string {
  if (decode === 'none' || !path.includes('%')) return path
  if (decode === 'all') return decodeAll(path)
  try {
    return decodeURI(path.replace(/%25/g, '%2525')) // `%25` stays `%25`, as find-my-way keeps it
  } catch {
    return path // malformed: the router refuses it (400); no pattern is meant for it
  }
}

/** `path` as a router with `rules` compares it. */
export function normalizePath (path: string, rules: PathRules): string {
  let p = decodePath(path, rules.decode)
  if (rules.collapseSlashes && p.includes('//')) p = p.replace(/\/{2,}/g, '/')
  if (!rules.strictTrailingSlash && p.length > 1 && p.endsWith('/')) p = p.slice(0, -1)
  return rules.caseSensitive ? p : p.toLowerCase()
}

function escape (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

function globSource (glob: string): string {
  return '^' + glob.split('*').map(escape).join('.*') + '$'
}

const never: PathMatcher = () => false

function anyOf (sources: string[], flags: string): PathMatcher {
  if (sources.length === 0) return never
  const re = new RegExp(sources.map(s => `(?:${s})`).join('|'), flags)
  return path => re.test(path)
}

/**
 * A list of patterns, folded into as few RegExps as their flags allow, so a
 * request costs one or two tests whatever the length of the list. Globs are
 * compiled once per set of rules (a glob is normalised as paths are).
 */
export class PathPatterns {
  readonly empty: boolean
  private readonly globs: string[]
  private readonly regexps: PathMatcher
  private readonly byRules = new Map<string, PathMatcher>()

  constructor (patterns: readonly PathPattern[]) {
    this.empty = patterns.length === 0
    this.globs = patterns.filter((p): p is string => typeof p === 'string')
    const res = patterns.filter((p): p is RegExp => typeof p !== 'string')
    // A RegExp's own flags matter (case-insensitive routes, say): keep each flagged one apart.
    const flagOf = (re: RegExp): string => re.flags.replace(/[gy]/g, '')
    const plain = anyOf(res.filter(re => flagOf(re) === '').map(re => re.source), '')
    const flagged = res.filter(re => flagOf(re) !== '').map(re => new RegExp(re.source, flagOf(re)))
    this.regexps = flagged.length === 0 ? plain : path => plain(path) || flagged.some(re => re.test(path))
  }

  /** Whether `path` (no query string) matches, compared as a router with `rules` compares paths. */
  matches (path: string, rules: PathRules = EXACT): boolean {
    if (this.empty) return false
    const normalized = normalizePath(path, rules)
    return this.globsFor(rules)(normalized) || this.regexps(path) || (normalized !== path && this.regexps(normalized))
  }

  private globsFor (rules: PathRules): PathMatcher {
    const key = `${rules.decode}${+rules.caseSensitive}${+rules.strictTrailingSlash}${+rules.collapseSlashes}`
    let m = this.byRules.get(key)
    if (m === undefined) {
      // A glob is a path: it is spelled as the router compares paths (not decoded: it is not percent-encoded).
      m = anyOf(this.globs.map(g => globSource(normalizePath(g, { ...rules, decode: 'none' }))), '')
      this.byRules.set(key, m)
    }
    return m
  }
}

/** A matcher over exact paths (for callers outside a router). */
export function compilePatterns (patterns: readonly PathPattern[]): PathMatcher {
  const p = new PathPatterns(patterns)
  return path => p.matches(path)
}

// An absolute-form target's scheme and authority (`http://host:80`): RFC 9112 §3.2.2.
const ABSOLUTE = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/

/**
 * A request target in origin form: an absolute-form one (`GET http://host/p`,
 * which proxies are sent and Node's server accepts) reduced to its path and
 * query, as every router routes it (Express, Fastify, Go's URL.Path,
 * Gunicorn's PATH_INFO); `/` when it has no path. Others as they are.
 */
export function originForm (url: string): string {
  const m = url[0] === '/' ? null : ABSOLUTE.exec(url)
  if (m === null) return url
  const rest = url.slice(m[0].length)
  return rest[0] === '/' ? rest : '/' + rest
}

// What undici sends (its lib/core/request.js): a `/`, then characters 0x21–0xFF.
const SENDABLE = /^\/[\u0021-\u00ff]*$/

/**
 * Whether a request target in origin form can be sent on — by `serve` to its
 * app, by a replica to the primary: a path. The asterisk form (`POST *`,
 * `M-SEARCH *`), which Node's server accepts, names a server, not a resource;
 * undici refuses it (UND_ERR_INVALID_ARG). A client's error, answered 400
 * LITEFS_BAD_TARGET, never a primary's failure.
 */
export function sendable (target: string): boolean {
  return SENDABLE.test(target)
}

/** The path of a request target as routers see it: in origin form, everything before `?`. */
export function pathOf (url: string): string {
  const target = originForm(url)
  const q = target.indexOf('?')
  return q === -1 ? target : target.slice(0, q)
}
