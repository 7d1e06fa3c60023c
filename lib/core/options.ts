import { MAX_TIMER_MS, MAX_TIMER_WORDS, parseDuration } from './duration.js'
import type { PathPattern, PathPatterns } from './path-match.js'
import { bytes, COOKIE_NAME, cookieMaxAge, count, duration, fail, flag, LitefsOptionsError, oneOf, patterns, text } from './option-checks.js'
import type { CookieSettings } from './cookie.js'
import type { NodeState } from './node-state.js'
import type { ConsulLease } from './lease-fence.js'
import { primaryOriginOf, type PrimaryOrigin } from './primary-url.js'
import { DURABILITY_KEYS, resolveDurability, type DurabilityInput, type DurabilitySettings } from './durability-options.js'
import { PEER_COOKIES, type PeerCookie } from './peer-cookies.js'
import { resolveDatabases, several, type DatabaseSettings } from './databases.js'
import { OWN_HEADERS } from './own-headers.js'

/** What a read held past `readTimeout` gets: 504, the primary's answer, or the replica's (maybe stale) answer. */
export type ReadTimeoutAction = 'error' | 'primary' | 'stale'

/** A duration: milliseconds, or a string such as "5s", "250ms", "1m". */
export type Duration = number | string

/** Options shared by every adapter (Fastify, Express, node:http). */
export interface LitefsOptions extends DurabilityInput {
  /**
   * The database file name inside the mount whose TXID is tracked (LiteFS
   * `proxy.db`); or a list of them (the first is the main one); or `'*'` for
   * every database in the mount, alone or last (`['app.db', '*']`). Required.
   */
  db: string | string[]
  /** LiteFS FUSE mount directory. Default `/litefs`. */
  mount?: string
  /** LiteFS HTTP API base URL, or `false` for the mount files alone. Default `http://localhost:20202`. */
  api?: string | false
  /**
   * With `api: false` only: this node's role when the mount files cannot tell
   * (no `.primary` file: a primary, or a replica cut off from its primary).
   * Without it such a node is "unknown": its writes are held, then answered 503.
   * With the API, LiteFS says the role and this option is refused.
   */
  role?: 'primary' | 'replica'
  /** A node state to use instead of a LiteFS mount (the dev cluster's, or your own). */
  state?: NodeState
  /** Paths handed to the app untouched: LiteFS globs (`*` spans `/`) or RegExps. */
  passthrough?: PathPattern[]
  /** Paths whose reads are treated as writes (OAuth callbacks that write, say). */
  alwaysForward?: PathPattern[]
  /** How long a read waits for the replica to catch up before 504. Default `5s`. */
  readTimeout?: Duration
  /** How long a write waits for a primary to be known before 503. Default `5s`. */
  primaryRedirectTimeout?: Duration
  /** Health answers 503 above this replication lag; 0 disables. Default `10s`. */
  maxLag?: Duration
  /** Path of the health check, or false for none. Default `/litefs/health`. */
  healthPath?: string | false
  /** Cookie name. Default `litefs-txid` (LiteFS's own proxy uses `__txid`). */
  cookieName?: string
  /** Cookie lifetime. Default `5m` (as LiteFS). */
  cookieMaxAge?: Duration
  /**
   * The header a write's answer carries its token in, and a request may send
   * it back in, for clients without cookies (API clients, cross-origin
   * `fetch`); `false`: none. Default `litefs-txid`.
   */
  tokenHeader?: string | false
  /**
   * Also accept these peers' cookies on reads, for a rolling switch: `'__txid'`
   * (LiteFS's proxy) and `'txnum'` (litefs-js). Unsigned, so off by default.
   */
  peerCookies?: PeerCookie[]
  /** HMAC secret(s) to sign the cookie, so clients cannot forge a TXID far ahead. First signs; all verify. */
  secret?: string | string[]
  /** File poll interval while requests wait and the event stream is down. Default `1ms` (as LiteFS). */
  pollInterval?: Duration
  /**
   * What a replica does with a write: `'http'` streams it to the primary and the
   * answer back; `'fly-replay'` answers `fly-replay: instance=<primary>` for
   * Fly.io's edge to replay. Default `'fly-replay'` when `FLY_APP_NAME` is set, else `'http'`.
   */
  forward?: 'http' | 'fly-replay'
  /**
   * The primary's app URL, from the hostname LiteFS reports: a template with
   * `{hostname}` and `{port}` (this server's port), a plain URL (the primary is
   * there whatever its hostname: a static primary), or a function. Default
   * `http://{hostname}:{port}`.
   */
  primaryUrl?: string | ((hostname: string) => string)
  /** How long a forwarded request waits for the primary's response headers before 504. Default `30s`. */
  forwardTimeout?: Duration
  /**
   * The protocol a replica speaks to the primary: `'http1'`, or `'http2'` (h2c
   * for an http: primaryUrl, offered by ALPN for https:). Default: the one this
   * node's server spoke for the request (the primary runs the same server).
   */
  forwardProtocol?: 'http1' | 'http2'
  /**
   * A read held past `readTimeout`: `'error'` answers 504 (as LiteFS);
   * `'primary'` forwards it to the primary; `'stale'` serves it here anyway,
   * with a `litefs-stale` header and a log line saying it may be stale.
   * Default `'error'`.
   */
  readTimeoutAction?: ReadTimeoutAction
  /**
   * Largest request body a replica forwards, in bytes; past it, 413. Default: no
   * limit — the primary enforces its own (a replica refusing what the primary
   * would accept answers the same request differently depending on the node).
   */
  forwardBodyLimit?: number
  /**
   * Most requests held at once in this process (reads waiting for a TXID,
   * writes for a primary); past it a request that would wait is answered 503
   * LITEFS_OVERLOADED at once. Default 10,000.
   */
  maxWaiting?: number
  /** Add `Server-Timing: litefs;dur=<ms>;desc="wait"` (or `"forward"`) to answers that waited or were forwarded. Default false. */
  serverTiming?: boolean
  /**
   * The Consul lease LiteFS uses (litefs.yml `lease.consul`): with it, this node
   * serves writes as primary, and answers their success, only while Consul has
   * confirmed within `lockDelay` (minus a margin) that the lease is its own —
   * the fence LiteFS lacks. `url` and `key` as in litefs.yml; `lockDelay` its
   * `lock-delay` (default 1s, as LiteFS); `hostname` this node's lease
   * hostname (default: what LiteFS's `/info` says; needed with `api: false`).
   */
  consul?: { url: string, key: string, lockDelay?: Duration, hostname?: string }
}

