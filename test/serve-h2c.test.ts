// Issue 18, kind 6, for `litefs-proxy serve`: a cluster whose sidecars speak
// only h2c (HTTP/2 without TLS, prior knowledge: behind a balancer sending h2c,
// such as Fly's h2_backend), and an app that speaks only h2c. `--protocol`
// chooses what serve's own server speaks, `--forward-protocol` what its forwards
// to the primary's sidecar speak (default: what the request arrived in),
// `--target-protocol` what it speaks to the app. Through real sockets, on fake
// LiteFS nodes.
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect as h2connect, createServer as createH2Server, type ClientHttp2Session, type Http2ServerRequest, type Http2ServerResponse, type IncomingHttpHeaders } from 'node:http2'
import { connect as netConnect, type AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { createSidecar, type Sidecar, type SidecarOptions } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { serveOptions, UsageError } from '../lib/sidecar/settings.js'
import { run, type Io } from '../lib/cli/run.js'

type Test = typeof t
type Seen = Array<{ method: string, url: string, version: string, body: string }>

/** What both apps do: record the request; a POST commits on the node's fake LiteFS; /hang never answers. */
function answer (fake: FakeLitefs, seen: Seen) {
  return (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    if (req.url === '/hang') return
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, version: req.httpVersion, body } as Seen[number])
      if (req.method === 'POST') fake.advance(fake.txid + 1n, { event: false })
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'set-cookie': 'app=1; Path=/' })
      res.end(JSON.stringify({ method: req.method, url: req.url, version: req.httpVersion, body }))
    })
  }
}

