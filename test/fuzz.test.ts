// Hostile input (issue 14): seeded, repeatable fuzzing through real sockets.
// Each adapter (Fastify, Express, node:http) and the sidecar runs as a replica
// forwarding to a primary, each node on its own fake LiteFS; generated requests
// (malformed and repeated cookies, tampered signed cookies, huge TXIDs, odd
// methods and paths, conflicting framing, cut and stalled bodies, forged loop
// markers and X-Forwarded-*, HTTP/2 clients) go mostly to the replica. Whatever
// Node's parser lets through, litefs-proxy must never answer 500, never crash,
// never apply a write twice, never run a write on a replica, never alter a
// forwarded body, and hold nothing once the clients are gone.
//
// Replay: FUZZ_SEED=<seed printed by the run> (and FUZZ_ONLY=<n,n…> to send
// only those requests of each target; FUZZ_REQUESTS=<n> per target;
// FUZZ_VERBOSE=1 lists the requests that got no final answer).
import t, { type Test as TapTest } from 'tap'
import { Readable } from 'node:stream'
import { createHash, createHmac } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect as h2connect, createServer as createH2Server, constants as h2constants, type ClientHttp2Session, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import { connect as netConnect, type AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Agent, request } from 'undici'
import { FakeLitefs } from './helpers/fake-litefs.js'
import { serve, type AdapterName, type Ctx, type RouteDef } from './helpers/apps.js'
import { createSidecar, type Sidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { litefs as fastifyLitefs } from '../lib/fastify.js'
import { wrap } from '../lib/http.js'
import type { LitefsStats } from '../lib/core/observe.js'
import type { NodeState } from '../lib/core/node-state.js'

type Test = TapTest

// About 20 s alone; under `npm test`, beside the other files on a small machine, more than tap's default 30 s.
t.setTimeout(120_000)

// ---------------------------------------------------------------- the seed

function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function envNumber (name: string, fallback: number): number {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (decimal or 0x…), got ${JSON.stringify(text)}`)
  return n
}

const SEED = envNumber('FUZZ_SEED', 0x14f022) >>> 0
const ONLY = process.env.FUZZ_ONLY === undefined || process.env.FUZZ_ONLY === '' ? undefined : new Set(process.env.FUZZ_ONLY.split(',').map(Number))
/** Requests per target (HTTP/1.1): most on a plain pair, a quarter on a pair that signs its cookies. */
const PER_TARGET = envNumber('FUZZ_REQUESTS', 1000)
const SIGNED_SHARE = 0.25
const H2_REQUESTS = 300
const CONCURRENCY = 16
/** FUZZ_VERBOSE=1: list the requests that got no final answer (the client left, stalled, or the server cut it). */
const VERBOSE = process.env.FUZZ_VERBOSE === '1'

/** FNV-1a: a per-target stream from one seed, so each target replays on its own. */
function fnv (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

class Rand {
  constructor (private readonly next: () => number) {}
  int (n: number): number { return Math.floor(this.next() * n) }
  between (lo: number, hi: number): number { return lo + this.int(hi - lo + 1) }
  chance (p: number): boolean { return this.next() < p }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)] }
  weighted<T> (pairs: ReadonlyArray<readonly [number, T]>): T {
    let total = 0
    for (const [w] of pairs) total += w
    let x = this.next() * total
    for (const [w, v] of pairs) { if ((x -= w) < 0) return v }
    return pairs[pairs.length - 1][1]
  }

  hex (digits: number): string {
    let s = ''
    for (let i = 0; i < digits; i++) s += '0123456789abcdef'[this.int(16)]
    return s
  }

  bytes (n: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = 32 + this.int(95)
    return b
  }
}

// ---------------------------------------------------------------- the nodes

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])
const SECRET = 'fuzz-secret-0123456789abcdef'
const OLD_SECRET = 'fuzz-old-secret-0123456789'
const P_TXID = 10n // the primary's position at the start; every write applied moves it on
const R_TXID = 5n // the replica's; it replicates one transaction every few dozen requests
const REPLICA_OPTIONS = { readTimeout: 50, forwardTimeout: 200, primaryRedirectTimeout: 100 }
const quiet = { debug () {}, info () {}, warn () {}, error () {} }

/** What the apps saw: every id at most once on the primary, no write on a replica, bodies intact. */
class Recorder {
  /** Primary: id → times its app handler ran it. */
  readonly app = new Map<string, number>()
  /** Primary: id → times its HTTP server received it (before any routing). */
  readonly server = new Map<string, number>()
  /** Primary: id → body bytes its app got. */
  readonly bodies = new Map<string, number>()
  /** Writes the replica's own app ran (never, but for passthrough). */
  readonly replicaWrites: string[] = []

  static id (headers: IncomingMessage['headers']): string | undefined {
    const v = headers['x-fuzz-id']
    return Array.isArray(v) ? v.join(',') : v
  }

  seenByServer (req: IncomingMessage): void {
    const id = Recorder.id(req.headers)
    if (id !== undefined) this.server.set(id, (this.server.get(id) ?? 0) + 1)
  }

  seenByApp (side: 'primary' | 'replica', method: string, headers: IncomingMessage['headers'], body: Buffer, write: boolean): void {
    const id = Recorder.id(headers)
    if (side === 'replica') {
      if (write) this.replicaWrites.push(`${id ?? '(no id)'} ${method}`)
      return
    }
    if (id === undefined) return
    this.app.set(id, (this.app.get(id) ?? 0) + 1)
    this.bodies.set(id, body.length)
  }
}

interface Endpoint {
  url: string
  port: number
  state: NodeState
  stats: () => LitefsStats
  /** Requests this node's litefs-proxy is forwarding to the primary now (its undici pool's running and pending). */
  forwarding: () => number
}

/** One step of a pair's shutdown; the cores whose forwards may keep it from finishing. */
interface Closer { name: string, run: () => Promise<void>, cores: unknown[] }

interface Pair {
  name: string
  primary: Endpoint
  replica: Endpoint
  pfake: FakeLitefs
  rfake: FakeLitefs
  rec: Recorder
  /** Replica first, then primary, then the fake LiteFS nodes. */
  closers: Closer[]
}

const portOf = (url: string): number => Number(new URL(url).port)

/** The core's forwarding pools, one per protocol (private). */
function agentsOf (core: unknown): Agent[] {
  const { http1, http2 } = (core as { ctx: { agents: { http1: Agent, http2: Agent } } }).ctx.agents
  return [http1, http2]
}

/** What is still running in the core's forwarding pools. */
function forwardsOf (core: unknown): number {
  return agentsOf(core).flatMap(a => Object.values(a.stats)).reduce((n, s) => n + s.running + s.pending, 0)
}

function endpoint (url: string, state: NodeState, stats: () => LitefsStats, core: unknown): Endpoint {
  return { url, port: portOf(url), state, stats, forwarding: () => forwardsOf(core) }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * Close the pair, each step within 3 s. A core still forwarding would make its
 * close() wait for ever (undici's close() waits for running requests, and no
 * later destroy() settles it): that is reported, and its pool destroyed first,
 * so a stuck request costs assertions, not the whole file.
 */
async function shutDown (p: Pair, report: (msg: string) => void): Promise<void> {
  for (const c of p.closers.splice(0)) {
    let forced = false
    for (const core of c.cores) {
      const running = forwardsOf(core)
      if (running === 0) continue
      report(`${p.name}: ${c.name}'s close() would wait for ever: ${running} forwards to the primary still running`)
      for (const agent of agentsOf(core)) await agent.destroy()
      forced = true
    }
    // Once its pool is destroyed, a core's close() rejects ("The client is destroyed"): that one is ours.
    const done = c.run().then(() => true, (err: Error) => { if (!forced) report(`${p.name}: ${c.name}'s close() failed: ${err.message}`); return true })
    if (!await Promise.race([done, sleep(3000).then(() => false)])) report(`${p.name}: ${c.name} did not close within 3 s`)
  }
}

async function fakes (): Promise<{ pfake: FakeLitefs, rfake: FakeLitefs, closer: Closer }> {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: P_TXID })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: R_TXID })
  return { pfake, rfake, closer: { name: 'the fake LiteFS nodes', run: async () => { await rfake.close(); await pfake.close() }, cores: [] } }
}

