import { readFileSync, writeFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { parseDuration } from '../core/duration.js'
import type { Io } from './run.js'
import { litefsYml, type LitefsLease, type LitefsProxySection, type LitefsYml } from './litefs-yml.js'

// `litefs-proxy config`: one node's litefs.yml from flags or a small settings
// file, checked the way LiteFS v0.5.14 would read it (cmd/litefs/config.go,
// mount_linux.go) and for the mistakes people make with leases.

class UsageError extends Error {}

type Kind = 'string' | 'list' | 'duration' | 'bool' | 'candidate'
interface Flag { kind: Kind, arg?: string, help: string }

/** Every flag, in the order `--help` lists them. A settings file uses the same names without `--`. */
export const CONFIG_FLAGS: Record<string, Flag> = {
  node: { kind: 'string', arg: 'NAME', help: "this node's name: its lease hostname (default $LITEFS_NODE_ID)" },
  lease: { kind: 'string', arg: 'TYPE', help: 'static (default: one fixed primary) or consul (automatic failover)' },
  primary: { kind: 'string', arg: 'NAME', help: "static: the primary's name; the same on every node" },
  nodes: { kind: 'list', arg: 'A,B,C', help: "every node's name, to catch a typo in --node or --primary" },
  'advertise-url': { kind: 'string', arg: 'URL', help: "the lease holder's LiteFS API URL, {hostname} its name; default http://{hostname}:<http-addr's port>" },
  candidate: { kind: 'candidate', help: 'consul: may this node become primary (default true): --candidate false, or \'${A == "b"}\'' },
  promote: { kind: 'bool', help: 'consul: a candidate takes the lease from the primary once in sync' },
  'consul-url': { kind: 'string', arg: 'URL', help: "consul: Consul's URL, e.g. http://consul:8500 or '${FLY_CONSUL_URL}'" },
  'consul-key': { kind: 'string', arg: 'KEY', help: 'consul: the lease key, one per cluster, e.g. litefs/myapp' },
  'consul-ttl': { kind: 'duration', arg: 'DUR', help: "consul: the lease's TTL (Consul's minimum: 10s)" },
  'consul-lock-delay': { kind: 'duration', arg: 'DUR', help: 'consul: wait after a lost lease before another node takes it' },
  'fuse-dir': { kind: 'string', arg: 'DIR', help: 'the FUSE mount where the app opens its databases, default /litefs' },
  'data-dir': { kind: 'string', arg: 'DIR', help: "LiteFS's own files, default /var/lib/litefs" },
  'http-addr': { kind: 'string', arg: 'ADDR', help: "LiteFS's API, default :20202" },
  retention: { kind: 'duration', arg: 'DUR', help: 'how long LiteFS keeps transaction files (data.retention; LiteFS: 10m)' },
  exec: { kind: 'list', arg: 'CMD', help: 'a command LiteFS runs once the node is ready; repeatable (the last keeps running)' },
  'exit-on-error': { kind: 'bool', help: 'false keeps LiteFS up after a startup error, to look at it (LiteFS: true)' },
  'proxy-addr': { kind: 'string', arg: 'ADDR', help: "LiteFS's own proxy (proxy.addr), e.g. :8080. Leave proxy-* out with litefs-proxy" },
  'proxy-target': { kind: 'string', arg: 'HOST:PORT', help: 'proxy.target: the app, e.g. localhost:8000' },
  'proxy-db': { kind: 'string', arg: 'NAME', help: 'proxy.db: the database whose TXID is tracked' },
  'proxy-passthrough': { kind: 'list', arg: 'GLOB', help: 'proxy.passthrough; repeatable' },
  'proxy-always-forward': { kind: 'list', arg: 'GLOB', help: 'proxy.always-forward; repeatable' },
  'proxy-primary-redirect-timeout': { kind: 'duration', arg: 'DUR', help: 'proxy.primary-redirect-timeout (LiteFS: 5s)' },
  'proxy-max-lag': { kind: 'duration', arg: 'DUR', help: 'proxy.max-lag (LiteFS: 10s)' },
  settings: { kind: 'string', arg: 'FILE', help: 'read settings from a JSON or YAML file (flags win)' },
  out: { kind: 'string', arg: 'FILE', help: 'write the file there instead of stdout' },
  help: { kind: 'bool', help: 'this text' }
}

/** Names from the litefs-py guide's Django `LITEFS` dict, nested ones joined with a dot. */
const DJANGO: Record<string, string> = {
  MOUNT_PATH: 'fuse-dir',
  DATA_PATH: 'data-dir',
  DATABASE_NAME: 'database-name',
  LEADER_ELECTION: 'lease',
  RETENTION: 'retention',
  PROXY_ADDR: 'proxy-addr',
  'PROXY.ADDR': 'proxy-addr',
  'PROXY.TARGET': 'proxy-target',
  'PROXY.DB': 'proxy-db',
  'PROXY.PASSTHROUGH': 'proxy-passthrough',
  'PROXY.ALWAYS_FORWARD': 'proxy-always-forward',
  'PROXY.PRIMARY_REDIRECT_TIMEOUT': 'proxy-primary-redirect-timeout',
  'PROXY.MAX_LAG': 'proxy-max-lag'
}

const RAFT = 'LiteFS has no Raft lease (only static and consul): use consul for automatic failover, static for a fixed primary'

const flagList = Object.entries(CONFIG_FLAGS)
  .map(([name, f]) => `  --${name}${f.arg === undefined ? '' : ' ' + f.arg}`.padEnd(40) + f.help).join('\n')

export const CONFIG_USAGE = `Usage: litefs-proxy config [flags]

Write one node's litefs.yml (LiteFS 0.5) to stdout or --out FILE.

Examples (three nodes, node-1 the primary; run once per node):
  litefs-proxy config --node node-2 --primary node-1 --nodes node-1,node-2,node-3 \\
    --exec 'gunicorn app:app' --out litefs.yml
  litefs-proxy config --lease consul --node node-2 --consul-url http://consul:8500 --consul-key litefs/app
  litefs-proxy config --settings litefs.json --node node-2 --primary node-1

A static lease names the primary on every node: lease.hostname and lease.advertise-url are
the primary's, candidate is true on the primary only. A consul lease names each node itself.

Flags:
${flagList}

Settings file: the flags' names without --, nested ones as mappings (proxy: {addr: …}), or the
names of the litefs-py guide's LITEFS dict: MOUNT_PATH, DATA_PATH, DATABASE_NAME, LEADER_ELECTION,
PROXY_ADDR, RETENTION, PROXY: {ADDR, TARGET, DB, PASSTHROUGH, PRIMARY_REDIRECT_TIMEOUT}.
Durations are Go's (5s, 1m30s, 1h). LiteFS replaces \${VAR} with its environment when it reads
litefs.yml, so --node '\${POD_NAME}' gives every node the same file.
`

type Value = string | string[] | boolean
interface Given { value: Value, label: string }
type Settings = Map<string, Given>

// --- Reading flags and settings files -------------------------------------------

function parseArgs (argv: readonly string[]): Settings {
  const out: Settings = new Map()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg)
    if (m === null) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (flags look like --node node-1)`)
    const [, name, inline] = m
    const flag = CONFIG_FLAGS[name]
    if (flag === undefined) throw new UsageError(`unknown flag --${name} (litefs-proxy config --help lists them)`)
    const label = `--${name}`
    let value: string | boolean
    if (flag.kind === 'bool' || flag.kind === 'candidate') {
      // `config` takes no positional arguments, so `--promote false` is unambiguous.
      const next = argv[i + 1]
      const given = inline ?? (next === 'true' || next === 'false' || (flag.kind === 'candidate' && next?.startsWith('${')) ? argv[++i] : undefined)
      if (flag.kind === 'bool' && given !== undefined && given !== 'true' && given !== 'false') {
        throw new UsageError(`${label} takes true, false or no value; got ${JSON.stringify(given)}`)
      }
      value = given === undefined || given === 'true' ? true : given === 'false' ? false : given
    } else if (inline !== undefined) {
      value = inline
    } else {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError(`${label} needs a value`)
      value = argv[++i]
    }
    const before = out.get(name)
    if (flag.kind === 'list') {
      const items = name === 'nodes' ? (value as string).split(',').map(s => s.trim()) : [value as string]
      out.set(name, { value: [...(before?.value as string[] | undefined ?? []), ...items], label })
    } else if (before !== undefined) {
      throw new UsageError(`${label} is given twice`)
    } else {
      out.set(name, { value, label })
    }
  }
  return out
}

function flatten (obj: Record<string, unknown>, prefix: string, into: Array<[string, unknown]>): void {
  for (const [key, value] of Object.entries(obj)) {
    const path = prefix + key
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      flatten(value as Record<string, unknown>, path + '.', into)
    } else {
      into.push([path, value])
    }
  }
}

/** The setting a settings-file key names, or undefined for the ones to skip. Throws on unknown keys. */
function settingName (key: string, value: unknown, label: string): string | undefined {
  if (/^raft/i.test(key)) throw new UsageError(`${label}: ${RAFT}`)
  if (key === 'ENABLED') {
    if (value === true) return undefined
    throw new UsageError(`${label}: only ENABLED: true makes sense here (this writes LiteFS's config)`)
  }
  const django = DJANGO[key]
  if (django !== undefined) return django
  const name = key.replace(/\./g, '-')
  if (name !== 'settings' && name !== 'out' && name !== 'help' && CONFIG_FLAGS[name] !== undefined) return name
  throw new UsageError(`${label}: unknown key (litefs-proxy config --help lists the names)`)
}

