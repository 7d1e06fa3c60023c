import { MAX_TIMER_MS, MAX_TIMER_WORDS, parseDuration } from '../core/duration.js'
import { NoPrimaryUrl } from '../core/primary-url.js'
import { lineLogger, type LogFormat, type LogLevel } from './access-log.js'
import { inFlagTerms, type GivenFlag } from './flag-errors.js'
import type { SidecarOptions } from './sidecar.js'
import { readLitefsYml, UsageError, type FlagKind, type Raw, type YmlConsul } from './yml-read.js'

// `litefs-proxy serve`'s settings: LiteFS's `proxy:` section, the same names
// and defaults (LiteFS v0.5.14, cmd/litefs/config.go and http/proxy_server.go),
// as flags or read from an existing litefs.yml; then litefs-proxy's own.

export { UsageError }

interface Flag extends FlagKind { help: string }

/** Every flag, in the order `--help` lists them. `yaml`: its key in litefs.yml's `proxy:` section. */
export const FLAGS: Record<string, Flag> = {
  config: { kind: 'string', help: "an existing litefs.yml: its proxy: section, fuse.dir and http.addr (flags win)" },
  addr: { kind: 'string', yaml: 'addr', help: 'where to listen, e.g. :8080 (LiteFS proxy.addr)' },
  target: { kind: 'string', yaml: 'target', help: 'the app, e.g. localhost:8000 (proxy.target)' },
  db: { kind: 'string', yaml: 'db', help: "the database file name whose TXID is tracked (proxy.db); several: app.db,cache.db (the first is the main one); '*' for every database in the mount (app.db,* to name the main one)" },
  passthrough: { kind: 'list', yaml: 'passthrough', help: 'a path glob handed to the app untouched; repeatable (proxy.passthrough)' },
  'always-forward': { kind: 'list', yaml: 'always-forward', help: 'a path glob whose reads are writes; repeatable (proxy.always-forward)' },
  'primary-redirect-timeout': { kind: 'duration', yaml: 'primary-redirect-timeout', help: 'how long a write waits for a primary, default 5s' },
  'max-lag': { kind: 'duration', yaml: 'max-lag', help: 'health answers 503 above this lag, default 10s; 0 disables' },
  'read-timeout': { kind: 'duration', yaml: 'read-timeout', help: 'the HTTP server: whole request, default 0 (none); HTTP/1.1 only' },
  'read-header-timeout': { kind: 'duration', yaml: 'read-header-timeout', help: 'the HTTP server: request head, default 10s; HTTP/1.1 only' },
  'write-timeout': { kind: 'duration', yaml: 'write-timeout', help: 'the HTTP server: socket inactivity, default 0 (none)' },
  'idle-timeout': { kind: 'duration', yaml: 'idle-timeout', help: 'the HTTP server: idle keep-alive connection, default 30s (h2c: a session with no stream, default 0: none)' },
  debug: { kind: 'bool', yaml: 'debug', help: 'log every decision (as --log-level debug)' },
  mount: { kind: 'string', help: "LiteFS's FUSE mount, default fuse.dir or /litefs" },
  api: { kind: 'string', help: "LiteFS's API URL, default from http.addr or http://localhost:20202; 'false': the mount files alone" },
  role: { kind: 'string', help: "with --api false: primary or replica, this node's role when the mount cannot tell (no .primary file: the primary, or a replica cut off from it); without it such a node's role is unknown: health 503, writes 503 LITEFS_ROLE_UNKNOWN. Set --role primary on the primary" },
  'primary-url': { kind: 'string', help: "the primary's sidecar: a template over its lease hostname (default http://{hostname}:{port}), its URL (a static primary), or a map node-1=http://10.0.0.1:8080,node-2=…" },
  forward: { kind: 'string', help: 'http (stream writes to the primary, default) or fly-replay' },
  protocol: { kind: 'string', help: "what serve's own server speaks: http1 (HTTP/1.1, default) or h2c (HTTP/2 without TLS, prior knowledge only: behind a balancer sending h2c, such as Fly's h2_backend)" },
  'forward-protocol': { kind: 'string', help: "what writes forwarded to the primary's sidecar speak: http1 or h2c (HTTP/2; by ALPN for an https: --primary-url); default: what the request arrived in" },
  'target-protocol': { kind: 'string', help: 'what the app at --target speaks: http1 (HTTP/1.1, default) or h2c (HTTP/2 without TLS, prior knowledge: an app that speaks only that, such as a Go h2c server)' },
  'txid-timeout': { kind: 'duration', help: 'how long a read waits for the replica to catch up, default 5s (LiteFS: 5s)' },
  'txid-timeout-action': { kind: 'string', help: 'past it: error (504, default), primary (forward the read) or stale (serve it here, marked litefs-stale)' },
  'forward-timeout': { kind: 'duration', help: "how long the primary may take to answer a forwarded write's head, default 30s" },
  'forward-body-limit': { kind: 'bytes', help: 'largest body forwarded to the primary, in bytes; default: none' },
  'target-timeout': { kind: 'duration', help: 'how long the app may take to answer, default 0 (as long as it takes)' },
  'cookie-name': { kind: 'string', help: "the TXID cookie's name, default __txid (LiteFS's proxy's); the adapters' default is litefs-txid" },
  'cookie-max-age': { kind: 'duration', help: "the cookie's lifetime, default 5m" },
  'token-header': { kind: 'string', help: "the header a write's answer carries its token in and a read may send it back in, default litefs-txid; 'false': none" },
  'peer-cookie': { kind: 'list', help: "also accept this peer's cookie on reads: __txid (LiteFS's proxy) or txnum (litefs-js); repeatable; unsigned, so off by default" },
  secret: { kind: 'list', help: 'sign the cookie (HMAC; >= 16 chars; repeat to rotate: the first signs). Or LITEFS_PROXY_SECRET' },
  'token-path': { kind: 'string', help: "serve's own path for jobs outside HTTP: POST it after a write for the token, GET it with a token to wait until this node has it; default: none (off)" },
  'trust-proxy': { kind: 'bool', help: 'believe X-Forwarded-Proto/-Host/-For from the load balancer in front; set it behind one (else the app gets X-Forwarded-Proto: http)' },
  'health-path': { kind: 'string', help: "the health check's path, default /litefs/health; 'false': none" },
  'consul-url': { kind: 'string', help: "the Consul lease's URL (lease.consul.url): fence writes on it; default from a consul lease in --config; 'false': no fence" },
  'consul-key': { kind: 'string', help: 'the lease key (lease.consul.key)' },
  'consul-lock-delay': { kind: 'duration', help: 'the lease lock-delay (lease.consul.lock-delay), default 1s' },
  'peer-secret': { kind: 'list', help: "the secret every node's litefs-proxy shares (>= 16 chars; repeat to rotate): each node reports its position to the primary's. Or LITEFS_PROXY_PEER_SECRET" },
  'peer-name': { kind: 'string', help: "this node's name among its peers, default lease.hostname (--config) or the OS host name" },
  durability: { kind: 'bool', help: 'hold every write\'s answer until every connected candidate has it (needs --peer-secret)' },
  'durable-path': { kind: 'list', help: 'a path glob whose writes wait so (instead of all); repeatable' },
  'durability-timeout': { kind: 'duration', help: 'the longest a write\'s answer waits for its candidates, then 500 LITEFS_NOT_REPLICATED; default 5s' },
  'log-level': { kind: 'string', help: 'debug, info (default: a line per request), warn, error or silent' },
  'log-format': { kind: 'string', help: 'text (default) or json' },
  help: { kind: 'bool', help: 'this text' }
}