/** Build a pair and make sure it is shut down, even when the test fails half way. */
async function withPair (t: Test, build: () => Promise<Pair>): Promise<Pair> {
  const p = await build()
  t.teardown(async () => { await shutDown(p, msg => console.error(msg)) })
  return p
}

/** The fuzz app's routes in serve(): every path, the methods each framework routes. */
function fuzzRoutes (side: 'primary' | 'replica', fake: FakeLitefs, rec: Recorder): RouteDef[] {
  const handler = (ctx: Ctx): { status: number, body: unknown } => {
    const write = ctx.litefs?.kind === 'write'
    rec.seenByApp(side, ctx.method, ctx.headers, ctx.body, write)
    if (side === 'primary' && !READS.has(ctx.method)) fake.advance(fake.txid + 1n, { event: false }) // the write commits
    return { status: READS.has(ctx.method) ? 200 : 201, body: { ok: true, bytes: ctx.body.length } }
  }
  return ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map(method => ({ method, path: '/*', handler }))
}

async function adapterPair (adapter: AdapterName, secrets: string[]): Promise<Pair> {
  const { pfake, rfake, closer } = await fakes()
  const rec = new Recorder()
  const signing = secrets.length === 0 ? {} : { secret: secrets }
  const primary = await serve(adapter, pfake, { ...signing }, { routes: fuzzRoutes('primary', pfake, rec) })
  primary.server.prependListener('request', (req: IncomingMessage) => rec.seenByServer(req))
  const replica = await serve(adapter, rfake, { ...REPLICA_OPTIONS, ...signing, primaryUrl: () => primary.url }, { routes: fuzzRoutes('replica', rfake, rec) })
  return {
    name: `${adapter}${secrets.length > 0 ? ' signed' : ''}`,
    pfake,
    rfake,
    rec,
    primary: endpoint(primary.url, primary.state, primary.stats, primary.core),
    replica: endpoint(replica.url, replica.state, replica.stats, replica.core),
    closers: [
      { name: 'the replica', run: replica.close, cores: [replica.core] },
      { name: 'the primary', run: primary.close, cores: [primary.core] },
      closer
    ]
  }
}

/** The app behind a sidecar: any method, any path; records what reached it; a write commits on its node. */
async function plainApp (side: 'primary' | 'replica', fake: FakeLitefs, rec: Recorder): Promise<{ port: number, closer: Closer }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('error', () => res.destroy())
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const method = req.method as string
      rec.seenByApp(side, method, req.headers, body, !READS.has(method))
      if (side === 'primary' && !READS.has(method)) fake.advance(fake.txid + 1n, { event: false })
      res.writeHead(READS.has(method) ? 200 : 201, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, bytes: body.length }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const close = async (): Promise<void> => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) }
  return { port: (server.address() as AddressInfo).port, closer: { name: `the ${side}'s app`, run: close, cores: [] } }
}

async function sidecarPair (secrets: string[]): Promise<Pair> {
  const { pfake, rfake, closer } = await fakes()
  const rec = new Recorder()
  const signing = secrets.length === 0 ? {} : { secret: secrets }
  const papp = await plainApp('primary', pfake, rec)
  const rapp = await plainApp('replica', rfake, rec)
  const start = async (fake: FakeLitefs, port: number, opts: Record<string, unknown>): Promise<Sidecar> => {
    const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, logger: lineLogger('silent', 'text', () => {}), ...signing, ...opts })
    await s.listen()
    return s
  }
  const primary = await start(pfake, papp.port, {})
  primary.server.prependListener('request', (req: IncomingMessage) => rec.seenByServer(req))
  const replica = await start(rfake, rapp.port, { ...REPLICA_OPTIONS, primaryUrl: () => primary.url })
  await waitFor(() => primary.core.state.role === 'primary' && replica.core.state.primaryHostname === 'node-a' && replica.core.state.litefs === 'up', 5000)
  const ends = (s: Sidecar): Endpoint => endpoint(s.url, s.core.state, () => s.core.stats(), s.core)
  return {
    name: `sidecar${secrets.length > 0 ? ' signed' : ''}`,
    pfake,
    rfake,
    rec,
    primary: ends(primary),
    replica: ends(replica),
    closers: [
      { name: 'the replica sidecar', run: replica.close, cores: [replica.core] },
      { name: 'the primary sidecar', run: primary.close, cores: [primary.core] },
      rapp.closer,
      papp.closer,
      closer
    ]
  }
}

/**
 * Node 20's HTTP/2 server (node:http2, nghttp2) leaves a stream open for ever
 * when its client resets it just after the server ended the response while the
 * request body was still open: nghttp2 has dropped the stream, the response's
 * last write never completes, and no 'close' comes. The session holding it then
 * never finishes a graceful close (a GOAWAY), so server.close() never returns.
 * Reproduced with a bare node:http2 server and with Fastify without this plugin
 * (issue-worthy upstream, not here). Such sessions — closing, every stream left
 * is ended and unknown to nghttp2 (state IDLE) — are destroyed at shutdown and
 * counted; a stream still really open (a forward running) is left alone, and
 * keeps failing the test.
 */
function trackH2Sessions (server: Http2Server): { destroyStuck: () => number } {
  const sessions = new Set<ServerHttp2Session>()
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  const NGHTTP2_STREAM_STATE_IDLE = 1
  const openStreams = (session: ServerHttp2Session): ServerHttp2Stream[] => {
    const key = Object.getOwnPropertySymbols(session).find(k => k.description === 'state')
    const state = key === undefined ? undefined : (session as unknown as Record<symbol, { streams?: Map<number, ServerHttp2Stream> }>)[key]
    return [...(state?.streams?.values() ?? [])]
  }
  return {
    destroyStuck: () => {
      let n = 0
      for (const session of sessions) {
        if (!session.closed || session.destroyed) continue
        const streams = openStreams(session)
        if (streams.length === 0 || !streams.every(st => st.writableEnded && st.state.state === NGHTTP2_STREAM_STATE_IDLE)) continue
        session.destroy()
        n++
      }
      return n
    }
  }
}

/** How many HTTP/2 sessions Node's stream-reset defect (above) left open, per pair name. */
const stuckH2 = new Map<string, number>()

/** Close an HTTP/2 server: `close` starts it; Node's stuck sessions are destroyed if it hangs. */
async function closeH2 (name: string, tracker: { destroyStuck: () => number }, close: () => Promise<void>): Promise<void> {
  const closed = close()
  if (await Promise.race([closed.then(() => true, () => true), sleep(500).then(() => false)])) return await closed
  stuckH2.set(name, (stuckH2.get(name) ?? 0) + tracker.destroyStuck())
  return await closed
}

