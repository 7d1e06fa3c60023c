// Path patterns for `passthrough` and `alwaysForward`. Strings are LiteFS globs:
// anchored on the whole path, `*` matches any run of characters including `/`.
// RegExps are used as given. Everything is folded into one RegExp so a request
// costs one test, whatever the length of the list.
export type PathPattern = string | RegExp

/** A predicate over a request path (query string already removed). */
export type PathMatcher = (path: string) => boolean

const never: PathMatcher = () => false

function globSource (glob: string): string {
  return '^' + glob.split('*').map(escape).join('.*') + '$'
}

function escape (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

export function compilePatterns (patterns: readonly PathPattern[]): PathMatcher {
  if (patterns.length === 0) return never
  const sources = patterns.map(p => typeof p === 'string' ? globSource(p) : `(?:${p.source})`)
  // A RegExp's own flags matter (case-insensitive routes, say): keep each apart then.
  const flagged = patterns.filter((p): p is RegExp => typeof p !== 'string' && p.flags.replace(/[gy]/g, '') !== '')
  if (flagged.length === 0) {
    const re = new RegExp(sources.map(s => `(?:${s})`).join('|'))
    return path => re.test(path)
  }
  const plain = compilePatterns(patterns.filter(p => !flagged.includes(p as RegExp)))
  const each = flagged.map(p => new RegExp(p.source, p.flags.replace(/[gy]/g, '')))
  return path => plain(path) || each.some(re => re.test(path))
}

/** The path part of a request target: everything before `?`. */
export function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