export const SERVE_USAGE = `Usage: litefs-proxy serve [flags]

Read-your-writes in front of any app on LiteFS, in place of LiteFS's own proxy
(its proxy: section): reads held until the replica has the client's last write,
writes on replicas streamed to the primary on any platform, a TXID cookie.

Example (LiteFS without a proxy: section, the app on :8000):
  litefs-proxy serve --addr :8080 --target localhost:8000 --db db.sqlite3 \\
    --passthrough '/static/*' --primary-url 'http://{hostname}:8080'
  litefs-proxy serve --config /etc/litefs.yml      # its proxy: section, fuse.dir, http.addr

Durations take a unit: 5s, 500ms, 1m30s (as LiteFS's); a bare number is
milliseconds (--txid-timeout 5 is 5 ms, not 5 s).

Flags (LiteFS's proxy settings first, with its names and defaults):
${Object.entries(FLAGS).map(([name, f]) => `  --${name}${f.kind === 'bool' ? '' : ' <value>'}`.padEnd(37) + ' ' + f.help).join('\n')}
`


/** LiteFS's own config keys written as flags (walk 6: `--fuse-dir`): the flag that says it here. */
const LITEFS_KEYS: Record<string, string> = {
  'fuse-dir': "--mount (LiteFS's fuse.dir)",
  'http-addr': "--api, its URL (LiteFS's http.addr)",
  'proxy-addr': "--addr (LiteFS's proxy.addr)",
  'proxy-target': "--target (LiteFS's proxy.target)",
  'proxy-db': "--db (LiteFS's proxy.db)"
}