/** A replica serving HTTP/2 (h2c), in front of an HTTP/1.1 primary of the same adapter (a mixed cluster: forwardProtocol says so). */
async function h2Pair (adapter: 'fastify' | 'http'): Promise<Pair> {
  const { pfake, rfake, closer } = await fakes()
  const rec = new Recorder()
  const primary = await serve(adapter, pfake, {}, { routes: fuzzRoutes('primary', pfake, rec) })
  primary.server.prependListener('request', (req: IncomingMessage) => rec.seenByServer(req))
  const options = { db: 'app.db', mount: rfake.mount, api: rfake.apiUrl, pollInterval: 1, ...REPLICA_OPTIONS, primaryUrl: () => primary.url, forwardProtocol: 'http1' as const }
  let replica: Endpoint
  let replicaCloser: Closer
  if (adapter === 'fastify') {
    const app = Fastify({ http2: true, forceCloseConnections: true })
    await app.register(fastifyLitefs, options)
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    app.all('/*', async (request, reply) => {
      rec.seenByApp('replica', request.method, request.headers, (request.body as Buffer | undefined) ?? Buffer.alloc(0), request.litefs?.kind === 'write')
      return await reply.send({ ok: true })
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const tracker = trackH2Sessions(app.server)
    replica = endpoint(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, app.litefs.state, () => app.litefs.stats(), app.litefs)
    replicaCloser = { name: 'the HTTP/2 replica', run: async () => { await closeH2('fastify (HTTP/2)', tracker, async () => { await app.close() }) }, cores: [app.litefs] }
  } else {
    const listener = wrap((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('error', () => res.destroy())
      req.on('end', () => {
        rec.seenByApp('replica', req.method as string, req.headers, Buffer.concat(chunks), req.litefs?.kind === 'write')
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
      })
    }, { ...options, logger: quiet })
    const server: Http2Server = createH2Server(listener as unknown as Parameters<typeof createH2Server>[0])
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const tracker = trackH2Sessions(server)
    replica = endpoint(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, listener.core.state, listener.stats, listener.core)
    replicaCloser = {
      name: 'the HTTP/2 replica',
      run: async () => {
        try { await listener.close() } finally { await closeH2('http (HTTP/2)', tracker, async () => { await new Promise(resolve => server.close(resolve)) }) }
      },
      cores: [listener.core]
    }
  }
  await waitFor(() => replica.state.litefs === 'up' && replica.state.primaryHostname === 'node-a', 5000)
  return {
    name: `${adapter} (HTTP/2)`,
    pfake,
    rfake,
    rec,
    primary: endpoint(primary.url, primary.state, primary.stats, primary.core),
    replica,
    closers: [replicaCloser, { name: 'the primary', run: primary.close, cores: [primary.core] }, closer]
  }
}

// ---------------------------------------------------------------- generated requests

type Body =
  | { kind: 'none' }
  | { kind: 'fixed', data: Buffer } // Content-Length
  | { kind: 'chunked', chunks: Buffer[], ext?: boolean, trailer?: boolean }
  | { kind: 'cut', declared: number, sent: number, chunked: boolean, afterMs: number } // the client goes away mid-body
  | { kind: 'stall', declared: number, sent: number, chunked: boolean } // the client stops sending
  | { kind: 'expect', data: Buffer, pauseMs: number } // Expect: 100-continue, the body a little later
  | { kind: 'framing', variant: string, data: Buffer } // conflicting or odd framing, raw bytes only
  | { kind: 'pipelined', data: Buffer } // a second request (a write) right behind the first

interface Spec {
  n: number
  id: string
  pair: 'plain' | 'signed'
  to: 'replica' | 'primary'
  via: 'undici' | 'raw'
  method: string
  target: string
  /** Host header (raw only): undefined → the server's own; null → none. */
  host?: string | null | string[]
  headers: Array<[string, string]>
  body: Body
  /** What this request tries, for the report. */
  notes: string[]
}

const hex16 = (n: bigint): string => n.toString(16).padStart(16, '0')
const sign = (secret: string, hex: string): string => createHmac('sha256', secret).update(hex).digest('base64url')

/** A TXID value for the cookie, sometimes well-formed. */
function txidValue (r: Rand, notes: string[]): string {
  const [label, value] = r.weighted<[string, () => string]>([
    [3, ['behind', () => hex16(BigInt(r.between(1, Number(R_TXID))))]],
    [3, ['ahead of the replica', () => hex16(R_TXID + BigInt(r.between(1, 8)))]],
    [2, ['far ahead', () => hex16(BigInt('0x' + r.hex(12)) + 1000n)]],
    [2, ['ffffffffffffffff', () => 'ffffffffffffffff']],
    [1, ['uppercase', () => hex16(BigInt(r.between(1, 12))).toUpperCase()]],
    [1, ['zero', () => '0000000000000000']],
    [1, ['2^63', () => '8000000000000000']],
    [1, ['empty', () => '']],
    [1, ['non-hex', () => r.pick(['zzzzzzzzzzzzzzzz', '000000000000000g', 'xyz', '-000000000000001', '0x00000000000000f', 'NaN', 'undefined'])]],
    [1, ['17 digits', () => '0' + hex16(BigInt(r.between(1, 12)))]],
    [1, ['15 digits', () => hex16(BigInt(r.between(1, 12))).slice(1)]],
    [1, ['8 KB', () => r.pick(['0', 'f', 'a']).repeat(8192)]],
    [1, ['spaced', () => ` ${hex16(7n)} `]],
    [1, ['quoted', () => `"${hex16(7n)}"`]],
    [1, ['percent-encoded', () => '%30'.repeat(15) + '%37']],
    [1, ['non-ASCII', () => 'ééééééééééééééé7']]
  ])
  notes.push(`txid ${label}`)
  return value()
}

/** A signed-cookie value: valid, or tampered in one of many ways. */
function signedValue (r: Rand, notes: string[]): string {
  const hex = r.chance(0.5) ? hex16(BigInt(r.between(1, 14))) : r.pick(['ffffffffffffffff', hex16(BigInt('0x' + r.hex(10)) + 100n)])
  const mac = sign(r.chance(0.8) ? SECRET : OLD_SECRET, hex)
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  const [label, value] = r.weighted<[string, () => string]>([
    [3, ['valid signature', () => `${hex}.${mac}`]],
    [3, ['HMAC altered', () => `${hex}.${flip(mac, r.int(mac.length))}`]],
    [3, ['TXID altered', () => `${hex16(BigInt('0x' + hex) ^ BigInt(1 + r.int(255)))}.${mac}`]],
    [1, ['TXID raised to the maximum', () => `ffffffffffffffff.${mac}`]],
    [1, ['HMAC truncated', () => `${hex}.${mac.slice(0, r.int(mac.length))}`]],
    [1, ['HMAC padded', () => `${hex}.${mac}=`]],
    [1, ['HMAC in base64', () => `${hex}.${createHmac('sha256', SECRET).update(hex).digest('base64')}`]],
    [1, ['no HMAC', () => `${hex}.`]],
    [1, ['unsigned', () => hex]],
    [1, ['two dots', () => `${hex}..${mac}`]],
    [1, ['dot elsewhere', () => `${hex.slice(1)}.${mac}`]],
    [1, ['wrong secret', () => `${hex}.${sign('another-secret-entirely-0123', hex)}`]],
    [1, ['uppercase TXID signed', () => `${hex.toUpperCase()}.${sign(SECRET, hex.toUpperCase())}`]],
    [1, ['8 KB HMAC', () => `${hex}.${mac.repeat(200).slice(0, 8192)}`]],
    [1, ['non-ASCII HMAC', () => `${hex}.${'é'.repeat(43)}`]]
  ])
  notes.push(`signed: ${label}`)
  return value()
}

/** A Cookie header value (or several, one per header line). */
function cookieHeaders (r: Rand, name: string, signed: boolean, notes: string[]): string[] {
  const value = (): string => signed && r.chance(0.85) ? signedValue(r, notes) : txidValue(r, notes)
  const shape = r.weighted<string>([[5, 'single'], [2, 'repeated'], [2, 'among others'], [1, 'lookalike names'], [1, 'odd separators'], [1, 'no value'], [1, 'two lines'], [1, 'many cookies']])
  notes.push(`cookie ${shape}`)
  switch (shape) {
    case 'single': return [`${name}=${value()}`]
    case 'repeated': return [Array.from({ length: r.between(2, 4) }, () => `${name}=${value()}`).join('; ')]
    case 'among others': return [`a=1; ${name}=${value()}; b="x;y"; c=`]
    case 'lookalike names': return [`x${name}=ffffffffffffffff; ${name}x=ffffffffffffffff; ${name.toUpperCase()}=ffffffffffffffff; ${name}=${value()}`]
    case 'odd separators': return [r.pick([`;;${name}=${value()};;`, `${name}=${value()},${name}=ffffffffffffffff`, `\t${name}=${value()}\t;`, `${name} = ${value()}`, `${name}==${value()}`])]
    case 'no value': return [r.pick([name, `${name}=`, `${name};`, '=;=;', ';'])]
    case 'two lines': return [`${name}=${value()}`, `${name}=${value()}`]
    default: return [Array.from({ length: 300 }, (_, i) => `k${i}=v${i}`).join('; ') + `; ${name}=${value()}`]
  }
}

const METHODS: ReadonlyArray<readonly [number, string]> = [
  [30, 'GET'], [25, 'POST'], [4, 'PUT'], [4, 'PATCH'], [4, 'DELETE'], [3, 'HEAD'], [3, 'OPTIONS'], [3, 'PROPFIND'],
  [1, 'PROPPATCH'], [1, 'MKCOL'], [1, 'SEARCH'], [1, 'QUERY'], [1, 'PURGE'], [1, 'REPORT'], [1, 'LOCK'], [1, 'TRACE'],
  [1, 'FOO'], [1, 'X-CUSTOM'], [1, 'get'], [1, 'post'], [1, 'GETS'], [1, 'CONNECT'], [1, 'PRI']
]

const PATHS: ReadonlyArray<readonly [number, (r: Rand) => string]> = [
  [20, () => '/items'],
  [6, r => `/notes/${r.int(1000)}?q=${r.hex(4)}`],
  [2, () => '/to-primary'],
  [1, () => '/opt-out'],
  [2, () => '/litefs/health'],
  [1, r => r.pick(['/litefs/health/', '/LITEFS/health', '/litefs%2Fhealth', '/litefs/%68ealth', '/litefs/health?x=1', '/litefs//health'])],
  [2, r => r.pick(['/%69tems', '/items%2F..%2Fx', '/%2e%2e/items', '/caf%C3%A9', '/%25', '/a%00b', '/%2F%2F'])],
  [2, r => r.pick(['/%zz', '/%E0%A4%A', '/%', '/%%30', '/items%', '/%u0041', '/%C0%AF'])],
  [2, r => r.pick(['/a/../items', '/../../etc/passwd', '/./items', '/items/..', '/static/../items', '/..'])],
  [2, r => r.pick(['//items', '///', '//', '/items//x', '//evil.example/items'])],
  [2, r => r.pick(['/items;jsessionid=1', '/;/', '/x;y=z?q=;', '/items;', ';'])],
  [1, r => '/' + r.pick(['a', 'items/', '%41']).repeat(Math.ceil(8192 / 3)).slice(0, 8192)],
  [1, () => '/items?' + 'q=' + 'x'.repeat(8000)],
  [1, r => r.pick(['*', 'http://evil.example/items', 'items', 'http://127.0.0.1/litefs/health', '/items#frag', '/?', '/items?a=%zz&b=;'])],
  [1, r => r.pick(['/é', '/a b', '/a\tb', '/\x7f', '/a"b<c>{d}|e\\f^g`h'])]
]

/** Forged forwarding metadata and loop markers. */
function forgedHeaders (r: Rand, notes: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = r.between(1, 3); i > 0; i--) {
    const [label, pairs] = r.weighted<[string, () => Array<[string, string]>]>([
      [3, ['loop marker', () => [['litefs-forwarded', r.pick(['node-x', 'forged-by-a-client', '', 'a, b', 'x'.repeat(2000)])]]]],
      [1, ['loop marker twice', () => [['litefs-forwarded', 'node-x'], ['litefs-forwarded', 'node-y']]]],
      [2, ['X-Forwarded-For', () => [['x-forwarded-for', r.pick(['1.2.3.4', 'garbage, , ,', '::1', 'unknown', '10.0.0.1, 10.0.0.2', '[::1]:80', 'x'.repeat(4000)])]]]],
      [2, ['X-Forwarded-Host', () => [['x-forwarded-host', r.pick(['evil.example', '', 'a b', '"q"', 'evil.example:443, other', '[::1]:8080'])]]]],
      [2, ['X-Forwarded-Proto', () => [['x-forwarded-proto', r.pick(['https', 'gopher', 'https, http', '', 'HTTPS'])]]]],
      [1, ['X-Forwarded-Port', () => [['x-forwarded-port', r.pick(['443', 'abc', '-1', '99999999'])]]]],
      [1, ['X-Forwarded-Prefix', () => [['x-forwarded-prefix', '/admin'], ['x-forwarded-ssl', 'on']]]],
      [2, ['Forwarded', () => [['forwarded', r.pick(['for=1.2.3.4;proto=https;host=evil.example', 'for="[::1]";proto=https', ';;;', 'for=a, for=b;by=c', 'garbage', 'host="a\\"b"'])]]]],
      [1, ['X-Real-IP', () => [['x-real-ip', r.pick(['6.6.6.6', 'nonsense', ''])]]]],
      [1, ['repeated X-Forwarded-*', () => [['x-forwarded-for', '1.1.1.1'], ['x-forwarded-for', '2.2.2.2'], ['x-forwarded-proto', 'https'], ['x-forwarded-proto', 'http']]]],
      [2, ['Connection names headers', () => [['connection', r.pick(['litefs-forwarded', 'x-forwarded-for, cookie', 'content-length', 'host', 'transfer-encoding', 'keep-alive, te', 'close', 'forwarded, x-real-ip', 'upgrade'])], ['litefs-forwarded', 'node-z']]]],
      [1, ['Upgrade', () => [['connection', 'upgrade'], ['upgrade', r.pick(['websocket', 'h2c', 'foo/1'])]]]],
      [1, ['Proxy-*', () => [['proxy-authorization', 'Basic Zm9v'], ['proxy-connection', 'keep-alive']]]],
      [1, ['TE / Trailer', () => [['te', 'trailers'], ['trailer', 'x-fuzz-trailer']]]]
    ])
    notes.push(`forged ${label}`)
    out.push(...pairs())
  }
  return out
}

/** A body for a request, sometimes hostile. */
function bodyFor (r: Rand, write: boolean, notes: string[]): Body {
  const size = (): number => r.weighted([[5, r.between(1, 64)], [3, r.between(65, 4096)], [1, r.between(4097, 80 * 1024)], [1, 0]] as const)
  const kind = r.weighted<string>([
    [write ? 30 : 60, 'none'], [write ? 30 : 8, 'fixed'], [write ? 10 : 3, 'chunked'], [4, 'cut'], [3, 'stall'], [3, 'expect'], [8, 'framing'], [2, 'pipelined']
  ])
  if (kind !== 'none') notes.push(`body ${kind}`)
  switch (kind) {
    case 'none': return { kind: 'none' }
    case 'fixed': return { kind: 'fixed', data: r.bytes(size()) }
    case 'chunked': return { kind: 'chunked', chunks: Array.from({ length: r.between(1, 5) }, () => r.bytes(Math.max(1, size()))), ext: r.chance(0.2), trailer: r.chance(0.2) }
    case 'cut': {
      const declared = r.between(10, 100_000)
      return { kind: 'cut', declared, sent: r.int(declared), chunked: r.chance(0.3), afterMs: r.int(40) }
    }
    case 'stall': {
      const declared = r.between(10, 100_000)
      return { kind: 'stall', declared, sent: r.int(Math.min(declared, 70_000)), chunked: r.chance(0.3) }
    }
    case 'expect': return { kind: 'expect', data: r.bytes(size()), pauseMs: r.int(30) }
    case 'pipelined': return { kind: 'pipelined', data: r.bytes(r.between(0, 100)) }
    default: {
      const variant = r.pick([
        'cl+te', 'te+cl', 'two cl same', 'two cl different', 'cl list', 'cl negative', 'cl plus', 'cl huge', 'cl hex',
        'te gzip, chunked', 'te chunked, gzip', 'te identity', 'te twice', 'te uppercase', 'te with params',
        'chunk size not hex', 'chunk extension', 'chunk trailer', 'chunk LF only', 'chunk without end', 'chunk size too large', 'chunk size overflow',
        'obs-fold', 'header without colon', 'space before colon', 'NUL in value', 'CR in value', 'bare LF lines', 'huge header', 'many headers',
        'HTTP/1.0', 'HTTP/0.9', 'HTTP/2 preface', 'leading CRLF', 'HTTP/1.1 without Host', 'two Hosts', 'empty Host', 'Expect: other', 'absolute form'
      ] as const)
      notes.push(variant)
      return { kind: 'framing', variant, data: r.bytes(r.between(1, 200)) }
    }
  }
}

function generate (r: Rand, target: string, count: number): Spec[] {
  const specs: Spec[] = []
  const signedFrom = Math.round(count * (1 - SIGNED_SHARE))
  for (let n = 0; n < count; n++) {
    const pair = n >= signedFrom ? 'signed' : 'plain'
    const notes: string[] = []
    let method = r.weighted(METHODS)
    let path = r.weighted(PATHS)(r)
    const headers: Array<[string, string]> = []
    const cookieName = target === 'sidecar' ? '__txid' : 'litefs-txid'
    // What to fuzz in this one: one to three kinds at once.
    const kinds = new Set<string>()
    for (let k = r.between(1, 3); k > 0; k--) kinds.add(r.weighted([[6, 'cookie'], [3, 'method'], [3, 'path'], [4, 'body'], [3, 'forged']] as const))
    if (!kinds.has('method')) method = r.chance(0.55) ? 'GET' : 'POST'
    if (!kinds.has('path')) path = r.chance(0.8) ? '/items' : `/notes/${r.int(100)}`
    if (kinds.has('cookie') || r.chance(0.2)) for (const v of cookieHeaders(r, cookieName, pair === 'signed', notes)) headers.push(['cookie', v])
    if (kinds.has('forged')) headers.push(...forgedHeaders(r, notes))
    const write = !READS.has(method)
    if (r.chance(0.9)) headers.push(['content-type', r.pick(['application/octet-stream', 'text/plain', 'application/json', 'multipart/form-data; boundary=x'])])
    const body = kinds.has('body') ? bodyFor(r, write, notes) : write && r.chance(0.7) ? { kind: 'fixed' as const, data: r.bytes(r.between(0, 300)) } : { kind: 'none' as const }
    let host: Spec['host']
    if (r.chance(0.03)) { host = r.pick(['evil.example', 'a b', '127.0.0.1:1', '[::1]', 'x'.repeat(300)]); notes.push(`Host ${host.slice(0, 20)}`) }
    const rawOnly = body.kind === 'cut' || body.kind === 'stall' || body.kind === 'expect' || body.kind === 'framing' || body.kind === 'pipelined' ||
      host !== undefined || !/^[A-Z]+$/.test(method) || method === 'CONNECT' || method === 'PRI' || !path.startsWith('/') || /[^\x21-\x7e]/.test(path) ||
      headers.some(([k, v]) => ['connection', 'upgrade', 'te', 'trailer', 'expect', 'keep-alive', 'transfer-encoding', 'proxy-connection'].includes(k) || /[^\t\x20-\x7e]/.test(v)) ||
      headers.filter(([k]) => k === 'cookie').length > 1
    if (!kinds.has('method') && !kinds.has('path')) notes.unshift(`${method} ${path.length > 40 ? path.slice(0, 40) + '…' : path}`)
    else notes.unshift(`${kinds.has('method') ? 'method' : ''}${kinds.has('path') ? ' path' : ''} ${JSON.stringify(method)} ${JSON.stringify(path.length > 40 ? path.slice(0, 40) + '…' : path)}`.trim())
    specs.push({
      n,
      id: `${target}-${n}`,
      pair,
      to: r.chance(0.1) ? 'primary' : 'replica',
      via: rawOnly || r.chance(0.5) ? 'raw' : 'undici',
      method,
      target: path,
      host,
      headers,
      body,
      notes
    })
  }
  return specs
}

// ---------------------------------------------------------------- sending them

interface Outcome {
  statuses: number[]
  /** A final answer arrived for every request sent. */
  answered: boolean
  error?: string
}

/** The request's bytes, step by step: buffers to write, pauses (ms), or 'destroy' (the client leaves). */
type Step = Buffer | number | 'destroy'

function chunk (data: Buffer, ext = false): string {
  return `${data.length.toString(16)}${ext ? ';name=value' : ''}\r\n${data.toString('latin1')}\r\n`
}

function rawSteps (spec: Spec, port: number): { steps: Step[], methods: string[], giveUpMs: number } {
  const b = spec.body
  const variant = b.kind === 'framing' ? b.variant : ''
  const version = variant === 'HTTP/1.0' ? 'HTTP/1.0' : 'HTTP/1.1'
  const target = variant === 'absolute form' ? `http://127.0.0.1:${port}${spec.target.startsWith('/') ? spec.target : '/' + spec.target}` : spec.target
  let head = variant === 'leading CRLF' ? '\r\n\r\n' : ''
  head += variant === 'HTTP/0.9' ? `${spec.method} ${target}\r\n` : `${spec.method} ${target} ${version}\r\n`
  const hosts = spec.host === null || variant === 'HTTP/1.1 without Host'
    ? []
    : variant === 'two Hosts' ? [`127.0.0.1:${port}`, 'evil.example'] : variant === 'empty Host' ? [''] : ([] as string[]).concat(spec.host ?? `127.0.0.1:${port}`)
  const lines: string[] = hosts.map(h => `host: ${h}`)
  lines.push(`x-fuzz-id: ${spec.id}`)
  for (const [k, v] of spec.headers) lines.push(`${k}: ${v}`)
  const eol = variant === 'bare LF lines' ? '\n' : '\r\n'
  const headOf = (extra: string[]): string => head + [...lines, ...extra].join(eol) + eol + eol
  const methods = [spec.method === 'HEAD' ? 'HEAD' : 'GET']
  const data = 'data' in b ? b.data : Buffer.alloc(0)
  switch (b.kind) {
    case 'none': return { steps: [Buffer.from(headOf([]), 'latin1')], methods, giveUpMs: 2500 }
    case 'fixed': return { steps: [Buffer.concat([Buffer.from(headOf([`content-length: ${b.data.length}`]), 'latin1'), b.data])], methods, giveUpMs: 2500 }
    case 'chunked': {
      const body = b.chunks.map(c => chunk(c, b.ext)).join('') + (b.trailer === true ? '0\r\nx-fuzz-trailer: 1\r\n\r\n' : '0\r\n\r\n')
      return { steps: [Buffer.from(headOf(['transfer-encoding: chunked']), 'latin1'), 5, Buffer.from(body, 'latin1')], methods, giveUpMs: 2500 }
    }
    case 'cut':
    case 'stall': {
      const part = Buffer.alloc(b.sent, 0x61)
      const first = b.chunked
        ? [Buffer.from(headOf(['transfer-encoding: chunked']), 'latin1'), Buffer.from(`${b.declared.toString(16)}\r\n`, 'latin1'), part]
        : [Buffer.from(headOf([`content-length: ${b.declared}`]), 'latin1'), part]
      return b.kind === 'cut'
        ? { steps: [...first, b.afterMs, 'destroy'], methods, giveUpMs: 2500 }
        : { steps: first, methods, giveUpMs: 600 } // the client waits, sending nothing more, then leaves
    }
    case 'expect': return { steps: [Buffer.from(headOf(['expect: 100-continue', `content-length: ${b.data.length}`]), 'latin1'), b.pauseMs, b.data], methods, giveUpMs: 2500 }
    case 'pipelined': {
      const second = `POST /items HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nx-fuzz-id: ${spec.id}-b\r\ncontent-length: ${b.data.length}\r\n\r\n`
      return { steps: [Buffer.concat([Buffer.from(headOf(['content-length: 0']), 'latin1'), Buffer.from(second, 'latin1'), b.data])], methods: [...methods, 'POST'], giveUpMs: 2500 }
    }
    case 'framing': {
      const cl = `content-length: ${data.length}`
      const chunked = Buffer.from(chunk(data) + '0\r\n\r\n', 'latin1')
      const sized = (extra: string[], body: Buffer = data): Step[] => [Buffer.concat([Buffer.from(headOf(extra), 'latin1'), body])]
      const v = b.variant
      let steps: Step[]
      let giveUpMs = 2500
      if (v === 'cl+te') steps = sized([cl, 'transfer-encoding: chunked'], chunked)
      else if (v === 'te+cl') steps = sized(['transfer-encoding: chunked', cl], chunked)
      else if (v === 'two cl same') steps = sized([cl, cl])
      else if (v === 'two cl different') steps = sized([cl, `content-length: ${data.length + 5}`])
      else if (v === 'cl list') steps = sized([`content-length: ${data.length}, ${data.length}`])
      else if (v === 'cl negative') steps = sized(['content-length: -1'])
      else if (v === 'cl plus') steps = sized([`content-length: +${data.length}`])
      else if (v === 'cl huge') steps = sized(['content-length: 99999999999999999999999'])
      else if (v === 'cl hex') steps = sized([`content-length: 0x${data.length.toString(16)}`])
      else if (v === 'te gzip, chunked') steps = sized(['transfer-encoding: gzip, chunked'], chunked)
      else if (v === 'te chunked, gzip') steps = sized(['transfer-encoding: chunked, gzip'], chunked)
      else if (v === 'te identity') steps = sized(['transfer-encoding: identity'])
      else if (v === 'te twice') steps = sized(['transfer-encoding: chunked', 'transfer-encoding: chunked'], chunked)
      else if (v === 'te uppercase') steps = sized(['transfer-encoding: CHUNKED'], chunked)
      else if (v === 'te with params') steps = sized(['transfer-encoding: chunked;q=1'], chunked)
      else if (v === 'chunk size not hex') steps = sized(['transfer-encoding: chunked'], Buffer.from(`zz\r\n${data.toString('latin1')}\r\n0\r\n\r\n`, 'latin1'))
      else if (v === 'chunk extension') steps = sized(['transfer-encoding: chunked'], Buffer.from(chunk(data, true) + '0;last\r\n\r\n', 'latin1'))
      else if (v === 'chunk trailer') steps = sized(['transfer-encoding: chunked', 'trailer: x-t'], Buffer.from(chunk(data) + '0\r\nx-t: 1\r\ncontent-length: 5\r\n\r\n', 'latin1'))
      else if (v === 'chunk LF only') steps = sized(['transfer-encoding: chunked'], Buffer.from(`${data.length.toString(16)}\n${data.toString('latin1')}\n0\n\n`, 'latin1'))
      else if (v === 'chunk without end') { steps = sized(['transfer-encoding: chunked'], Buffer.from(chunk(data), 'latin1')); giveUpMs = 600 }
      else if (v === 'chunk size too large') { steps = sized(['transfer-encoding: chunked'], Buffer.from(`${(data.length + 100).toString(16)}\r\n${data.toString('latin1')}\r\n0\r\n\r\n`, 'latin1')); giveUpMs = 600 }
      else if (v === 'chunk size overflow') steps = sized(['transfer-encoding: chunked'], Buffer.from(`ffffffffffffffffff\r\n${data.toString('latin1')}\r\n0\r\n\r\n`, 'latin1'))
      else if (v === 'obs-fold') steps = sized([cl, 'x-folded: a', ' continued'])
      else if (v === 'header without colon') steps = sized([cl, 'x-broken'])
      else if (v === 'space before colon') steps = sized([cl, 'x-a : b'])
      else if (v === 'NUL in value') steps = sized([cl, 'x-a: b\x00c'])
      else if (v === 'CR in value') steps = sized([cl, 'x-a: b\rc'])
      else if (v === 'huge header') steps = sized([cl, `x-huge: ${'h'.repeat(20_000)}`])
      else if (v === 'many headers') steps = sized([cl, ...Array.from({ length: 2500 }, (_, i) => `x-h${i}: ${i}`)])
      else if (v === 'HTTP/2 preface') steps = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')]
      else if (v === 'Expect: other') steps = sized([cl, 'expect: 200-ok'])
      else steps = sized([cl]) // HTTP/1.0, HTTP/0.9, leading CRLF, Host variants, absolute form, bare LF lines
      return { steps, methods, giveUpMs }
    }
  }
}

/**
 * Status codes of the responses in `buf`, how many final responses are
 * complete, and whether the last one is delimited by the connection's close
 * (no length: Node's own 400s).
 */
function parseResponses (buf: Buffer, methods: string[]): { statuses: number[], finals: number, untilClose: boolean } {
  const statuses: number[] = []
  let finals = 0
  let untilClose = false
  let pos = 0
  while (pos < buf.length) {
    const end = buf.indexOf('\r\n\r\n', pos)
    if (end === -1) break
    const lines = buf.subarray(pos, end).toString('latin1').split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0])
    if (m === null) break
    const status = Number(m[1])
    statuses.push(status)
    let p = end + 4
    if (status < 200 && status !== 101) { pos = p; continue }
    const header = (name: string): string | undefined => lines.find(l => l.toLowerCase().startsWith(name + ':'))?.slice(name.length + 1).trim().toLowerCase()
    if (methods[finals] === 'HEAD' || status === 204 || status === 304) { finals++; pos = p; continue }
    if (header('transfer-encoding')?.includes('chunked') === true) {
      let complete = false
      for (;;) {
        const le = buf.indexOf('\r\n', p)
        if (le === -1) break
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16)
        if (Number.isNaN(size)) break
        if (size === 0) {
          const tail = buf.indexOf('\r\n\r\n', le)
          if (buf.subarray(le + 2, le + 4).toString() === '\r\n') { p = le + 4; complete = true } else if (tail !== -1) { p = tail + 4; complete = true }
          break
        }
        p = le + 2 + size + 2
        if (p > buf.length) break
      }
      if (!complete) break
      finals++
      pos = p
      continue
    }
    const length = header('content-length')
    if (length === undefined) { untilClose = true; break }
    if (buf.length < p + Number(length)) break
    finals++
    pos = p + Number(length)
  }
  return { statuses, finals, untilClose }
}

