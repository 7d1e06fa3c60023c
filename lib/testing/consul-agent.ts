/**
 * One Consul agent per test cluster, serving the LiteFS nodes' lease:
 * `consul agent -dev` (a single in-memory server: a fresh state on every start,
 * nothing on disk), bound to one address — 127.0.0.1 with free ports, or Consul's
 * address in the cluster's network namespace (`netns.ts`) with the usual ones —
 * and stopped at the cluster's close (the safety net kills it if the test dies).
 *
 * Also the lease as Consul sees it (`leaseHolder`): the session that holds the
 * key and the node name LiteFS wrote into the key's value. Finding the binary
 * is `findConsul()`: `scripts/install-consul.sh` builds and caches it.
 * LiteFS's own config for the lease is `consul-cluster.ts`'s business.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { request, type Dispatcher } from 'undici'
import { isExecutable, whichSync } from './litefs-binary.js'
import { eachLine } from './lines.js'
import { trackKill, untrackKill } from './safety-net.js'
import { freePorts, sleep, withTimeout } from './wait.js'

/** The Consul line the fixtures were measured with, and the one install-consul.sh builds. */
export const CONSUL_VERSION = 'v1.14.11'
const LOG_LINES = 200

/**
 * The consul binary, or undefined: env `CONSUL_BIN` (as given, so a wrong setting
 * fails loudly), then install-consul.sh's cache
 * (`${LITEFS_PROXY_CACHE:-/var/cache/litefs-proxy}/consul-v1.14.11/consul`), then PATH.
 */
export function findConsul (): string | undefined {
  if (process.env.CONSUL_BIN) return process.env.CONSUL_BIN
  const cache = process.env.LITEFS_PROXY_CACHE || '/var/cache/litefs-proxy'
  const cached = join(cache, `consul-${CONSUL_VERSION}`, 'consul')
  if (isExecutable(cached)) return cached
  return whichSync('consul')
}

export interface ConsulAgent {
  /** `http://<ip>:<port>`: Consul's HTTP API, as the LiteFS nodes reach it. */
  readonly url: string
  readonly ip: string
  readonly pid: number | undefined
  /** Consul's last 200 output lines. */
  logs (): string[]
  /** SIGTERM, then SIGKILL after 5 s. Idempotent. */
  stop (): Promise<void>
}

export interface ConsulAgentOptions {
  binary: string
  /** The address to bind (server, serf) and to serve the HTTP API on. */
  ip: string
  /** Command prefix to run in a namespace (`nsenter --net=…`); none on loopback. */
  wrap?: string[]
  /** How the test process reaches `ip` (the netns gateway); default: directly. */
  dispatcher?: Dispatcher
  /** Use fixed default ports (a namespace of its own) instead of free loopback ports. */
  defaultPorts?: boolean
  readyTimeout: number
  log?: (line: string) => void
}

export async function startConsulAgent (o: ConsulAgentOptions): Promise<ConsulAgent> {
  const [http, serfLan, server] = o.defaultPorts === true ? [8500, 8301, 8300] : await freePorts(3)
  const args = ['agent', '-dev', '-bind', o.ip, '-client', o.ip, '-http-port', String(http), '-serf-lan-port', String(serfLan),
    '-server-port', String(server), '-serf-wan-port', '-1', '-dns-port', '-1', '-grpc-port', '-1', '-grpc-tls-port', '-1', '-log-level', 'warn']
  const [cmd, ...rest] = [...(o.wrap ?? []), o.binary, ...args]
  const ring: string[] = []
  const note = (line: string): void => {
    ring.push(line)
    if (ring.length > LOG_LINES) ring.shift()
    o.log?.(line)
  }
  const child: ChildProcess = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
  const kill = (): void => { try { child.kill('SIGKILL') } catch {} }
  trackKill(kill)
  let exitStatus: string | undefined
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => { exitStatus = `could not be started (${o.binary}): ${err.message}`; resolve() })
    child.once('exit', (code, signal) => { exitStatus = signal ? `exited by ${signal}` : `exited with code ${code}`; resolve() })
  })
  for (const stream of [child.stdout, child.stderr]) eachLine(stream, note)
  const url = `http://${o.ip}:${http}`
  const stop = async (): Promise<void> => {
    if (exitStatus === undefined) {
      try { child.kill('SIGTERM') } catch {}
      await withTimeout(exited, 5_000, 'consul exit').catch(async () => { kill(); await exited })
    }
    untrackKill(kill)
  }
  const fail = async (why: string): Promise<never> => {
    await stop()
    throw new Error(`consul-agent: ${why}\n--- last Consul log lines ---\n${ring.slice(-25).map((l) => '  ' + l).join('\n')}`)
  }

  // Ready once it has elected itself leader: sessions and locks work from then on.
  const deadline = Date.now() + o.readyTimeout
  for (;;) {
    if (exitStatus !== undefined) return await fail(`Consul ${exitStatus} before it was ready`)
    if (Date.now() > deadline) return await fail(`not ready within ${o.readyTimeout} ms (GET ${url}/v1/status/leader)`)
    try {
      const res = await request(`${url}/v1/status/leader`, { dispatcher: o.dispatcher, headersTimeout: 1_000, bodyTimeout: 1_000 })
      const body = await res.body.text()
      if (res.statusCode === 200 && /"[^"]+"/.test(body)) break
    } catch {}
    await sleep(50)
  }
  return { url, ip: o.ip, get pid () { return child.pid }, logs: () => [...ring], stop }
}

/** Who holds the lease in Consul right now. */
export interface LeaseHolder {
  /** The Consul session holding the key, or undefined when the lease is free. */
  session: string | undefined
  /** The lease hostname of the holder (from the session's name or the key's value), when known. */
  hostname: string | undefined
  /** Consul's `X-Consul-Index` of the answer. */
  index: number
}

/**
 * Reads `/v1/kv/<key>` and, if a session holds it, `/v1/session/info/<session>`.
 * LiteFS v0.5 stores the holder's `{"hostname","advertise-url"}` as the key's value.
 */
export async function leaseHolder (consulUrl: string, key: string, dispatcher?: Dispatcher, timeoutMs = 2_000): Promise<LeaseHolder> {
  const opts = { dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }
  const res = await request(`${consulUrl}/v1/kv/${key}`, opts)
  const index = Number(res.headers['x-consul-index'] ?? 0)
  if (res.statusCode === 404) { await res.body.dump(); return { session: undefined, hostname: undefined, index } }
  if (res.statusCode !== 200) throw new Error(`GET /v1/kv/${key} answered ${res.statusCode}: ${await res.body.text()}`)
  const [entry] = await res.body.json() as Array<{ Session?: string, Value?: string | null }>
  const session = entry?.Session
  if (session === undefined || session === '') return { session: undefined, hostname: undefined, index }
  let hostname: string | undefined
  try {
    const value = JSON.parse(Buffer.from(entry.Value ?? '', 'base64').toString('utf8')) as { hostname?: string }
    hostname = value.hostname
  } catch {}
  // The session must still exist: a key whose session was just invalidated is released.
  const info = await request(`${consulUrl}/v1/session/info/${session}`, opts)
  const sessions = info.statusCode === 200 ? await info.body.json() as unknown[] : (await info.body.dump(), [])
  if (sessions === null || sessions.length === 0) return { session: undefined, hostname: undefined, index }
  return { session, hostname, index }
}