function fileValue (name: string, value: unknown, label: string): Value {
  const kind = name === 'database-name' ? 'string' : CONFIG_FLAGS[name].kind
  if (kind === 'list') {
    if (typeof value === 'string') return name === 'nodes' ? value.split(',').map(s => s.trim()) : [value]
    if (Array.isArray(value) && value.every(v => typeof v === 'string')) return value as string[]
    throw new UsageError(`${label}: expected a list of strings, got ${JSON.stringify(value)}`)
  }
  if (kind === 'bool' || (kind === 'candidate' && typeof value === 'boolean')) {
    if (typeof value !== 'boolean') throw new UsageError(`${label}: expected true or false, got ${JSON.stringify(value)}`)
    return value
  }
  if (typeof value !== 'string') {
    const hint = kind === 'duration' ? ' such as "10s" (a Go duration, as a string)' : ''
    throw new UsageError(`${label}: expected a string${hint}, got ${JSON.stringify(value)}`)
  }
  return value
}

function readSettings (path: string): Settings {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--settings ${path}: ${(err as NodeJS.ErrnoException).code as string}`)
  }
  let doc: unknown
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new UsageError(`--settings ${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'} (${(err as Error).message.split('\n')[0]})`)
  }
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  if (!isMap(doc)) throw new UsageError(`--settings ${path}: expected a mapping of settings at the top`)
  // The Django settings dict itself, LITEFS = {...}, dumped whole.
  if (Object.keys(doc).length === 1 && isMap(doc.LITEFS)) doc = doc.LITEFS
  const pairs: Array<[string, unknown]> = []
  flatten(doc as Record<string, unknown>, '', pairs)
  const out: Settings = new Map()
  for (const [key, value] of pairs) {
    const label = `${path}: ${key}`
    const name = settingName(key, value, label)
    if (name === undefined) continue
    const v = fileValue(name, value, label)
    const before = out.get(name)
    if (before !== undefined && JSON.stringify(before.value) !== JSON.stringify(v)) {
      throw new UsageError(`${path}: ${before.label.slice(path.length + 2)} and ${key} disagree (${JSON.stringify(before.value)} and ${JSON.stringify(v)})`)
    }
    out.set(name, { value: v, label })
  }
  return out
}