async function sendRaw (port: number, spec: Spec): Promise<Outcome> {
  const { steps, methods, giveUpMs } = rawSteps(spec, port)
  return await new Promise<Outcome>(resolve => {
    const socket = netConnect(port, '127.0.0.1')
    socket.setNoDelay(true)
    let buf = Buffer.alloc(0)
    let settled = false
    let giveUp: NodeJS.Timeout | undefined
    const finish = (answered: boolean, error?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(giveUp)
      socket.destroy()
      resolve({ statuses: parseResponses(buf, methods).statuses, answered, error })
    }
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (parseResponses(buf, methods).finals >= methods.length) finish(true)
    })
    socket.on('close', () => {
      const { finals, untilClose } = parseResponses(buf, methods)
      finish(finals + (untilClose ? 1 : 0) >= methods.length, 'closed')
    })
    socket.on('error', err => finish(false, (err as NodeJS.ErrnoException).code ?? err.message))
    socket.once('connect', () => {
      void (async () => {
        for (const step of steps) {
          if (settled) return
          if (step === 'destroy') return finish(false, 'client left')
          if (typeof step === 'number') await new Promise(resolve => setTimeout(resolve, step))
          else socket.write(step)
        }
        giveUp = setTimeout(() => finish(false, 'no answer'), giveUpMs)
      })()
    })
  })
}