/** Per-route options (`config: { litefs: … }` in Fastify). `false` is passthrough. */
export interface LitefsRouteOptions {
  /** Treat reads on this route as writes (they go to the primary). */
  alwaysForward?: boolean
  /** Hold this route's write answers until every connected candidate has them (or not), whatever `durability` says. */
  durability?: boolean
  /** Internal, serve's token path: a read whose answer is about this node, never forwarded past `readTimeout` (`'primary'` is a 504). */
  localRead?: boolean
}

export interface ResolvedOptions {
  /** The main database: the first named (undefined for `'*'` alone). */
  db: string | undefined
  /** Every database `db` names, and whether `'*'` adds the mount's others (databases.ts). */
  databases: DatabaseSettings
  mount: string
  api: string | false
  role: 'primary' | 'replica' | undefined
  state: NodeState | undefined
  passthrough: PathPatterns
  alwaysForward: PathPatterns
  readTimeout: number
  primaryRedirectTimeout: number
  maxLag: number
  healthPath: string | false
  cookie: CookieSettings
  /** The token header's name, lowercase, or false. */
  tokenHeader: string | false
  peerCookies: readonly PeerCookie[]
  pollInterval: number
  forward: 'http' | 'fly-replay'
  /** The primary's origin for a hostname, given this server's port. */
  primaryOrigin: PrimaryOrigin
  forwardTimeout: number
  /** undefined: what this node's server spoke for the request. */
  forwardProtocol: 'http1' | 'http2' | undefined
  readTimeoutAction: ReadTimeoutAction
  forwardBodyLimit: number
  maxWaiting: number
  serverTiming: boolean
  consul: (ConsulLease & { hostname?: string }) | undefined
  /** Replica reports and durability (durability-options.ts). */
  durability: DurabilitySettings
}

