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
 * `decodeURI` (reserved characters such as `%2F` stay encoded), case-sensitive
 * unless `caseSensitive: false`, trailing and duplicate slashes significant unless
 * `ignoreTrailingSlash` / `ignoreDuplicateSlashes`. Express: not decoded,
 * case-insensitive and a trailing slash optional unless `case sensitive routing`
 * / `strict routing`.
 */
export interface PathRules {
  decode: boolean
  caseSensitive: boolean
  strictTrailingSlash: boolean
  collapseSlashes: boolean
}

/** Paths compared exactly as sent (node:http, which has no router). */
export const EXACT: PathRules = { decode: false, caseSensitive: true, strictTrailingSlash: true, collapseSlashes: false }

function decodePath (path: string): string {
  if (!path.includes('%')) return path
  try {
    return decodeURI(path.replace(/%25/g, '%2525')) // `%25` stays `%25`, as find-my-way keeps it
  } catch {
    return path // malformed: the router refuses it (400); no pattern is meant for it
  }
}

/** `path` as a router with `rules` compares it. */
export function normalizePath (path: string, rules: PathRules): string {
  let p = rules.decode ? decodePath(path) : path
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
    const key = `${+rules.decode}${+rules.caseSensitive}${+rules.strictTrailingSlash}${+rules.collapseSlashes}`
    let m = this.byRules.get(key)
    if (m === undefined) {
      // A glob is a path: it is spelled as the router compares paths (not decoded: it is not percent-encoded).
      m = anyOf(this.globs.map(g => globSource(normalizePath(g, { ...rules, decode: false }))), '')
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

/** The path part of a request target: everything before `?`. */
export function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