async function sendUndici (url: string, spec: Spec, dispatcher: Agent): Promise<Outcome> {
  const headers: string[] = ['x-fuzz-id', spec.id]
  for (const [k, v] of spec.headers) headers.push(k, v)
  const b = spec.body
  const body = b.kind === 'fixed'
    ? b.data
    : b.kind === 'chunked'
      ? Readable.from((async function * () { for (const c of b.chunks) { yield c; await new Promise(resolve => setImmediate(resolve)) } })())
      : undefined
  try {
    const res = await request(url + spec.target, { method: spec.method as 'GET', headers, body, dispatcher, headersTimeout: 3000, bodyTimeout: 3000 })
    await res.body.dump()
    return { statuses: [res.statusCode], answered: true }
  } catch (err) {
    return { statuses: [], answered: false, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message }
  }
}

/** What was sent, in a line (and the bytes, shortened, for raw requests). */
function describe (spec: Spec, port: number): string {
  let text = `#${spec.n} id=${spec.id} ${spec.via} → ${spec.pair} ${spec.to}: ${spec.notes.join('; ')}`
  if (spec.via === 'raw') {
    const bytes = Buffer.concat(rawSteps(spec, port).steps.filter((s): s is Buffer => Buffer.isBuffer(s))).toString('latin1')
    text += ` | bytes: ${JSON.stringify(bytes.length > 600 ? bytes.slice(0, 600) + `…(${bytes.length} bytes)` : bytes)}`
  } else {
    text += ` | undici ${spec.method} ${JSON.stringify(spec.target.slice(0, 200))} headers ${JSON.stringify(spec.headers).slice(0, 400)} body ${spec.body.kind}`
  }
  return text
}