/** Flags as given: `--name value`, `--name=value`, booleans bare. Throws UsageError. */
export function parseFlags (argv: readonly string[]): Raw {
  const raw: Raw = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg)
    if (m === null) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (flags look like --addr :8080)`)
    const [, name, inline] = m
    const flag = FLAGS[name]
    if (flag === undefined) throw new UsageError(`unknown flag --${name}${LITEFS_KEYS[name] === undefined ? ' (litefs-proxy serve --help lists them)' : `: here that is ${LITEFS_KEYS[name]}`}`)
    let value: string | boolean
    if (flag.kind === 'bool') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') throw new UsageError(`--${name} takes no value (or =true/=false), got ${JSON.stringify(inline)}`)
      value = inline !== 'false'
    } else if (inline !== undefined) {
      value = inline
    } else {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError(`--${name} needs a value`)
      value = argv[++i]
    }
    if (flag.kind === 'list') raw[name] = [...(raw[name] as string[] | undefined ?? []), value as string]
    else if (raw[name] !== undefined) throw new UsageError(`--${name} is given twice`)
    else raw[name] = value
  }
  return raw
}

/** `--primary-url`: a template (with {hostname}), a plain URL (a static primary), or `host=url,host=url` for hosts that do not resolve. */
function primaryUrl (value: string | undefined): string | ((hostname: string) => string) | undefined {
  if (value === undefined) return value
  if (value.includes('{hostname}') || !/^\s*[^=\s/:]+=/.test(value)) {
    if (!/^https?:\/\//.test(value) || !URL.canParse(value.replaceAll('{hostname}', 'node-a').replaceAll('{port}', '8080'))) {
      throw new UsageError(`--primary-url: expected a URL, a template with {hostname}, or host=url pairs separated by commas, got ${JSON.stringify(value)}`)
    }
    return value
  }
  const map = new Map<string, string>()
  for (const pair of value.split(',')) {
    const m = /^\s*([^=\s]+)=(\S+)\s*$/.exec(pair)
    if (m === null || !/^https?:\/\//i.test(m[2]) || !URL.canParse(m[2])) throw new UsageError(`--primary-url: expected a URL, a template with {hostname}, or host=url pairs separated by commas, got ${JSON.stringify(value)}`)
    // Two URLs for one node: which one is meant cannot be known.
    if (map.has(m[1])) throw new UsageError(`--primary-url: "${m[1]}" is mapped twice (${map.get(m[1]) as string} and ${m[2]}); give each node one URL`)
    map.set(m[1], m[2])
  }
  return hostname => {
    const url = map.get(hostname)
    if (url === undefined) throw new NoPrimaryUrl(`--primary-url has no URL for the primary "${hostname}"`)
    return url
  }
}

/** Flags whose duration is compared or sent, never a timer: no cap. */
const NOT_TIMERS = new Set(['max-lag', 'cookie-max-age'])

/** `source`: where a value not on the command line came from (`proxy.max-lag in --config`), said with the flag. */
function duration (name: string, value: string, source?: string): number {
  const ms = parseDuration(value)
  name = source === undefined ? name : `${name} (${source})`
  if (ms === undefined) throw new UsageError(`--${name}: expected a duration such as 10s, 500ms or 1m30s, got ${JSON.stringify(value)}`)
  if (ms > MAX_TIMER_MS && !NOT_TIMERS.has(name.split(' ')[0])) throw new UsageError(`--${name}: expected a duration ${MAX_TIMER_WORDS}, got ${JSON.stringify(value)}`)
  return ms
}

function oneOf<const T extends string> (name: string, value: string, values: readonly T[]): T {
  if (!values.includes(value as T)) throw new UsageError(`--${name}: expected ${values.join(' or ')}, got ${JSON.stringify(value)}`)
  return value as T
}

/** `--db`: one name (LiteFS's proxy.db), or several comma-separated: the core checks each. */
function databases (value: string): string | string[] {
  return value.includes(',') ? value.split(',').map(n => n.trim()) : value
}

/**
 * The sidecar's options from `argv` (after `serve`), a litefs.yml if `--config`
 * names one, and the environment. Throws UsageError (one line) on anything wrong;
 * returns undefined for `--help`.
 */
export function serveOptions (argv: readonly string[], env: NodeJS.ProcessEnv, write: (line: string) => void): SidecarOptions | undefined {
  return serveSettings(argv, env, write)?.options
}

/**
 * serveOptions(), and each flag's value as given (and where from), for saying
 * a bad option in flag terms (flag-errors.ts).
 */
export function serveSettings (argv: readonly string[], env: NodeJS.ProcessEnv, write: (line: string) => void): { options: SidecarOptions, given: Record<string, GivenFlag>, format: LogFormat } | undefined {
  const flags = parseFlags(argv)
  if (flags.help === true) return undefined
  const file = typeof flags.config === 'string' ? readLitefsYml(flags.config, env, FLAGS) : { proxy: {} as Raw }
  const raw: Raw = { ...file.proxy, ...flags }
  const given: Record<string, GivenFlag> = {}
  for (const [name, value] of Object.entries(file.proxy)) given[name] = { value: value as string | string[] | boolean, source: `proxy.${FLAGS[name].yaml as string} in --config` }
  for (const [name, value] of Object.entries(flags)) given[name] = { value: value as string | string[] | boolean }
  const str = (name: string): string | undefined => raw[name] as string | undefined
  for (const name of ['addr', 'target', 'db']) {
    if (str(name) === undefined) throw new UsageError(`--${name} is required (or proxy.${name} in the --config file)`)
  }
  const level: LogLevel = raw.debug === true ? 'debug' : oneOf('log-level', str('log-level') ?? 'info', ['debug', 'info', 'warn', 'error', 'silent'])
  const format: LogFormat = oneOf('log-format', str('log-format') ?? 'text', ['text', 'json'])
  const options: SidecarOptions = {
    addr: str('addr') as string,
    target: str('target') as string,
    db: databases(str('db') as string),
    // Its warnings name flags, as its errors do (flag-errors.ts).
    logger: { ...lineLogger(level, format, write), words: inFlagTerms }
  }
  const set = <K extends keyof SidecarOptions>(key: K, value: SidecarOptions[K] | undefined): void => {
    if (value !== undefined) options[key] = value
  }
  const dur = (name: string): number | undefined => str(name) === undefined ? undefined : duration(name, str(name) as string, given[name].source)
  set('passthrough', raw.passthrough as string[] | undefined)
  set('alwaysForward', raw['always-forward'] as string[] | undefined)
  set('primaryRedirectTimeout', dur('primary-redirect-timeout'))
  set('maxLag', dur('max-lag'))
  const server: NonNullable<SidecarOptions['server']> = {}
  for (const [flag, key] of [['read-timeout', 'readTimeout'], ['read-header-timeout', 'readHeaderTimeout'], ['write-timeout', 'writeTimeout'], ['idle-timeout', 'idleTimeout']] as const) {
    const ms = dur(flag)
    if (ms !== undefined) server[key] = ms
  }
  options.server = server
  set('mount', str('mount') ?? file.mount)
  if (str('mount') === undefined && file.mount !== undefined) given.mount = { value: file.mount, source: 'fuse.dir in --config' }
  const api = str('api') ?? file.api
  if (str('api') === undefined && file.api !== undefined) given.api = { value: file.api, source: 'http.addr in --config' }
  set('api', api === 'false' ? false : api)
  set('role', str('role') === undefined ? undefined : oneOf('role', str('role') as string, ['primary', 'replica']))
  set('primaryUrl', primaryUrl(str('primary-url')))
  if (str('forward') !== undefined) options.forward = oneOf('forward', str('forward') as string, ['http', 'fly-replay'])
  serverProtocol(raw, given, options)
  // How long a read waits for its TXID is the core's readTimeout; --read-timeout is LiteFS's server setting.
  set('readTimeout', dur('txid-timeout'))
  if (str('txid-timeout-action') !== undefined) options.readTimeoutAction = oneOf('txid-timeout-action', str('txid-timeout-action') as string, ['error', 'primary', 'stale'])
  set('forwardTimeout', dur('forward-timeout'))
  if (str('forward-body-limit') !== undefined) {
    const n = Number(str('forward-body-limit'))
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--forward-body-limit: expected a number of bytes, got ${JSON.stringify(str('forward-body-limit'))}`)
    options.forwardBodyLimit = n
  }
  set('targetTimeout', dur('target-timeout'))
  set('cookieName', str('cookie-name'))
  set('cookieMaxAge', dur('cookie-max-age'))
  set('peerCookies', raw['peer-cookie'] as SidecarOptions['peerCookies'])
  const tokenHeader = str('token-header')
  set('tokenHeader', tokenHeader === 'false' ? false : tokenHeader)
  const secrets = (raw.secret as string[] | undefined) ?? (env.LITEFS_PROXY_SECRET === undefined ? undefined : env.LITEFS_PROXY_SECRET.split(','))
  if (raw.secret === undefined && secrets !== undefined) given.secret = { value: secrets, source: 'LITEFS_PROXY_SECRET' }
  set('secret', secrets)
  set('tokenPath', str('token-path'))
  set('trustProxy', raw['trust-proxy'] as boolean | undefined)
  const health = str('health-path')
  set('healthPath', health === 'false' ? false : health)
  const peerSecrets = (raw['peer-secret'] as string[] | undefined) ?? env.LITEFS_PROXY_PEER_SECRET?.split(',')
  if (raw['peer-secret'] === undefined && peerSecrets !== undefined) given['peer-secret'] = { value: peerSecrets, source: 'LITEFS_PROXY_PEER_SECRET' }
  set('peerSecret', peerSecrets)
  set('peerName', str('peer-name'))
  const durable = raw['durable-path'] as string[] | undefined
  set('durability', durable ?? raw.durability as boolean | undefined)
  set('durabilityTimeout', dur('durability-timeout'))
  const yml = (file as { consul?: YmlConsul }).consul
  for (const [flag, key, value] of [['consul-url', 'url', yml?.url], ['consul-key', 'key', yml?.key], ['consul-lock-delay', 'lock-delay', yml?.lockDelay]] as const) {
    if (given[flag] === undefined && value !== undefined) given[flag] = { value, source: `lease.consul.${key} in --config` }
  }
  set('consul', consulLease(str('consul-url'), str('consul-key'), str('consul-lock-delay'), yml))
  return { options, given, format }
}