export { LitefsOptionsError }

const KNOWN = new Set([
  'db', 'mount', 'api', 'role', 'state', 'passthrough', 'alwaysForward', 'readTimeout',
  'primaryRedirectTimeout', 'maxLag', 'healthPath', 'cookieName', 'cookieMaxAge', 'tokenHeader', 'peerCookies', 'secret',
  'pollInterval', 'forward', 'primaryUrl', 'forwardTimeout', 'forwardProtocol', 'readTimeoutAction', 'forwardBodyLimit', 'maxWaiting', 'serverTiming', 'consul', ...DURABILITY_KEYS
])

function primaryOrigin (raw: unknown): PrimaryOrigin {
  // A misspelt placeholder ({host}, {HOSTNAME}) still parses as a URL: said now, not at the first forwarded write.
  const unknown = typeof raw === 'string' ? /\{[^}]*\}/.exec(raw.replaceAll('{hostname}', '').replaceAll('{port}', '')) : null
  if (unknown !== null) fail('primaryUrl', `a URL whose placeholders are "{hostname}" and "{port}" (not ${JSON.stringify(unknown[0])})`, raw)
  const origin = primaryOriginOf(raw)
  if (origin === undefined) fail('primaryUrl', 'an http(s) URL: a template with "{hostname}" (and "{port}"), the primary\'s own URL, or a function (hostname) => url', raw)
  return origin
}

function peerCookies (raw: unknown): readonly PeerCookie[] {
  if (raw === undefined) return []
  if (!Array.isArray(raw) || !raw.every(n => PEER_COOKIES.includes(n))) fail('peerCookies', 'an array of "__txid" (LiteFS\'s proxy) and "txnum" (litefs-js)', raw)
  return [...new Set(raw as PeerCookie[])]
}

/** Shortest lock-delay the fence can work with (ms): a confirmation counts for lock-delay less a 200 ms margin. */
const MIN_LOCK_DELAY = 300