/** Bytes a primary's app must get for this request when it runs it (undefined: not checked). */
function expectedBytes (spec: Spec): number | undefined {
  if (READS.has(spec.method)) return undefined // a read's body is the framework's business (Fastify ignores a GET's)
  const b = spec.body
  switch (b.kind) {
    case 'none': return 0
    case 'fixed': case 'expect': return b.data.length
    case 'chunked': return b.chunks.reduce((n, c) => n + c.length, 0)
    case 'cut': case 'stall': return b.declared // never all sent: the app must never run it
    default: return undefined
  }
}

/** A short fingerprint of the generated inputs: the same seed gives the same one. */
function digest (specs: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(specs, (_k, v: unknown) => (v as { type?: string })?.type === 'Buffer' ? createHash('sha256').update(Buffer.from((v as { data: number[] }).data)).digest('hex') : v)).digest('hex').slice(0, 12)
}

async function waitFor (cond: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) return false
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return true
}

async function pool<T> (items: T[], width: number, run: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++
      await run(items[i], i)
    }
  }))
}

interface Tally {
  failures: string[]
  statuses: Map<string, number>
  sent: number
  unanswered: number
}

function count (tally: Tally, key: string): void {
  tally.statuses.set(key, (tally.statuses.get(key) ?? 0) + 1)
}

