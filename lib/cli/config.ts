import { writeFileSync } from 'node:fs'
import { parseDuration } from '../core/duration.js'
import { CONFIG_USAGE, RAFT, UsageError, parseArgs, readSettings, type Given, type Settings } from './config-input.js'
import type { Io } from './io.js'
import { litefsYml, type LitefsLease, type LitefsProxySection, type LitefsYml } from './litefs-yml.js'

// `litefs-proxy config`: one node's litefs.yml from flags or a small settings
// file (config-input.ts), checked the way LiteFS v0.5.14 would read it
// (cmd/litefs/config.go, mount_linux.go) and for the mistakes people make with leases.

export { CONFIG_FLAGS, CONFIG_USAGE } from './config-input.js'

// --- Checking values ------------------------------------------------------------

const REF = /\$\{(\w+)\}|\$(\w+)/g
const NAME = /^(?:[A-Za-z0-9._-]|\$\{\w+\}|\$\w+)+$/
const ONE_REF = /^(?:\$\{(\w+)\}|\$(\w+))$/
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))+$/
/** What LiteFS's ExpandEnv evaluates to true or false (cmd/litefs/config.go). */
const EXPRESSION = /^\$\{\s*\w+\s*(?:==|!=)\s*(?:"[^"]*"|'[^']*'|\w+)\s*\}$/

const hasRef = (s: string): boolean => s.search(REF) !== -1
/** An http-addr that listens on loopback only: every node of such a cluster runs on this host. */
const LOOPBACK = /^(?:127\.[\d.]+|localhost|\[::1\]):/

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
    const candidate = staticCandidate(node, primary)
    if (candidate !== true && get('advertise-url') === undefined && LOOPBACK.test(httpAddr)) {
      // Nodes on one host each have an API port of their own: the guess below
      // (the primary's name, this node's port) cannot be the primary's API.
      throw new UsageError(`${label('http-addr')} ${httpAddr} is a loopback address, so the nodes share this host and the primary's LiteFS API has a port of its own: give its URL with --advertise-url (e.g. http://127.0.0.1:20202), the same on every node`)
    }
    // The primary on a shared host (walk 6): its own API, as the replicas are told to give it.
    const own = candidate === true && get('advertise-url') === undefined && LOOPBACK.test(httpAddr) ? `http://${httpAddr}` : undefined
    lease = { type: 'static', hostname: primary.value as string, advertiseUrl: own ?? advertise(primary.value as string), candidate }
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
    // Each node advertises its own API. An --http-addr that names its host (127.0.0.1:20203
    // for nodes sharing one host, 10.0.0.2:20202) is where the others reach it; by name
    // only when it listens on every interface (:20202, 0.0.0.0:20202).
    const host = httpAddr.slice(0, httpAddr.lastIndexOf(':')) // address() checked the shape: host:port
    const own = get('advertise-url') === undefined && !['', '0.0.0.0', '[::]'].includes(host) ? `http://${host}:${httpPort}` : advertise(nodeName)
    lease = { type: 'consul', hostname: nodeName, advertiseUrl: own, candidate: candidateValue as boolean | string, consul }
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