/** The app behind serve: HTTP/1.1 (node:http), or h2c only (node:http2 without TLS). */
async function app (t: Test, fake: FakeLitefs, protocol: 'http1' | 'h2c' = 'http1'): Promise<{ port: number, seen: Seen }> {
  const seen: Seen = []
  const handler = answer(fake, seen)
  const server = protocol === 'h2c' ? createH2Server(handler) : createServer(handler)
  const sessions = new Set<import('node:http2').Http2Session>()
  server.on('session', (s: import('node:http2').Http2Session) => { sessions.add(s) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    if ('closeAllConnections' in server) server.closeAllConnections()
    for (const s of sessions) s.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  return { port: (server.address() as AddressInfo).port, seen }
}

async function sidecar (t: Test, fake: FakeLitefs, port: number, opts: Partial<SidecarOptions>, lines: string[]): Promise<Sidecar> {
  const s = createSidecar({ addr: '127.0.0.1:0', target: `localhost:${port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, logger: lineLogger('info', 'json', l => lines.push(l)), ...opts })
  await s.listen()
  t.teardown(async () => { await s.close() })
  await until(() => s.core.state.litefs === 'up' && (fake.role === 'primary' ? s.core.state.role === 'primary' : s.core.state.primaryHostname !== undefined))
  return s
}

interface Pair { pfake: FakeLitefs, rfake: FakeLitefs, papp: { seen: Seen }, rapp: { seen: Seen }, primary: Sidecar, replica: Sidecar, lines: string[] }

/** Two nodes: a primary and a replica, each an app behind serve. */
async function pair (t: Test, o: { primary?: Partial<SidecarOptions>, replica?: Partial<SidecarOptions>, app?: 'http1' | 'h2c' } = {}): Promise<Pair> {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await pfake.close(); await rfake.close() })
  const papp = await app(t, pfake, o.app)
  const rapp = await app(t, rfake, o.app)
  const lines: string[] = []
  const primary = await sidecar(t, pfake, papp.port, o.primary ?? {}, lines)
  const replica = await sidecar(t, rfake, rapp.port, { primaryUrl: () => primary.url, ...o.replica }, lines)
  return { pfake, rfake, papp, rapp, primary, replica, lines }
}

interface H2Answer { status: number, headers: IncomingHttpHeaders, body: string }

async function h2 (session: ClientHttp2Session, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<H2Answer> {
  return await new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...headers })
    let got: IncomingHttpHeaders = {}
    let text = ''
    stream.on('response', h => { got = h })
    stream.on('data', (c: Buffer) => { text += c.toString() })
    stream.on('end', () => resolve({ status: got[':status'] as number, headers: got, body: text }))
    stream.on('error', reject)
    stream.end(body)
  })
}

function session (t: Test, url: string): ClientHttp2Session {
  const s = h2connect(url)
  s.on('error', () => {}) // a session the server closes under a test: what the test asserts
  t.teardown(() => s.destroy())
  return s
}

const parsed = (lines: string[]): any[] => lines.map(l => JSON.parse(l))

const H2C = { protocol: 'h2c' } as const

t.test('every sidecar h2c only: a write on a replica goes in h2c to the primary\'s sidecar, once, with the cookie; a read with it is held', async t => {
  const { papp, rapp, rfake, primary, replica, lines } = await pair(t, { primary: H2C, replica: H2C })
  const c = session(t, replica.url)
  const res = await h2(c, 'POST', '/notes', {}, 'x')
  t.equal(res.status, 201)
  t.match(JSON.parse(res.body), { method: 'POST', url: '/notes', body: 'x' })
  t.equal(papp.seen.filter(s => s.method === 'POST').length, 1, "applied once, by the primary's app")
  t.equal(rapp.seen.length, 0, "not the replica's app")
  t.same(res.headers['set-cookie'], ['app=1; Path=/', '__txid=000000000000000b; Path=/; HttpOnly; SameSite=Lax; Max-Age=300'], "the app's cookie and the __txid cookie")
  t.equal(res.headers['litefs-txid'], '000000000000000b', 'the token header')
  const forwardLine = parsed(lines).find(l => l.msg === 'request' && l.method === 'POST' && l.role === 'replica')
  t.match(forwardLine, { status: 201, kind: 'write', forwardedTo: String }, "the replica's access line")
  t.ok(parsed(lines).some(l => l.msg === 'request' && l.method === 'POST' && l.role === 'primary' && l.status === 201), "the primary's sidecar served it (it speaks only h2c: the forward spoke h2c)")

  // Two reads on one session, both held at once: streams are not queued one behind another (HTTP/1.1 pipelining's order is not applied).
  const cookie = '__txid=000000000000000b'
  const reads = [h2(c, 'GET', '/notes', { cookie }), h2(c, 'GET', '/notes?2', { 'litefs-txid': '000000000000000b' })]
  await until(() => replica.core.state.waiterCount === 2)
  t.equal(rapp.seen.length, 0, 'held until the replica has the write')
  rfake.advance(11n)
  const [r1, r2] = await Promise.all(reads)
  t.equal(r1.status, 200, 'the cookie: held, then served')
  t.equal(r2.status, 200, 'the token header: held, then served')
  t.equal(rapp.seen.length, 2, "by the replica's app once it had the write")
  t.equal(rapp.seen[0].version, '1.1', 'the app behind speaks HTTP/1.1 (the default --target-protocol)')
  t.notOk(forwardLine.aborted, 'answered in full, as its line says')
  // The replica's forwarder keeps its HTTP/2 session to the primary's sidecar: closing that sidecar does not wait for it.
  const started = performance.now()
  await primary.close()
  t.ok(performance.now() - started < 3000, "the primary's sidecar closed with its replica's session open")
})

t.test('h2c: passthrough, health, CONNECT refused, a stream the client resets', async t => {
  const { rapp, replica, lines } = await pair(t, { primary: H2C, replica: { ...H2C, passthrough: ['/static/*'] } })
  const c = session(t, replica.url)
  const stat = await h2(c, 'POST', '/static/x', {}, 'x')
  t.equal(stat.status, 201, "passthrough: the replica's own app, even for a POST")
  t.equal(stat.headers['set-cookie']?.length, 1, 'no cookie of ours')
  t.equal(rapp.seen.length, 1)
  const health = await h2(c, 'GET', '/litefs/health')
  t.match(JSON.parse(health.body), { status: 'ok', role: 'replica', primary: 'node-a' }, 'health, the primary asked in h2c')
  // HTTP/2's CONNECT has no :path (RFC 9113 §8.5).
  const tunnel = await new Promise<H2Answer>((resolve, reject) => {
    const stream = c.request({ ':method': 'CONNECT', ':authority': 'example.com:443' })
    let status = 0
    let text = ''
    stream.on('response', h => { status = h[':status'] as number })
    stream.on('data', (b: Buffer) => { text += b.toString() })
    stream.on('end', () => resolve({ status, headers: {}, body: text }))
    stream.on('error', reject)
  })
  t.equal(tunnel.status, 501)
  t.match(JSON.parse(tunnel.body), { code: 'LITEFS_CONNECT_UNSUPPORTED' })
  t.ok(parsed(lines).some(l => l.code === 'LITEFS_CONNECT_UNSUPPORTED' && l.path === 'example.com:443'), 'its line')
  const again = await h2(c, 'GET', '/litefs/health')
  t.equal(again.status, 200, 'the session goes on')
})

t.test('an h2c-only app behind serve (--target-protocol h2c), from an HTTP/1.1 and from an h2c serve', async t => {
  const { papp, rapp, rfake, primary, replica } = await pair(t, { app: 'h2c', primary: { targetProtocol: 'h2c' }, replica: { targetProtocol: 'h2c', protocol: 'h2c', forwardProtocol: 'http1' } })
  const w = await request(`${primary.url}/notes`, { method: 'POST', body: 'a' })
  t.equal(w.statusCode, 201)
  t.match(await w.body.json(), { version: '2.0', body: 'a' }, 'an HTTP/1.1 request, sent to the app in h2c')
  t.match(w.headers['set-cookie'], ['app=1; Path=/', /^__txid=000000000000000b;/])
  const c = session(t, replica.url)
  const fw = await h2(c, 'POST', '/notes', {}, 'b')
  t.equal(fw.status, 201, 'an h2c request, forwarded in HTTP/1.1 (--forward-protocol http1) to an HTTP/1.1 sidecar')
  t.equal(papp.seen.filter(s => s.method === 'POST').length, 2)
  rfake.advance(12n)
  const read = await h2(c, 'GET', '/notes', { cookie: '__txid=000000000000000c' })
  t.match(JSON.parse(read.body), { version: '2.0', method: 'GET' }, 'a read, to the h2c app')
  t.equal(rapp.seen.length, 1)
})

t.test('--forward-protocol h2c: an HTTP/1.1 replica sidecar in front of an h2c-only primary sidecar', async t => {
  const { papp, replica } = await pair(t, { primary: H2C, replica: { forwardProtocol: 'http2' } })
  const res = await request(`${replica.url}/notes`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 201)
  await res.body.dump()
  t.equal(papp.seen.length, 1)
})

t.test('an HTTP/1.1 client of an h2c-only serve: its connection closed unanswered (Node), said once', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await fake.close() })
  const a = await app(t, fake)
  const lines: string[] = []
  const s = await sidecar(t, fake, a.port, H2C, lines)
  for (let i = 0; i < 2; i++) {
    const err = await request(`${s.url}/notes`, { method: 'POST', body: 'x' }).then(() => undefined, (e: Error) => e)
    t.ok(err !== undefined, 'no HTTP/1.1 answer')
  }
  // Raw: what the client reads is HTTP/2 (a SETTINGS frame, then GOAWAY), no HTTP/1.1 status line.
  const raw = await new Promise<Buffer>(resolve => {
    const socket = netConnect(new URL(s.url).port as unknown as number, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))
    const got: Buffer[] = []
    socket.on('data', b => got.push(b))
    socket.on('close', () => resolve(Buffer.concat(got)))
  })
  t.notOk(raw.toString('latin1').startsWith('HTTP/'), 'not an HTTP/1.1 answer')
  // A session that speaks HTTP/2, then breaks it: no such line (it is not an HTTP/1.1 client).
  await new Promise<void>(resolve => {
    const socket = netConnect(new URL(s.url).port as unknown as number, '127.0.0.1', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x09\x00\x00\x00\x00\x00garbagegarbage'))
    socket.resume()
    socket.on('close', () => resolve())
  })
  t.equal(a.seen.length, 0, 'nothing reached the app')
  const said = parsed(lines).filter(l => l.code === 'LITEFS_NOT_H2C')
  t.equal(said.length, 1, 'said once, however many such clients')
  t.match(said[0], { level: 'warn', msg: /speaks only h2c \(--protocol h2c\)/ })
})

t.test('close() with h2c clients connected: an idle session, a held read (503), a request the app never answers (cut)', async t => {
  const { rfake, replica, lines } = await pair(t, { primary: H2C, replica: { ...H2C, drainTimeout: 300 } })
  const idle = session(t, replica.url)
  t.equal((await h2(idle, 'GET', '/litefs/health')).status, 200)
  const fresh = session(t, replica.url) // connected, no request yet
  await new Promise(resolve => fresh.once('connect', resolve))
  const busy = session(t, replica.url)
  const held = h2(busy, 'GET', '/notes', { cookie: '__txid=00000000000000ff' })
  const hang = h2(busy, 'GET', '/hang').catch((e: Error) => e)
  await until(() => replica.core.state.waiterCount === 1)
  const closedIdle = new Promise(resolve => idle.once('close', resolve))
  const closedFresh = new Promise(resolve => fresh.once('close', resolve))
  const started = performance.now()
  await replica.close()
  t.ok(performance.now() - started < 5000, 'closed within its drain')
  const h = await held
  t.equal(h.status, 503)
  t.match(JSON.parse(h.body), { code: 'LITEFS_CLOSED' })
  const cut = await hang
  t.ok(cut instanceof Error || cut.status === undefined, 'the request still in flight at drainTimeout: cut, no answer')
  await closedIdle
  await closedFresh
  t.pass('idle sessions closed (GOAWAY)')
  t.ok(parsed(lines).some(l => l.level === 'warn' && /1 request\(s\) still in flight 300 ms/.test(l.msg)), 'the cut said')
  t.equal(replica.server.listening, false)
  void rfake
})

t.test('h2c timeouts: --idle-timeout closes a session with no stream; --write-timeout a silent one; by default neither', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await fake.close() })
  const a = await app(t, fake)
  const lines: string[] = []
  const closes = async (s: Sidecar): Promise<number> => {
    const c = session(t, s.url)
    t.equal((await h2(c, 'GET', '/x')).status, 200)
    const at = performance.now()
    await new Promise(resolve => c.once('close', resolve))
    return performance.now() - at
  }
  const idle = await sidecar(t, fake, a.port, { ...H2C, server: { idleTimeout: 150 } }, lines)
  t.ok(await closes(idle) < 2000, 'idle 150 ms: closed')
  const silent = await sidecar(t, fake, a.port, { ...H2C, server: { idleTimeout: 0, writeTimeout: 150 } }, lines)
  t.ok(await closes(silent) < 2000, 'write-timeout 150 ms: closed')
  const kept = await sidecar(t, fake, a.port, H2C, lines) // h2c's default: no idle timeout
  const c = session(t, kept.url)
  t.equal((await h2(c, 'GET', '/x')).status, 200)
  await new Promise(resolve => setTimeout(resolve, 400))
  t.notOk(c.closed || c.destroyed, 'no idle timeout by default on h2c (30 s on HTTP/1.1): kept')
  const slow = h2(c, 'GET', '/hang').catch(() => undefined)
  void slow
  c.destroy()
})

t.test('the flags: --protocol, --forward-protocol, --target-protocol; bad values and HTTP/1.1-only limits', async t => {
  const base = ['--addr', ':8080', '--target', 'localhost:8000', '--db', 'app.db']
  const opts = (...more: string[]): SidecarOptions => serveOptions([...base, ...more], {}, () => {}) as SidecarOptions
  t.match(opts(), { protocol: undefined, targetProtocol: undefined, forwardProtocol: undefined }, 'defaults: HTTP/1.1; forwards as the request arrived')
  t.match(opts('--protocol', 'h2c', '--target-protocol', 'h2c'), { protocol: 'h2c', targetProtocol: 'h2c', forwardProtocol: undefined })
  t.match(opts('--protocol=http1', '--target-protocol', 'http1', '--forward-protocol', 'h2c'), { protocol: 'http1', targetProtocol: 'http1', forwardProtocol: 'http2' })
  t.match(opts('--protocol', 'h2c', '--forward-protocol', 'http1', '--write-timeout', '1s', '--idle-timeout', '5s'), { forwardProtocol: 'http1', server: { writeTimeout: 1000, idleTimeout: 5000 } })
  t.match(opts('--read-timeout', '5s'), { server: { readTimeout: 5000 } }, 'HTTP/1.1: its limits as ever')
  for (const [flag, bad] of [['protocol', 'h2'], ['forward-protocol', 'http2'], ['target-protocol', 'HTTP1']]) {
    t.throws(() => opts(`--${flag}`, bad), new UsageError(`--${flag}: expected http1 or h2c, got ${JSON.stringify(bad)}`))
  }
  t.throws(() => opts('--protocol', 'h2c', '--read-timeout', '5s'), /^--read-timeout: an HTTP\/1.1 server limit, which --protocol h2c has no counterpart for/)
  const dir = mkdtempSync(join(tmpdir(), 'serve-h2c-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'litefs.yml'), 'proxy:\n  addr: ":8080"\n  target: "localhost:8000"\n  db: "app.db"\n  read-header-timeout: 2s\n')
  t.throws(() => serveOptions(['--config', join(dir, 'litefs.yml'), '--protocol', 'h2c'], {}, () => {}), /^--read-header-timeout \(proxy.read-header-timeout in --config\): an HTTP\/1.1 server limit/)

  // The CLI: exit 2 and one line.
  const io: Io & { stderr: string } = { stderr: '', env: {}, out: () => {}, err: (s: string) => { io.stderr += s } }
  t.equal(await run(['serve', ...base, '--protocol', 'h3'], io), 2)
  t.equal(io.stderr, 'litefs-proxy serve: --protocol: expected http1 or h2c, got "h3"\n')
  // The programmatic API checks them too.
  const logger = lineLogger('silent', 'text')
  t.throws(() => createSidecar({ addr: ':1', target: 'localhost:1', db: 'a', logger, protocol: 'http2' as 'h2c' }), /option "protocol" must be "http1" or "h2c", got "http2"/)
  t.throws(() => createSidecar({ addr: ':1', target: 'localhost:1', db: 'a', logger, targetProtocol: 'h2' as 'h2c' }), /option "targetProtocol" must be "http1" or "h2c", got "h2"/)
})