// --- Checking values ------------------------------------------------------------

const REF = /\$\{(\w+)\}|\$(\w+)/g
const NAME = /^(?:[A-Za-z0-9._-]|\$\{\w+\}|\$\w+)+$/
const ONE_REF = /^(?:\$\{(\w+)\}|\$(\w+))$/
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))+$/
/** What LiteFS's ExpandEnv evaluates to true or false (cmd/litefs/config.go). */
const EXPRESSION = /^\$\{\s*\w+\s*(?:==|!=)\s*(?:"[^"]*"|'[^']*'|\w+)\s*\}$/

const hasRef = (s: string): boolean => s.search(REF) !== -1

function name (label: string, value: string): string {
  if (!NAME.test(value)) throw new UsageError(`${label}: ${JSON.stringify(value)} is not a node name (letters, digits, . _ - and \${VAR})`)
  return value
}

function duration (label: string, value: string): string {
  if (value !== '0' && !GO_DURATION.test(value)) {
    throw new UsageError(`${label}: expected a Go duration such as 5s, 1m30s or 1h (LiteFS reads it with time.ParseDuration), got ${JSON.stringify(value)}`)
  }
  return value
}

function url (label: string, value: string): string {
  // A whole URL from the environment (${FLY_CONSUL_URL}) can only be checked by LiteFS.
  if (value.startsWith('$')) return value
  let parsed: URL | undefined
  try { parsed = new URL(value.replace(REF, '1')) } catch {}
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new UsageError(`${label}: expected an http:// URL, got ${JSON.stringify(value)}`)
  }
  return value
}