function consulLease (raw: unknown, api: string | false, state: unknown): (ConsulLease & { hostname?: string }) | undefined {
  if (raw === undefined) return undefined
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('consul', 'an object { url, key, lockDelay?, hostname? } (litefs.yml\'s lease.consul)', raw)
  const c = raw as Record<string, unknown>
  for (const key of Object.keys(c)) {
    if (!['url', 'key', 'lockDelay', 'hostname'].includes(key)) throw new LitefsOptionsError(`litefs-proxy: unknown option "consul.${key}" (url, key, lockDelay, hostname)`)
  }
  if (state !== undefined) throw new LitefsOptionsError('litefs-proxy: option "consul" applies to a LiteFS mount, not to a given "state"', 'consul')
  if (typeof c.url !== 'string' || !URL.canParse(c.url) || !/^https?:$/.test(new URL(c.url).protocol)) fail('consul.url', "Consul's http(s) URL, as litefs.yml's lease.consul.url", c.url)
  if (typeof c.key !== 'string' || c.key.replace(/\//g, '') === '') fail('consul.key', "the lease key, as litefs.yml's lease.consul.key", c.key)
  const lockDelay = c.lockDelay === undefined ? 1000 : parseDuration(c.lockDelay)
  if (lockDelay !== undefined && lockDelay > MAX_TIMER_MS) fail('consul.lockDelay', `a duration ${MAX_TIMER_WORDS}`, c.lockDelay)
  if (lockDelay === undefined || lockDelay < MIN_LOCK_DELAY) {
    fail('consul.lockDelay', `litefs.yml's lease.consul.lock-delay, at least ${MIN_LOCK_DELAY}ms (LiteFS's default is 1s: the fence counts a confirmation for lock-delay less 200ms)`, c.lockDelay)
  }
  if (c.hostname !== undefined && (typeof c.hostname !== 'string' || c.hostname === '')) fail('consul.hostname', "this node's lease hostname (litefs.yml's lease.hostname)", c.hostname)
  if (c.hostname === undefined && api === false) throw new LitefsOptionsError('litefs-proxy: option "consul.hostname" is needed with api: false (the fence learns this node\'s lease hostname from LiteFS\'s /info otherwise)', 'consul.hostname')
  return { url: c.url, key: c.key, lockDelay, ...(c.hostname === undefined ? {} : { hostname: c.hostname as string }) }
}

/** Validate and fill in defaults. Adapters remove their own options (bodyLimit, logger…) first. */
/**
 * Headers HTTP, browsers, proxies or litefs-proxy itself give a meaning: the
 * token written into one of them would corrupt the answer (`content-length`),
 * add a cookie (`set-cookie`) or be read as something else.
 */
const TAKEN_HEADERS = new Set([
  'accept', 'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow', 'authorization', 'cache-control',
  'connection', 'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-range', 'content-security-policy', 'content-type', 'cookie', 'date', 'etag', 'expect', 'expires', 'forwarded',
  'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'keep-alive',
  'last-modified', 'link', 'location', 'origin', 'pragma', 'range', 'referer', 'retry-after', 'server',
  'server-timing', 'set-cookie', 'strict-transport-security', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'user-agent', 'vary', 'via', 'www-authenticate', 'fly-replay', 'idempotency-key', 'x-idempotency-key', 'x-real-ip'
])
const TAKEN_PREFIXES = ['access-control-', 'sec-', 'proxy-', 'x-forwarded-', 'litefs-forward', 'litefs-proxy-']

function tokenHeader (opts: Record<string, unknown>): string | false {
  if (opts.tokenHeader === false) return false
  const name = text(opts, 'tokenHeader', 'litefs-txid', COOKIE_NAME, 'a header name (letters, digits and !#$%&\'*+-.^_`|~) or false').toLowerCase()
  if (TAKEN_HEADERS.has(name) || OWN_HEADERS.includes(name) || TAKEN_PREFIXES.some(p => name.startsWith(p))) {
    fail('tokenHeader', 'a header name of its own (e.g. the default litefs-txid), not one HTTP, browsers or litefs-proxy give a meaning', opts.tokenHeader)
  }
  return name
}

export function resolveOptions (input: unknown): ResolvedOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('options', 'an object', input)
  const opts = input as Record<string, unknown>
  for (const key of Object.keys(opts)) {
    if (!KNOWN.has(key)) {
      throw new LitefsOptionsError(`litefs-proxy: unknown option "${key}"`)
    }
  }
  const databases = resolveDatabases(opts.db)
  const state = opts.state
  if (state !== undefined && (typeof state !== 'object' || state === null || typeof (state as NodeState).waitForPosition !== 'function')) {
    fail('state', 'a NodeState (from the dev cluster or openLitefsNode)', state)
  }
  const api = opts.api ?? 'http://localhost:20202'
  if (api !== false && (typeof api !== 'string' || !URL.canParse(api) || !/^https?:$/.test(new URL(api).protocol))) {
    fail('api', 'an http(s) URL of LiteFS\'s API or false', api)
  }
  const role = opts.role === undefined ? undefined : oneOf(opts, 'role', ['primary', 'replica'], 'primary')
  if (role !== undefined && api !== false && state === undefined) {
    // With the API, LiteFS says the role, and a role it does not confirm must never be acted on.
    throw new LitefsOptionsError('litefs-proxy: option "role" applies only with api: false (with its API, LiteFS says the role)', 'role')
  }
  const health = opts.healthPath ?? '/litefs/health'
  // A query or a fragment is never part of the path a request is matched on: such a health check would never answer.
  if (health !== false && (typeof health !== 'string' || !health.startsWith('/') || /[?#\s]/.test(health))) fail('healthPath', 'a path starting with "/" (no query, fragment or space) or false', health)
  const secret = opts.secret ?? []
  const secrets = typeof secret === 'string' ? [secret] : secret
  // An empty array given (a list split from an unset variable) would sign nothing, silently.
  if (!Array.isArray(secrets) || (opts.secret !== undefined && secrets.length === 0) || !secrets.every(s => typeof s === 'string' && s.length >= 16)) {
    // Never echo a secret, not even a bad one: say what was wrong with it.
    const described = (v: unknown): string => typeof v === 'string' ? `a string of ${v.length} characters` : typeof v
    const got = Array.isArray(secret) ? `[${secret.map(described).join(', ')}]` : described(secret)
    throw new LitefsOptionsError(`litefs-proxy: option "secret" must be a string of at least 16 characters, or an array of them, got ${got}`, 'secret', 'a string of at least 16 characters, or an array of them')
  }
  const durability = resolveDurability(opts, fail)
  // Checked before peerSecret's rule below, whose advice (name a main database
  // first) would only lead to this one.
  if (several(databases) && durability.on !== false) {
    // Replica reports carry one database's position: a write to another could not be checked.
    throw new LitefsOptionsError(`litefs-proxy: option "durability" needs "db" to name one database, got ${JSON.stringify(opts.db)}: replica reports carry one database's position, so a write to another could not be confirmed as replicated. Track one database with durability, or turn durability off`, 'durability')
  }
  if (databases.main === undefined && durability.secrets.length > 0) {
    // Replica reports follow one database's TXID: the main one.
    throw new LitefsOptionsError('litefs-proxy: option "peerSecret" (replica reports) follows the main database: name it first in "db", e.g. ["app.db", "*"]', 'peerSecret')
  }
  return {
    db: databases.main,
    databases,
    mount: text(opts, 'mount', '/litefs', /^.+$/, 'a directory path'),
    api,
    role,
    state: state as NodeState | undefined,
    passthrough: patterns(opts, 'passthrough'),
    alwaysForward: patterns(opts, 'alwaysForward'),
    readTimeout: duration(opts, 'readTimeout', 5000, true),
    primaryRedirectTimeout: duration(opts, 'primaryRedirectTimeout', 5000, false),
    maxLag: duration(opts, 'maxLag', 10_000, false, false), // compared, never a timer
    healthPath: health,
    cookie: {
      name: text(opts, 'cookieName', 'litefs-txid', COOKIE_NAME, 'a cookie name (letters, digits and !#$%&\'*+-.^_`|~)'),
      maxAge: cookieMaxAge(opts), // the cookie's Max-Age, never a timer
      secrets
    },
    tokenHeader: tokenHeader(opts),
    peerCookies: peerCookies(opts.peerCookies),
    pollInterval: duration(opts, 'pollInterval', 1, true),
    forward: oneOf(opts, 'forward', ['http', 'fly-replay'], process.env.FLY_APP_NAME !== undefined && process.env.FLY_APP_NAME !== '' ? 'fly-replay' : 'http'),
    primaryOrigin: primaryOrigin(opts.primaryUrl),
    forwardTimeout: duration(opts, 'forwardTimeout', 30_000, true),
    forwardProtocol: opts.forwardProtocol === undefined ? undefined : oneOf<'http1' | 'http2'>(opts, 'forwardProtocol', ['http1', 'http2'], 'http1'),
    readTimeoutAction: oneOf<ReadTimeoutAction>(opts, 'readTimeoutAction', ['error', 'primary', 'stale'], 'error'),
    forwardBodyLimit: bytes(opts, 'forwardBodyLimit'),
    maxWaiting: count(opts, 'maxWaiting', 10_000),
    serverTiming: flag(opts, 'serverTiming'),
    consul: consulLease(opts.consul, api, state),
    durability
  }
}