/** Replication moves on now and then: held reads are released, not only timed out. */
function replicate (p: Pair): void {
  if (p.rfake.txid < p.pfake.txid) p.rfake.advance(p.rfake.txid + 1n)
}

/** The invariants, once every client is done. */
async function check (t: Test, pairs: Pair[], specs: Spec[], tally: Tally, label: string): Promise<void> {
  t.comment(`${label}: FUZZ_SEED=${SEED}, ${tally.sent} requests, ${tally.unanswered} without a final answer (client left, stalled, or connection cut); statuses ${JSON.stringify(Object.fromEntries([...tally.statuses].sort()))}`)
  for (const f of tally.failures) t.comment(`FUZZ_SEED=${SEED} ${label} ${f}`)
  t.equal(tally.failures.length, 0, `${label}: no answer is a 500`)
  const byId = new Map(specs.flatMap(s => [[s.id, s], [`${s.id}-b`, s]] as const))
  for (const p of pairs) {
    const twice = [...p.rec.app].filter(([, n]) => n > 1).concat([...p.rec.server].filter(([, n]) => n > 1))
    for (const [id, n] of twice) t.comment(`FUZZ_SEED=${SEED} ${label}: ${id} reached the primary ${n} times: ${byId.get(id) === undefined ? '' : describe(byId.get(id) as Spec, p.replica.port)}`)
    t.equal(twice.length, 0, `${p.name}: no write reached the primary twice`)
    for (const w of p.rec.replicaWrites) t.comment(`FUZZ_SEED=${SEED} ${label}: a write ran on the replica's app: ${w}: ${byId.get(w.split(' ')[0]) === undefined ? '' : describe(byId.get(w.split(' ')[0]) as Spec, p.replica.port)}`)
    t.equal(p.rec.replicaWrites.length, 0, `${p.name}: no write ran on a replica`)
    const altered: string[] = []
    for (const [id, bytes] of p.rec.bodies) {
      const spec = byId.get(id)
      const want = spec === undefined || id.endsWith('-b') ? undefined : expectedBytes(spec)
      if (want !== undefined && want !== bytes) altered.push(`${id}: ${bytes} bytes reached the primary's app, ${want} sent: ${describe(spec as Spec, p.replica.port)}`)
    }
    for (const a of altered) t.comment(`FUZZ_SEED=${SEED} ${label}: ${a}`)
    t.equal(altered.length, 0, `${p.name}: every body the primary's app ran is the body the client sent`)
    for (const [name, node] of [['replica', p.replica], ['primary', p.primary]] as const) {
      await waitFor(() => node.state.waiterCount === 0 && node.stats().held === 0 && node.forwarding() === 0, 3000)
      t.equal(node.state.waiterCount, 0, `${p.name} ${name}: nothing held (waiterCount)`)
      t.equal(node.stats().held, 0, `${p.name} ${name}: nothing held (stats().held)`)
      t.equal(node.forwarding(), 0, `${p.name} ${name}: no forward to the primary left running`)
    }
  }
}

/** Both nodes still answer plainly: the process and its servers are up. */
async function stillServing (t: Test, p: Pair): Promise<void> {
  const label = p.name
  for (const [name, node] of [['replica', p.replica], ['primary', p.primary]] as const) {
    const read = await request(`${node.url}/items`)
    await read.body.dump()
    t.equal(read.statusCode, 200, `${label} ${name}: a plain read is still served`)
    const id = `${label}-${name}-final`
    const write = await request(`${node.url}/items`, { method: 'POST', headers: { 'x-fuzz-id': id, 'content-type': 'text/plain' }, body: 'final' })
    await write.body.dump()
    t.ok(write.statusCode === 200 || write.statusCode === 201, `${label} ${name}: a plain write is still served (${write.statusCode})`)
    t.equal(p.rec.server.get(id), 1, `${label} ${name}: the plain write reached the primary once`)
  }
}

