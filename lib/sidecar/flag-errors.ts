import { EXPECTED as DB_EXPECTED } from '../core/databases.js'
import { LitefsOptionsError } from '../core/option-checks.js'

// A bad core option, said as `serve` was given it: the flag that set it
// (`--txid-timeout`, not "readTimeout"), what that flag takes in command-line
// terms, and the value as typed (`"app.db,*"`, not a JavaScript array). The
// checks themselves stay the core's (option-checks.ts, options.ts): serve
// gives it options, and only the wording changes here.

/** What a given value looks like on the command line: a string, repeated flags' strings, a bare flag. */
export type Given = string | readonly string[] | boolean

/** A flag's value as `serve` got it, and where from when not the command line (`proxy.db in --config`, `LITEFS_PROXY_SECRET`). */
export interface GivenFlag { value: Given, source?: string }

const DURATION = 'a positive duration such as 5s, 500ms or 1m30s (a bare number is milliseconds)'
const GLOB = "a path glob starting with /, without ? or # (the query is not compared), e.g. '/static/*' (* spans /)"
const TOKEN = "letters, digits and !#$%&'*+-.^_`|~"
const SECRET = 'at least 16 characters (repeat the flag to rotate: the first signs)'

/** Each core option serve sets: its flag, and what the flag takes (absent: the core's words, in flag terms). */
export const OPTION_FLAGS: Record<string, { flag: string, expected?: string }> = {
  addr: { flag: 'addr', expected: 'where to listen: :port or host:port, e.g. :8080' },
  target: { flag: 'target', expected: "the app's host:port or http://host:port, e.g. localhost:8000" },
  db: { flag: 'db', expected: `a database file name in the mount (app.db), several separated by commas (app.db,cache.db: the first is the main one), or '*' for every database in the mount, alone or last (app.db,*)` },
  mount: { flag: 'mount', expected: "a directory path (LiteFS's fuse.dir)" },
  api: { flag: 'api', expected: "LiteFS's API as an http(s) URL (its http.addr), or false" },
  role: { flag: 'role', expected: 'primary or replica' },
  passthrough: { flag: 'passthrough', expected: GLOB },
  alwaysForward: { flag: 'always-forward', expected: GLOB },
  readTimeout: { flag: 'txid-timeout', expected: DURATION },
  cookieMaxAge: { flag: 'cookie-max-age', expected: 'a duration of at least 1s, such as 5m (a Max-Age of 0 deletes the cookie; a bare number is milliseconds)' },
  forwardTimeout: { flag: 'forward-timeout', expected: DURATION },
  durabilityTimeout: { flag: 'durability-timeout', expected: DURATION },
  tokenPath: { flag: 'token-path' },
  healthPath: { flag: 'health-path', expected: 'a path starting with / (no query, fragment or space), or false' },
  primaryUrl: { flag: 'primary-url' },
  cookieName: { flag: 'cookie-name', expected: `a cookie name (${TOKEN})` },
  tokenHeader: { flag: 'token-header', expected: `a header name of its own (${TOKEN}; not one HTTP, browsers or litefs-proxy give a meaning, such as content-type), or false` },
  peerCookies: { flag: 'peer-cookie', expected: "__txid (LiteFS's proxy) or txnum (litefs-js)" },
  secret: { flag: 'secret', expected: SECRET },
  peerSecret: { flag: 'peer-secret', expected: SECRET },
  peerName: { flag: 'peer-name' },
  durability: { flag: 'durability' },
  consul: { flag: 'consul-url' },
  'consul.url': { flag: 'consul-url', expected: "Consul's http(s) URL, as litefs.yml's lease.consul.url" },
  'consul.key': { flag: 'consul-key', expected: "the lease key, as litefs.yml's lease.consul.key" },
  'consul.lockDelay': { flag: 'consul-lock-delay', expected: "a duration of at least 300ms, as litefs.yml's lease.consul.lock-delay (LiteFS's default is 1s: a confirmation counts for lock-delay less 200ms)" }
}

/** `durability`'s list (what fail() checks): its paths, given as --durable-path. */
const DURABLE_PATH = { flag: 'durable-path', expected: GLOB }

/** Options set from --config alone, with no flag. */
const FILE_ONLY: Record<string, string> = { 'consul.hostname': 'lease.hostname in --config' }

/** Secrets are never echoed, not even bad ones: their lengths are. */
const SECRETS = new Set(['secret', 'peer-secret'])

function shown (flag: string, value: Given): string {
  const list = typeof value === 'string' || typeof value === 'boolean' ? [value] : value
  if (SECRETS.has(flag)) return list.map(v => `one of ${String(v).length} characters`).join(', ')
  return list.map(v => JSON.stringify(v)).join(', ')
}

/** A core message's words in flag terms: option names as flags, `api: false` as `--api false`, JavaScript lists as typed. Also serve's runtime warnings (Logger.words). */
export function inFlagTerms (text: string): string {
  return text
    .replace(/\[("[^"]*"(?:, ?"[^"]*")*)\]/g, (_m, items: string) => JSON.stringify((JSON.parse(`[${items}]`) as string[]).join(',')))
    .replace(/(?:option )?"([a-zA-Z.]+)"/g, (m, name: string) => OPTION_FLAGS[name] !== undefined ? `--${OPTION_FLAGS[name].flag}` : FILE_ONLY[name] ?? m)
    .replace(/\bapi: false\b/g, '--api false')
}

/**
 * `err` in flag terms, one line (no "litefs-proxy: "); other errors' messages
 * as they are. `given`: each flag's value as serve got it.
 */
export function flagMessage (err: Error, given: Readonly<Record<string, GivenFlag | undefined>>): string {
  const message = err.message.replace(/^litefs-proxy: /, '')
  if (!(err instanceof LitefsOptionsError) || err.option === undefined) return message
  if (err.expected === undefined) return inFlagTerms(message)
  const known = err.option === 'durability' ? DURABLE_PATH : OPTION_FLAGS[err.option]
  if (known === undefined) return inFlagTerms(message)
  const from = given[known.flag]
  const where = from?.source === undefined ? `--${known.flag}` : `--${known.flag} (${from.source})`
  // `db`'s checks add why a list is wrong ("each named once") to what it must be.
  const why = err.option === 'db' ? inFlagTerms(err.expected.slice(DB_EXPECTED.length)) : ''
  const expected = known.expected ?? inFlagTerms(err.expected)
  return `${where}: expected ${expected}${why}${from === undefined ? '' : `, got ${shown(known.flag, from.value)}`}`
}
