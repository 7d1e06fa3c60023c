import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'

// What `litefs-proxy config` is told: its flags (and --help), and the small
// JSON/YAML settings file that may stand for them (the Django guide's names
// accepted too), read into one map of settings with where each came from.
// Checking them and writing litefs.yml is config.ts's.

/** A bad flag or setting: one line for the user, exit code 2. */
export class UsageError extends Error {}

type Kind = 'string' | 'list' | 'duration' | 'bool' | 'candidate'
interface Flag { kind: Kind, arg?: string, help: string }

/** Every flag, in the order `--help` lists them. A settings file uses the same names without `--`. */
export const CONFIG_FLAGS: Record<string, Flag> = {
  node: { kind: 'string', arg: 'NAME', help: "this node's name: its lease hostname (default $LITEFS_NODE_ID)" },
  lease: { kind: 'string', arg: 'TYPE', help: 'static (default: one fixed primary) or consul (automatic failover)' },
  primary: { kind: 'string', arg: 'NAME', help: "static: the primary's name; the same on every node" },
  nodes: { kind: 'list', arg: 'A,B,C', help: "every node's name, to catch a typo in --node or --primary" },
  'advertise-url': { kind: 'string', arg: 'URL', help: "static: the primary's LiteFS API URL (consul: this node's), {hostname} its name; default http://{hostname}:<http-addr's port> (consul: http://<http-addr> when it names a host)" },
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

export const RAFT = 'LiteFS has no Raft lease (only static and consul): use consul for automatic failover, static for a fixed primary'

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

export type Value = string | string[] | boolean
export interface Given { value: Value, label: string }
export type Settings = Map<string, Given>

// --- Reading flags and settings files -------------------------------------------

export function parseArgs (argv: readonly string[]): Settings {
  const out: Settings = new Map()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg)
    if (m === null) {
      // A word after a flag that takes true/false (or nothing): `--candidate no`.
      const before = /^--([a-z-]+)$/.exec(argv[i - 1] ?? '')?.[1]
      const kind = before === undefined ? undefined : CONFIG_FLAGS[before]?.kind
      if (kind === 'bool' || kind === 'candidate') throw new UsageError(`--${before} takes true, false${kind === 'candidate' ? ', a LiteFS expression such as \${FLY_REGION == PRIMARY_REGION}' : ''} or no value; got ${JSON.stringify(arg)}`)
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (flags look like --node node-1)`)
    }
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

export function readSettings (path: string): Settings {
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