async function fuzzTarget (t: Test, target: AdapterName | 'sidecar'): Promise<void> {
  const started = Date.now()
  const build = async (secrets: string[]): Promise<Pair> => await withPair(t, async () => target === 'sidecar' ? await sidecarPair(secrets) : await adapterPair(target, secrets))
  const plain = await build([])
  const signed = await build([SECRET, OLD_SECRET])
  const specs = generate(new Rand(mulberry32(SEED ^ fnv(target))), target, PER_TARGET)
  t.comment(`${target}: FUZZ_SEED=${SEED}, inputs ${digest(specs)}`)
  const chosen = ONLY === undefined ? specs : specs.filter(s => ONLY.has(s.n))
  const tally: Tally = { failures: [], statuses: new Map(), sent: 0, unanswered: 0 }
  const dispatcher = new Agent({ keepAliveTimeout: 1000 })
  t.teardown(async () => { await dispatcher.destroy() })
  await pool(chosen, CONCURRENCY, async (spec, i) => {
    const p = spec.pair === 'signed' ? signed : plain
    if (i % 25 === 0) replicate(p)
    const node = spec.to === 'primary' ? p.primary : p.replica
    const out = spec.via === 'raw' ? await sendRaw(node.port, spec) : await sendUndici(node.url, spec, dispatcher)
    tally.sent++
    if (!out.answered) tally.unanswered++
    for (const s of out.statuses) count(tally, String(s))
    if (out.statuses.length === 0) count(tally, `none (${out.error ?? '?'})`)
    if (out.statuses.includes(500)) tally.failures.push(`status 500 for ${describe(spec, node.port)}`)
    if (VERBOSE && !out.answered) t.comment(`unanswered (${out.error ?? '?'}; ${out.statuses.join(',')}): ${describe(spec, node.port).slice(0, 700)}`)
  })
  await check(t, [plain, signed], specs, tally, target)
  await stillServing(t, plain)
  await stillServing(t, signed)
  await dispatcher.close()
  for (const p of [plain, signed]) await shutDown(p, msg => t.fail(msg))
  t.comment(`${target}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

for (const target of ['fastify', 'express', 'http', 'sidecar'] as const) {
  t.test(`${target}: ${PER_TARGET} generated requests, a replica forwarding to a primary`, async t => {
    await fuzzTarget(t, target)
  })
}

// ---------------------------------------------------------------- HTTP/2 clients

interface H2Spec {
  n: number
  id: string
  headers: Record<string, string | string[]>
  body: { kind: 'none' } | { kind: 'data', chunks: Buffer[], length: boolean } | { kind: 'stall', sent: number } | { kind: 'cut', sent: number, afterMs: number } | { kind: 'wrong length', declared: number, sent: number } | { kind: 'reset' }
  /** The client's whole connection is dropped right after sending. */
  killSession: boolean
  notes: string[]
}

function generateH2 (r: Rand, label: string, count: number): H2Spec[] {
  const specs: H2Spec[] = []
  for (let n = 0; n < count; n++) {
    const notes: string[] = []
    const method = r.chance(0.5) ? r.weighted(METHODS.filter(([, m]) => m !== 'CONNECT' && m !== 'PRI')) : r.pick(['GET', 'POST'])
    const path = r.chance(0.5) ? r.weighted(PATHS)(r) : '/items'
    const headers: Record<string, string | string[]> = { ':method': method, ':path': path, 'x-fuzz-id': `${label}-${n}` }
    notes.push(`${JSON.stringify(method)} ${JSON.stringify(path.slice(0, 40))}`)
    if (r.chance(0.6)) {
      const cookies = cookieHeaders(r, 'litefs-txid', false, notes)
      // HTTP/2 clients may split cookies into one field per pair (RFC 9113 8.2.3).
      headers.cookie = r.chance(0.3) ? cookies.join('; ').split('; ') : cookies.length === 1 ? cookies[0] : cookies
    }
    if (r.chance(0.3)) {
      for (const [k, v] of forgedHeaders(r, notes)) {
        if (['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding'].includes(k)) continue // forbidden in HTTP/2: the client refuses them
        if (k === 'te' && v !== 'trailers') continue
        const seen = headers[k]
        headers[k] = seen === undefined ? v : ([] as string[]).concat(seen, v)
      }
    }
    if (r.chance(0.05)) { headers[':authority'] = r.pick(['evil.example', 'a:b:c', '']); notes.push(`:authority ${String(headers[':authority'])}`) }
    if (r.chance(0.05)) { headers.host = 'other.example'; notes.push('host beside :authority') }
    if (r.chance(0.8)) headers['content-type'] = 'application/octet-stream'
    const write = !READS.has(method)
    const kind = r.weighted<string>([[write ? 20 : 60, 'none'], [write ? 50 : 10, 'data'], [5, 'stall'], [5, 'cut'], [5, 'wrong length'], [3, 'reset']])
    let body: H2Spec['body'] = { kind: 'none' }
    const size = (): number => r.weighted([[5, r.between(1, 64)], [3, r.between(65, 4096)], [1, r.between(4097, 80 * 1024)]] as const)
    if (kind === 'data') body = { kind: 'data', chunks: Array.from({ length: r.between(1, 3) }, () => r.bytes(size())), length: r.chance(0.5) }
    if (kind === 'stall') body = { kind: 'stall', sent: r.int(20_000) }
    if (kind === 'cut') body = { kind: 'cut', sent: r.int(20_000), afterMs: r.int(40) }
    if (kind === 'wrong length') body = { kind: 'wrong length', declared: r.between(10, 5000), sent: r.int(10) }
    if (kind === 'reset') body = { kind: 'reset' } // the whole request, then RST_STREAM at once
    if (kind !== 'none') notes.push(`body ${kind}${body.kind === 'data' ? (body.length ? ' with content-length' : ' without content-length') : ''}`)
    const killSession = r.chance(0.02)
    if (killSession) notes.push('connection dropped')
    specs.push({ n, id: `${label}-${n}`, headers, body, killSession, notes })
  }
  return specs
}

async function sendH2 (session: ClientHttp2Session, spec: H2Spec): Promise<Outcome> {
  return await new Promise<Outcome>(resolve => {
    const b = spec.body
    const headers = { ...spec.headers }
    if (b.kind === 'data' && b.length) headers['content-length'] = String(b.chunks.reduce((n, c) => n + c.length, 0))
    if (b.kind === 'wrong length') headers['content-length'] = String(b.declared)
    let stream: ReturnType<ClientHttp2Session['request']>
    try {
      stream = session.request(headers, { endStream: b.kind === 'none' || b.kind === 'reset' })
    } catch (err) {
      resolve({ statuses: [], answered: false, error: `refused by the client: ${(err as NodeJS.ErrnoException).code ?? ''}` })
      return
    }
    let status: number | undefined
    let timer: NodeJS.Timeout | undefined
    let settled = false
    const finish = (answered: boolean, error?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      // A body the client abandons is reset without END_STREAM (destroy): Node's
      // close(code) ends the writable side first, which tells the server the body
      // is complete — an HTTP/2 client that does that sent a whole (shorter) body.
      if (!stream.closed) {
        if (b.kind === 'cut' || b.kind === 'stall') stream.destroy()
        else stream.close(h2constants.NGHTTP2_CANCEL)
      }
      resolve({ statuses: status === undefined ? [] : [status], answered, error })
    }
    stream.on('response', h => { status = h[':status'] })
    stream.on('data', () => {})
    stream.on('end', () => finish(status !== undefined))
    stream.on('close', () => finish(status !== undefined, `stream closed (${stream.rstCode})`))
    stream.on('error', err => finish(false, (err as NodeJS.ErrnoException).code))
    timer = setTimeout(() => finish(false, 'no answer'), b.kind === 'stall' ? 600 : 2500)
    if (b.kind === 'data') {
      void (async () => {
        for (const c of b.chunks) {
          if (settled) return
          stream.write(c)
          await new Promise(resolve => setImmediate(resolve))
        }
        if (!settled) stream.end()
      })()
    } else if (b.kind === 'stall') {
      stream.write(Buffer.alloc(b.sent, 0x61))
    } else if (b.kind === 'cut') {
      stream.write(Buffer.alloc(b.sent, 0x61))
      setTimeout(() => finish(false, 'client left'), b.afterMs)
    } else if (b.kind === 'wrong length') {
      stream.end(Buffer.alloc(b.sent, 0x61))
    } else if (b.kind === 'reset') {
      finish(false, 'client left')
    }
    if (spec.killSession) setImmediate(() => session.destroy())
  })
}

for (const adapter of ['fastify', 'http'] as const) {
  t.test(`${adapter} over HTTP/2 (h2c): ${H2_REQUESTS} generated requests, forwarded as HTTP/1.1`, async t => {
    const started = Date.now()
    const label = `${adapter}-h2`
    const p = await withPair(t, async () => await h2Pair(adapter))
    const specs = generateH2(new Rand(mulberry32(SEED ^ fnv(label))), label, H2_REQUESTS)
    t.comment(`${label}: FUZZ_SEED=${SEED}, inputs ${digest(specs)}`)
    const chosen = ONLY === undefined ? specs : specs.filter(s => ONLY.has(s.n))
    const tally: Tally = { failures: [], statuses: new Map(), sent: 0, unanswered: 0 }
    const sessions: ClientHttp2Session[] = []
    t.teardown(() => { for (const s of sessions) s.destroy() })
    const fresh = (): ClientHttp2Session => {
      const s = h2connect(p.replica.url)
      s.on('error', () => {})
      sessions.push(s)
      return s
    }
    const worker = new Map<number, ClientHttp2Session>()
    await pool(chosen, 8, async (spec, i) => {
      const w = i % 8
      let session = worker.get(w)
      if (session === undefined || session.destroyed || session.closed) { session = fresh(); worker.set(w, session) }
      if (i % 25 === 0) replicate(p)
      const out = await sendH2(session, spec)
      tally.sent++
      if (!out.answered) tally.unanswered++
      for (const s of out.statuses) count(tally, String(s))
      if (out.statuses.length === 0) count(tally, `none (${out.error ?? '?'})`)
      if (VERBOSE) t.comment(`${out.answered ? 'answered' : 'unanswered'} (${out.error ?? ''}; ${out.statuses.join(',')}): #${spec.n} ${spec.notes.join('; ')}`)
      if (out.statuses.includes(500)) tally.failures.push(`status 500 for #${spec.n} id=${spec.id}: ${spec.notes.join('; ')} | headers ${JSON.stringify(spec.headers).slice(0, 600)} body ${JSON.stringify(spec.body.kind === 'data' ? { kind: 'data', bytes: spec.body.chunks.map(c => c.length), length: spec.body.length } : spec.body)}`)
    })
    // The same invariants; bodies are checked against what each stream sent.
    const asSpecs: Spec[] = specs.map(s => ({
      n: s.n,
      id: s.id,
      pair: 'plain',
      to: 'replica',
      via: 'undici',
      method: String(s.headers[':method']),
      target: String(s.headers[':path']),
      headers: Object.entries(s.headers).map(([k, v]) => [k, String(v)]),
      body: s.body.kind === 'data'
        ? { kind: 'chunked', chunks: s.body.chunks }
        : s.body.kind === 'none' || s.body.kind === 'reset' ? { kind: 'none' } : { kind: 'stall', declared: s.body.kind === 'wrong length' ? s.body.declared : Number.MAX_SAFE_INTEGER, sent: s.body.sent, chunked: false },
      notes: s.notes
    }))
    await check(t, [p], asSpecs, tally, label)
    for (const s of sessions) s.destroy()
    const session = fresh()
    const res = await sendH2(session, { n: -1, id: `${label}-final`, headers: { ':method': 'POST', ':path': '/items', 'x-fuzz-id': `${label}-final` }, body: { kind: 'data', chunks: [Buffer.from('final')], length: true }, killSession: false, notes: [] })
    t.ok(res.statuses[0] === 200 || res.statuses[0] === 201, `${label}: a plain write is still forwarded (${String(res.statuses[0])})`)
    t.equal(p.rec.server.get(`${label}-final`), 1, `${label}: the plain write reached the primary once`)
    const read = await sendH2(session, { n: -1, id: `${label}-final-read`, headers: { ':method': 'GET', ':path': '/items' }, body: { kind: 'none' }, killSession: false, notes: [] })
    t.same(read.statuses, [200], `${label}: a plain read is still served`)
    session.destroy()
    await shutDown(p, msg => t.fail(msg))
    const stuck = stuckH2.get(p.name) ?? 0
    if (stuck > 0) t.comment(`${label}: ${stuck} HTTP/2 session(s) left open by Node's stream-reset defect destroyed at shutdown`)
    t.comment(`${label}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  })
}