/**
 * `--protocol`, `--forward-protocol`, `--target-protocol`. HTTP/1.1's server
 * limits have no HTTP/2 counterpart in Node: given with --protocol h2c they are
 * refused rather than silently dropped.
 */
function serverProtocol (raw: Raw, given: Readonly<Record<string, GivenFlag>>, options: SidecarOptions): void {
  const protocols = ['http1', 'h2c'] as const
  const value = (name: string): string | undefined => raw[name] as string | undefined
  if (value('protocol') !== undefined) options.protocol = oneOf('protocol', value('protocol') as string, protocols)
  if (value('target-protocol') !== undefined) options.targetProtocol = oneOf('target-protocol', value('target-protocol') as string, protocols)
  if (value('forward-protocol') !== undefined) options.forwardProtocol = oneOf('forward-protocol', value('forward-protocol') as string, protocols) === 'h2c' ? 'http2' : 'http1'
  if (options.protocol !== 'h2c') return
  for (const flag of ['read-timeout', 'read-header-timeout']) {
    const from = given[flag]
    if (from === undefined) continue
    throw new UsageError(`--${flag}${from.source === undefined ? '' : ` (${from.source})`}: an HTTP/1.1 server limit, which --protocol h2c has no counterpart for (HTTP/2 streams have no such deadline in Node); drop it, or use --write-timeout (socket inactivity) and --idle-timeout`)
  }
}

/** The fence's Consul lease: flags over a consul lease in --config; `--consul-url false` turns it off. */
function consulLease (url: string | undefined, key: string | undefined, lockDelay: string | undefined, yml: YmlConsul | undefined): SidecarOptions['consul'] {
  if (url === 'false') return undefined
  const u = url ?? yml?.url
  const k = key ?? yml?.key
  if (u === undefined && k === undefined && yml === undefined) return undefined
  if (u === undefined || k === undefined) throw new UsageError(`a Consul lease needs both --consul-url and --consul-key (or lease.consul.url and .key in --config), got only ${u === undefined ? 'the key' : 'the URL'}`)
  const delay = lockDelay ?? yml?.lockDelay
  // The hostname from litefs.yml (lease.hostname) is this node's; without it LiteFS's /info tells.
  return { url: u, key: k, ...(delay === undefined ? {} : { lockDelay: duration('consul-lock-delay', delay, lockDelay === undefined ? 'lease.consul.lock-delay in --config' : undefined) }), ...(yml?.hostname === undefined || yml.hostname === '' ? {} : { hostname: yml.hostname }) }
}