/** `host:port` (host optional unless `needHost`); returns the port as written. */
function address (label: string, value: string, needHost: boolean): string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9._-]|\$\{\w+\}|\$\w+)*):(\d+|\$\{\w+\}|\$\w+)$/.exec(value)
  const port = m === null ? undefined : m[2]
  const bad = m === null || (needHost && m[1] === '') || (/^\d+$/.test(port as string) && (Number(port) < 1 || Number(port) > 65535))
  if (bad) throw new UsageError(`${label}: expected ${needHost ? 'host:port, e.g. localhost:8000' : 'an address such as :20202 or 127.0.0.1:20202'}, got ${JSON.stringify(value)}`)
  return port as string
}

function directory (label: string, value: string): string {
  if (!value.startsWith('/') && !value.startsWith('$')) throw new UsageError(`${label}: expected an absolute path, got ${JSON.stringify(value)}`)
  return value.length > 1 ? value.replace(/\/+$/, '') : value
}

/** Whether this node is a static lease's candidate: true, false, or a LiteFS expression. */
function staticCandidate (node: Given, primary: Given): boolean | string {
  const n = node.value as string
  const p = primary.value as string
  const ref = (g: Given, v: string): string | undefined => {
    if (!hasRef(v)) return undefined
    const m = ONE_REF.exec(v)
    if (m === null) throw new UsageError(`${g.label}: ${JSON.stringify(v)} mixes text and \${VAR}; with a static lease each node must tell whether it is the primary: use a name or one \${VAR}`)
    return m[1] ?? m[2]
  }
  const nRef = ref(node, n)
  const pRef = ref(primary, p)
  if (nRef === undefined && pRef === undefined) return n === p
  if (nRef !== undefined && pRef !== undefined) return `\${${nRef} == ${pRef}}`
  return nRef !== undefined ? `\${${nRef} == "${p}"}` : `\${${pRef as string} == "${n}"}`
}

interface Built { yml: LitefsYml, notes: string[] }

/** The document for the settings in `s`, after every check. Throws UsageError. */
function build (s: Settings, env: NodeJS.ProcessEnv): Built {
  const get = (k: string): Given | undefined => s.get(k)
  const str = (k: string): string | undefined => get(k)?.value as string | undefined
  const label = (k: string): string => get(k)?.label as string
  const notes: string[] = []

  const leaseType = str('lease') ?? 'static'
  if (leaseType === 'raft') throw new UsageError(`${label('lease')}: ${RAFT}`)
  if (leaseType !== 'static' && leaseType !== 'consul') {
    throw new UsageError(`${label('lease')}: expected static or consul, got ${JSON.stringify(leaseType)}`)
  }

  let node = get('node')
  if (node === undefined && env.LITEFS_NODE_ID !== undefined && env.LITEFS_NODE_ID !== '') node = { value: env.LITEFS_NODE_ID, label: 'LITEFS_NODE_ID' }
  if (node === undefined) throw new UsageError("--node is required: this node's name (its lease hostname), e.g. --node node-2")
  const nodeName = name(node.label, node.value as string)

  const nodes = get('nodes')
  if (nodes !== undefined) {
    const list = nodes.value as string[]
    for (const n of list) name(nodes.label, n)
    const dup = list.find((n, i) => list.indexOf(n) !== i)
    if (dup !== undefined) throw new UsageError(`${nodes.label}: ${dup} is listed twice`)
  }
  const inNodes = (g: Given): void => {
    const v = g.value as string
    if (nodes !== undefined && !hasRef(v) && !(nodes.value as string[]).includes(v)) {
      throw new UsageError(`${g.label}: ${v} is not one of ${nodes.label} (${(nodes.value as string[]).join(', ')})`)
    }
  }
  inNodes(node)

  // LiteFS's API.
  const httpAddr = str('http-addr') ?? ':20202'
  const httpPort = address(label('http-addr') ?? '--http-addr', httpAddr, false)
  const fuseDir = directory(label('fuse-dir'), str('fuse-dir') ?? '/litefs')
  const dataDir = directory(label('data-dir'), str('data-dir') ?? '/var/lib/litefs')
  if (fuseDir === dataDir) throw new UsageError(`the FUSE mount and the data directory must differ (both ${fuseDir}); LiteFS refuses that`)
  if (dataDir.startsWith(fuseDir + '/')) throw new UsageError(`the data directory ${dataDir} must not be inside the FUSE mount ${fuseDir}`)

  const template = str('advertise-url') ?? `http://{hostname}:${httpPort}`
  const placeholder = /\{(?!hostname\})[^}]*\}/.exec(template.replace(REF, ''))
  if (placeholder !== null) throw new UsageError(`${label('advertise-url')}: unknown placeholder ${placeholder[0]} (only {hostname})`)
  const advertise = (hostname: string): string => url(label('advertise-url') ?? '--advertise-url', template.replaceAll('{hostname}', hostname))

  let lease: LitefsLease
  if (leaseType === 'static') {
    for (const k of ['consul-url', 'consul-key', 'consul-ttl', 'consul-lock-delay']) {
      if (get(k) !== undefined) throw new UsageError(`${label(k)} is for a consul lease; this one is static (--lease consul for failover)`)
    }
    if (get('candidate') !== undefined) throw new UsageError(`${label('candidate')}: with a static lease the primary is the only candidate; name it with --primary`)
    if (get('promote') !== undefined) throw new UsageError(`${label('promote')}: a static lease has a fixed primary and nothing to promote; promote is for consul leases`)
    const primary = get('primary')
    if (primary === undefined) throw new UsageError(`a static lease needs --primary: the primary's name, the same on every node (or --lease consul for failover)`)
    name(primary.label, primary.value as string)
    inNodes(primary)
    lease = { type: 'static', hostname: primary.value as string, advertiseUrl: advertise(primary.value as string), candidate: staticCandidate(node, primary) }
  } else {
    if (get('primary') !== undefined) throw new UsageError(`${label('primary')}: with a consul lease the primary is whichever candidate holds the lease; leave it out (or --lease static)`)
    const consulUrl = str('consul-url')
    if (consulUrl === undefined) throw new UsageError("a consul lease needs --consul-url: Consul's URL, e.g. http://consul:8500")
    const key = str('consul-key')
    if (key === undefined || key === '') throw new UsageError('a consul lease needs --consul-key: the lease key, one per cluster, e.g. litefs/myapp')
    const candidateValue = get('candidate')?.value ?? true
    if (typeof candidateValue === 'string' && !EXPRESSION.test(candidateValue)) {
      throw new UsageError(`${label('candidate')}: expected true, false or a LiteFS expression such as \${FLY_REGION == PRIMARY_REGION}, got ${JSON.stringify(candidateValue)}`)
    }
    const consul: Extract<LitefsLease, { type: 'consul' }>['consul'] = { url: url(label('consul-url'), consulUrl), key }
    const ttl = str('consul-ttl')
    if (ttl !== undefined) {
      duration(label('consul-ttl'), ttl)
      if ((parseDuration(ttl) as number) < 10_000) throw new UsageError(`${label('consul-ttl')}: Consul refuses a TTL under 10s, got ${ttl}`)
      consul.ttl = ttl
    }
    const lockDelay = str('consul-lock-delay')
    if (lockDelay !== undefined) consul.lockDelay = duration(label('consul-lock-delay'), lockDelay)
    lease = { type: 'consul', hostname: nodeName, advertiseUrl: advertise(nodeName), candidate: candidateValue as boolean | string, consul }
    const promote = get('promote')?.value as boolean | undefined
    if (promote !== undefined) lease.promote = promote
  }

  const exec = (get('exec')?.value as string[] | undefined) ?? []
  for (const cmd of exec) if (cmd.trim() === '') throw new UsageError(`${label('exec')}: a command is empty`)

  // LiteFS's own proxy, only when asked for.
  let proxy: LitefsProxySection | undefined
  const proxyKeys = ['proxy-addr', 'proxy-target', 'proxy-db', 'proxy-passthrough', 'proxy-always-forward', 'proxy-primary-redirect-timeout', 'proxy-max-lag']
  const databaseName = get('database-name')
  if (databaseName !== undefined && get('proxy-db') !== undefined && databaseName.value !== str('proxy-db')) {
    throw new UsageError(`${databaseName.label} and ${label('proxy-db')} disagree (${JSON.stringify(databaseName.value)} and ${JSON.stringify(str('proxy-db'))})`)
  }
  if (proxyKeys.some(k => get(k) !== undefined)) {
    const need = (k: string, what: string): string => {
      const v = str(k) ?? (k === 'proxy-db' ? databaseName?.value as string | undefined : undefined)
      if (v === undefined || v === '') throw new UsageError(`a proxy: section needs --${k} (${what}); or leave every proxy setting out and let litefs-proxy do the job`)
      return v
    }
    const addr = need('proxy-addr', 'where LiteFS\'s proxy listens, e.g. :8080')
    const proxyPort = address(label('proxy-addr'), addr, false)
    if (proxyPort === httpPort) throw new UsageError(`${label('proxy-addr')}: port ${proxyPort} is LiteFS's API port too (http-addr ${httpAddr})`)
    const target = need('proxy-target', 'the app, e.g. localhost:8000')
    address(label('proxy-target'), target, true)
    proxy = { addr, target, db: need('proxy-db', 'the database file name, e.g. db.sqlite3') }
    for (const [k, field] of [['proxy-passthrough', 'passthrough'], ['proxy-always-forward', 'alwaysForward']] as const) {
      const list = get(k)?.value as string[] | undefined
      if (list === undefined) continue
      if (list.some(p => p === '')) throw new UsageError(`${label(k)}: a pattern is empty`)
      proxy[field] = list
    }
    for (const [k, field] of [['proxy-primary-redirect-timeout', 'primaryRedirectTimeout'], ['proxy-max-lag', 'maxLag']] as const) {
      const v = str(k)
      if (v !== undefined) proxy[field] = duration(label(k), v)
    }
  } else if (databaseName !== undefined) {
    notes.push(`note: ${databaseName.label} (${databaseName.value as string}) is only used by a proxy: section, and there is none; litefs-proxy takes it as --db / db`)
  }

  const retention = str('retention')
  const yml: LitefsYml = {
    node: nodeName,
    fuseDir,
    dataDir,
    httpAddr,
    lease,
    exec,
    usesEnv: false
  }
  if (retention !== undefined) yml.retention = duration(label('retention'), retention)
  const exitOnError = get('exit-on-error')?.value as boolean | undefined
  if (exitOnError !== undefined) yml.exitOnError = exitOnError
  if (proxy !== undefined) yml.proxy = proxy
  yml.usesEnv = hasRef(JSON.stringify(yml))
  return { yml, notes }
}

/** `litefs-proxy config`: write one node's litefs.yml. Returns 0, 2 (bad usage) or 1 (could not write --out). */
export function runConfig (argv: readonly string[], io: Io): number {
  if (argv.length === 0) { io.err(CONFIG_USAGE); return 2 }
  let text: string
  let out: string | undefined
  try {
    const flags = parseArgs(argv)
    if (flags.get('help')?.value === true) { io.out(CONFIG_USAGE); return 0 }
    const file = flags.get('settings')
    const settings = file === undefined ? new Map() : readSettings(file.value as string)
    for (const [k, v] of flags) settings.set(k, v)
    const { yml, notes } = build(settings, io.env)
    text = litefsYml(yml)
    for (const note of notes) io.err(`litefs-proxy config: ${note}\n`)
    out = settings.get('out')?.value as string | undefined
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(`litefs-proxy config: ${err.message}\n`)
    return 2
  }
  if (out === undefined) { io.out(text); return 0 }
  try {
    writeFileSync(out, text)
  } catch (err) {
    io.err(`litefs-proxy config: cannot write ${out}: ${(err as NodeJS.ErrnoException).code as string}\n`)
    return 1
  }
  return 0
}
