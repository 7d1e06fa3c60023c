// `litefs-proxy serve` through real sockets: a plain app (not Node's business
// how it is written) behind a sidecar on each of two fake LiteFS nodes.
import t from 'tap'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import diagnostics from 'node:diagnostics_channel'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { fakePair, startSidecar } from './helpers/sidecars.js'
import { createSidecar, parseAddr, parseTarget, type Sidecar, type SidecarOptions } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { run, type Io } from '../lib/cli/run.js'
import { serveOptions, UsageError } from '../lib/sidecar/settings.js'

type Test = typeof t

interface App { url: string, port: number, seen: Array<{ method: string, url: string, headers: IncomingMessage['headers'], body: string }>, server: Server }

/** The app behind a sidecar: records what reached it; a POST commits on its node's fake LiteFS. */
async function app (t: Test, fake: FakeLitefs | undefined, port = 0): Promise<App> {
  const seen: App['seen'] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', c => { body += c })
    req.on('end', () => {
      seen.push({ method: req.method as string, url: req.url as string, headers: req.headers, body })
      if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: 1\n\n')
        setTimeout(() => res.end('data: 2\n\n'), 20)
        return
      }
      if (req.method === 'POST' && fake !== undefined) fake.advance(fake.txid + 1n, { event: false })
      if (req.url === '/commit-then-fail') { // committed, then failed while rendering (as Django's 500 after a save)
        res.writeHead(500, { 'content-type': 'text/html' })
        return res.end('<h1>Server Error (500)</h1>')
      }
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'set-cookie': 'app=1; Path=/' })
      res.end(JSON.stringify({ method: req.method, url: req.url, body }))
    })
  })
  server.on('upgrade', (req, socket, head: Buffer) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n')
    if (req.url === '/ws-dies') { setTimeout(() => (socket as import('node:net').Socket).resetAndDestroy(), 10); return }
    socket.write(`hello ${req.headers['x-forwarded-for'] as string}\n`)
    socket.write(head) // what came with the request head, then everything after: echoed
    socket.pipe(socket)
  })
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  const p = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${p}`, port: p, seen, server }
}

const sidecar = startSidecar

async function pair (t: Test, opts: Partial<SidecarOptions> = {}): Promise<{ pfake: FakeLitefs, rfake: FakeLitefs, papp: App, rapp: App, primary: Sidecar, replica: Sidecar, lines: string[] }> {
  const { pfake, rfake } = await fakePair(t)
  const papp = await app(t, pfake)
  const rapp = await app(t, rfake)
  const lines: string[] = []
  const primary = await sidecar(t, pfake, `localhost:${papp.port}`, {}, lines)
  const replica = await sidecar(t, rfake, papp.url.replace('127.0.0.1:' + papp.port, '127.0.0.1:' + rapp.port), { primaryUrl: () => primary.url, ...opts }, lines)
  return { pfake, rfake, papp, rapp, primary, replica, lines }
}

t.test('addr and target, as LiteFS writes them', async t => {
  t.same(parseAddr(':8080'), { host: undefined, port: 8080 })
  t.same(parseAddr('0.0.0.0:80'), { host: '0.0.0.0', port: 80 })
  t.same(parseAddr('[::1]:8080'), { host: '::1', port: 8080 })
  for (const bad of ['8080', 'host:', ':99999', 'a:b']) t.equal(parseAddr(bad), undefined, bad)
  t.same(parseTarget('localhost:8000'), { origin: 'http://localhost:8000', host: 'localhost', port: 8000 })
  t.equal(parseTarget('localhost:0'), undefined, 'port 0 is no app\'s')
  t.same(parseTarget('http://[::1]:8000'), { origin: 'http://[::1]:8000', host: '::1', port: 8000 })
  for (const bad of ['localhost', 'https://x:1', 'http://x:1/path', 'http://x:1/?q', '::::']) t.equal(parseTarget(bad), undefined, bad)
  t.throws(() => createSidecar({ addr: 'x', target: 'localhost:1', db: 'a', logger: lineLogger('silent', 'text') }), /option "addr" must be ":port" or "host:port", got "x"/)
  t.throws(() => createSidecar({ addr: ':1', target: 'x', db: 'a', logger: lineLogger('silent', 'text') }), /option "target" must be "host:port" or "http:\/\/host:port" \(the app\), got "x"/)
})

t.test('a write on the primary reaches the app once and gets the __txid cookie; X-Forwarded-* as a proxy should', async t => {
  const { papp, primary, lines } = await pair(t)
  const res = await request(`${primary.url}/notes?x=1`, { method: 'POST', body: 'hello', headers: { 'x-forwarded-host': 'evil.example' } })
  t.equal(res.statusCode, 201)
  t.same(await res.body.json(), { method: 'POST', url: '/notes?x=1', body: 'hello' })
  t.same(res.headers['set-cookie'], ['app=1; Path=/', '__txid=000000000000000b; Path=/; HttpOnly; SameSite=Lax; Max-Age=300'], "the app's cookies and LiteFS's cookie name")
  const got = papp.seen.at(-1)
  t.equal(got?.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(got?.headers['x-forwarded-host'], new URL(primary.url).host, 'a client that is not trusted does not choose the host')
  t.equal(got?.headers['litefs-forwarded'], undefined, 'no loop marker towards the app')
  const line = JSON.parse(lines.find(l => l.includes('"POST"')) as string)
  t.match(line, { level: 'info', msg: 'request', method: 'POST', path: '/notes?x=1', status: 201, kind: 'write', role: 'primary', txid: '000000000000000b' })
})

t.test('a write the app answers 500 after its commit still gets the cookie: the next read must see that write', async t => {
  const { primary } = await pair(t)
  const res = await request(`${primary.url}/commit-then-fail`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 500)
  t.equal(await res.body.text(), '<h1>Server Error (500)</h1>', "the app's answer, as it sent it")
  t.same(res.headers['set-cookie'], '__txid=000000000000000b; Path=/; HttpOnly; SameSite=Lax; Max-Age=300', 'the position after its commit')
})

t.test('a write on a replica goes to the primary sidecar and its app; a read with the cookie waits for it', async t => {
  const { papp, rapp, rfake, replica } = await pair(t)
  const res = await request(`${replica.url}/notes`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 201)
  await res.body.dump()
  t.equal(papp.seen.filter(s => s.method === 'POST').length, 1)
  t.equal(rapp.seen.length, 0, "not the replica's app")
  const cookie = String(res.headers['set-cookie']).match(/__txid=[0-9a-f]+/)?.[0] as string
  const read = request(`${replica.url}/notes`, { headers: { cookie } })
  await until(() => replica.core.state.waiterCount === 1)
  rfake.advance(11n)
  t.equal((await read).statusCode, 200)
  t.equal(rapp.seen.length, 1, 'served by the replica\'s app once it had the write')
})

t.test('streams both ways; passthrough; health; upgrades piped to the app', async t => {
  const { replica } = await pair(t, { passthrough: ['/static/*'] })
  const sse = await request(`${replica.url}/sse`)
  t.equal(sse.headers['content-type'], 'text/event-stream')
  t.equal(await sse.body.text(), 'data: 1\n\ndata: 2\n\n')
  const stat = await request(`${replica.url}/static/x`, { method: 'POST', body: 'x' })
  t.equal(stat.statusCode, 201, 'passthrough: the replica\'s own app, even for a POST')
  t.equal(stat.headers['set-cookie'], 'app=1; Path=/')
  await stat.body.dump()
  const health = await request(`${replica.url}/litefs/health`)
  t.match(await health.body.json(), { status: 'ok', role: 'replica', primary: 'node-a' })
  const echoed = await new Promise<string>((resolve, reject) => {
    const { port } = new URL(replica.url)
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write('GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nping\n')
    })
    let text = ''
    socket.on('data', b => { text += b; if (text.includes('ping\n')) { socket.destroy(); resolve(text) } })
    socket.on('error', reject)
  })
  t.match(echoed, /^HTTP\/1\.1 101 Switching Protocols/)
  t.match(echoed, /hello 127\.0\.0\.1\n/, 'forwarded headers on the upgrade too')
  t.match(echoed, /ping\n$/, 'bytes both ways')
  const cut = await new Promise<string>(resolve => {
    const socket = connect(Number(new URL(replica.url).port), '127.0.0.1', () => socket.write('GET /ws-dies HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n'))
    let text = ''
    socket.on('data', b => { text += b })
    socket.on('close', () => resolve(text))
    socket.on('error', () => {})
  })
  t.match(cut, /^HTTP\/1\.1 101 Switching Protocols/)
  t.notMatch(cut, /502/, 'an app that dies mid-stream: the client is cut, no HTTP answer inside its stream')
})

t.test('an app that refuses connections: retried while it starts, then 502 LITEFS_TARGET_UNAVAILABLE', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  t.teardown(async () => { await fake.close() })
  const port = await new Promise<number>(resolve => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => resolve(p)) }) })
  const s = await sidecar(t, fake, `127.0.0.1:${port}`, { targetRetry: 60_000 })
  const pending = request(`${s.url}/x`, { method: 'POST', body: 'x' })
  await new Promise(resolve => setTimeout(resolve, 250)) // refused a few times (not a timing assertion)
  const late = await app(t, fake, port)
  t.equal((await pending).statusCode, 201, 'delivered once the app listens')
  t.equal(late.seen.length, 1)
  const quick = await sidecar(t, fake, '127.0.0.1:9', { targetRetry: 150 })
  const res = await request(`${quick.url}/x`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 502)
  t.match(await res.body.json(), { code: 'LITEFS_TARGET_UNAVAILABLE', error: /refused connections for 150 ms/ })
  const broken = createServer((req, res) => { req.socket.destroy() })
  await new Promise<void>(resolve => broken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { broken.close() })
  const b = await sidecar(t, fake, `127.0.0.1:${(broken.address() as AddressInfo).port}`)
  const r2 = await request(`${b.url}/x`, { method: 'POST', body: 'x' })
  t.equal(r2.statusCode, 502)
  t.match(await r2.body.json(), { code: 'LITEFS_TARGET_FAILED' })
})

t.test('an app gone with LiteFS (LiteFS\'s exec stops it): 503 LITEFS_UNAVAILABLE, nothing applied, said once in the log', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  t.teardown(async () => { await fake.close() })
  const port = await new Promise<number>(resolve => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => resolve(p)) }) })
  const lines: string[] = []
  const s = await sidecar(t, fake, `127.0.0.1:${port}`, { targetRetry: 60_000 }, lines)
  // undici says when a connection fails: the write is then being retried against the closed port.
  let refused = 0
  const onRefused = (): void => { refused++ }
  diagnostics.subscribe('undici:client:connectError', onRefused)
  t.teardown(() => { diagnostics.unsubscribe('undici:client:connectError', onRefused) })
  const pending = request(`${s.url}/x`, { method: 'POST', body: 'x' })
  await until(() => refused > 0)
  await fake.stop()
  await until(() => s.core.state.litefs !== 'up')
  const res = await pending
  t.equal(res.statusCode, 503, 'answered, not retried for the full minute')
  t.equal(res.headers['retry-after'], '1')
  t.match(await res.body.json(), { code: 'LITEFS_UNAVAILABLE', error: /LiteFS on this node are unavailable; nothing was applied/ })
  t.equal(lines.filter(l => l.includes('LITEFS_UNAVAILABLE')).length, 1, 'one log line')
})

t.test('an app slower than --target-timeout: 504; a client gone while held: logged as aborted; IPv6', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 3n })
  t.teardown(async () => { await fake.close() })
  const slow = createServer(() => {}) // never answers
  await new Promise<void>(resolve => slow.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { slow.closeAllConnections(); slow.close() })
  const lines: string[] = []
  const s = await sidecar(t, fake, `127.0.0.1:${(slow.address() as AddressInfo).port}`, { targetTimeout: 50, addr: '[::1]:0' }, lines)
  t.match(s.url, /^http:\/\/\[::1\]:\d+$/)
  const refused = await new Promise<string>((resolve, reject) => {
    const dead = createSidecar({ addr: '127.0.0.1:0', target: '127.0.0.1:9', db: 'app.db', mount: fake.mount, api: false, logger: lineLogger('silent', 'text', () => {}) })
    t.teardown(() => dead.close())
    void dead.listen().then(() => {
      const socket = connect(Number(new URL(dead.url).port), '127.0.0.1', () => socket.write('GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n'))
      let text = ''
      socket.on('data', b => { text += b; if (text.endsWith('}')) { socket.destroy(); resolve(text) } }) // the connection stays open for the next request
      socket.on('error', reject)
    })
  })
  t.match(refused, /^HTTP\/1\.1 502 Bad Gateway\r\n[\s\S]*"code":"LITEFS_TARGET_FAILED"/, 'an upgrade the app cannot take: 502')
  const throwing = await sidecar(t, fake, '127.0.0.1:9', { primaryUrl: () => { throw new Error('no map for this host') } })
  const bad = await request(`${throwing.url}/x`, { method: 'POST', body: 'x' })
  t.equal(bad.statusCode, 503)
  t.match(await bad.body.json(), { code: 'LITEFS_NO_PRIMARY', error: /^primaryUrl threw for the primary "node-a": no map for this host; nothing was applied$/ })
  const res = await request(`${s.url}/x`)
  t.equal(res.statusCode, 504)
  t.match(await res.body.json(), { code: 'LITEFS_FORWARD_TIMEOUT' })
  const ac = new AbortController()
  const gone = request(`${s.url}/x`, { headers: { cookie: '__txid=00000000000000ff' }, signal: ac.signal }).catch(() => 'aborted')
  await until(() => s.core.state.waiterCount === 1)
  ac.abort()
  await gone
  await until(() => lines.some(l => l.includes('"aborted":true')), 'logged')
  t.notMatch(lines.find(l => l.includes('"aborted":true')) as string, /"status"/, 'no status: nothing was answered')
})

t.test('--read-timeout below --read-header-timeout bounds the head too, as in LiteFS (Go), instead of refusing to start', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  t.teardown(async () => { await fake.close() })
  for (const [server, head] of [
    [{ readTimeout: 5000 }, 5000], // the default head timeout is 10 s: Node threw "headersTimeout … out of range"
    [{ readTimeout: 5000, readHeaderTimeout: 2000 }, 2000],
    [{ readTimeout: 5000, readHeaderTimeout: 0 }, 5000], // Go: no head timeout of its own, the whole request's applies
    [{ readHeaderTimeout: 2000 }, 2000],
    [{ readHeaderTimeout: 0 }, 0] // no deadline at all: Node's own check every 30 s stays
  ] as const) {
    const s = await sidecar(t, fake, '127.0.0.1:9', { server })
    t.equal(s.server.headersTimeout, head, JSON.stringify(server))
    t.equal(s.server.requestTimeout, server.readTimeout ?? 0)
  }
})

t.test('text log lines: fields, and none', async t => {
  const out: string[] = []
  const log = lineLogger('debug', 'text', l => out.push(l))
  log.debug({}, 'plain')
  log.error({ a: 'x y', b: 1, c: undefined }, 'fields')
  t.match(out[0], /^\S+ DEBUG plain\n$/)
  t.match(out[1], /^\S+ ERROR fields a="x y" b=1\n$/)
  log.info({ n: 4n }, 'a BigInt field') // threw "Do not know how to serialize a BigInt": serve exited
  t.match(out[2], /^\S+ INFO  a BigInt field n=4\n$/)
  const lines: string[] = []
  lineLogger('info', 'json', l => lines.push(l)).info({ n: 4n }, 'a BigInt field')
  t.match(JSON.parse(lines[0] ?? '{}'), { msg: 'a BigInt field', n: 4 })
  const quiet: string[] = []
  lineLogger('warn', 'json', l => quiet.push(l)).info({}, 'dropped')
  t.same(quiet, [])
})

t.test('close(): held requests answered 503 at once, the rest finish', async t => {
  const { replica } = await pair(t)
  const held = request(`${replica.url}/x`, { headers: { cookie: '__txid=00000000000000ff' } })
  await until(() => replica.core.state.waiterCount === 1)
  await replica.close()
  const res = await held
  t.equal(res.statusCode, 503)
  t.equal((await res.body.json() as any).code, 'LITEFS_CLOSED')
})

t.test('close(): the connections of answers in flight close with them, so the drain ends when they do', async t => {
  // A replica's forwarder keeps its connection to the primary's sidecar open and
  // sends its next write on it: unless told to close, that connection never falls
  // idle, and close() waits for drainTimeout (seen as a 10 s `docker compose
  // stop` of a primary under load, ended by SIGKILL).
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await fake.close() })
  let release = (): void => {}
  const released = new Promise<void>(resolve => { release = resolve })
  const reached: string[] = []
  const slow = createServer((req, res) => {
    reached.push(req.url as string)
    if (req.url === '/stream') { res.writeHead(200); res.write('a'); void released.then(() => res.end('b')); return }
    void released.then(() => res.end(`done ${req.url as string}`))
  })
  await new Promise<void>(resolve => slow.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { slow.closeAllConnections(); slow.close() })
  const s = await sidecar(t, fake, `127.0.0.1:${(slow.address() as AddressInfo).port}`, { drainTimeout: 60_000 })
  const client = (path: string): { text: () => string, closed: Promise<void> } => {
    const sock = connect(Number(new URL(s.url).port), '127.0.0.1')
    let text = ''
    sock.setEncoding('utf8').on('data', (d: string) => { text += d })
    sock.on('error', () => {}) // a reset, once idle
    sock.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`)
    return { text: () => text, closed: new Promise(resolve => sock.once('close', () => resolve())) }
  }
  const inApp = client('/slow') // its answer's head not sent when close() begins
  const streaming = client('/stream') // its head sent when close() begins
  await until(() => reached.length === 2 && streaming.text().includes('\r\n\r\n'))
  t.match(streaming.text(), /connection: keep-alive/i, 'kept alive before close()')
  let closed = false
  const closing = s.close().then(() => { closed = true })
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(closed, 'close() waits for the answers in flight')
  release()
  await Promise.all([inApp.closed, streaming.closed])
  await closing
  t.match(inApp.text(), /^HTTP\/1\.1 200 [^]*connection: close[^]*done \/slow$/i, 'an answer whose head was not out says connection: close, and its connection ends')
  t.match(streaming.text(), /\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n$/, 'a streamed answer is sent in full, then its connection ends')
  t.equal(s.server.listening, false, 'closed with them, long before drainTimeout')
})

t.test('close(): a request still in flight at drainTimeout is cut, and that is said', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await fake.close() })
  let reached = 0
  const never = createServer(() => { reached++ }) // answers nothing, ever
  await new Promise<void>(resolve => never.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { never.closeAllConnections(); never.close() })
  const lines: string[] = []
  const s = await sidecar(t, fake, `127.0.0.1:${(never.address() as AddressInfo).port}`, { drainTimeout: 50 }, lines)
  const sock = connect(Number(new URL(s.url).port), '127.0.0.1')
  sock.on('error', () => {})
  const gone = new Promise<void>(resolve => sock.once('close', () => resolve()))
  sock.write('GET /forever HTTP/1.1\r\nhost: x\r\n\r\n')
  await until(() => reached === 1, 'the request reached the app')
  await s.close()
  await gone
  const cut = lines.map(l => JSON.parse(l) as { msg: string, requests?: number }).find(l => /still in flight/.test(l.msg))
  t.match(cut, { requests: 1, msg: /1 request\(s\) still in flight 50 ms after the close began were cut/ }, 'said once, with the count')
})

t.test('requests its parser refuses, or that do not arrive in time: a JSON answer with a code, and a line', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await fake.close() })
  let reached = 0
  const app = createServer((_req, res) => { reached++; res.end('app') })
  await new Promise<void>(resolve => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { app.closeAllConnections(); app.close() })
  const lines: string[] = []
  const s = await sidecar(t, fake, `127.0.0.1:${(app.address() as AddressInfo).port}`, { server: { readHeaderTimeout: 300 } }, lines)
  const send = async (text: string, then?: (sock: ReturnType<typeof connect>) => void): Promise<string> => {
    const sock = connect(Number(new URL(s.url).port), '127.0.0.1')
    let got = ''
    sock.setEncoding('latin1').on('data', (d: string) => { got += d })
    sock.on('error', () => {})
    const closed = new Promise<void>(resolve => sock.once('close', () => resolve()))
    sock.write(text)
    then?.(sock)
    await closed
    return got
  }
  for (const [label, text, status, code] of [
    ['an invalid header line', 'GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n', 400, 'LITEFS_BAD_REQUEST'],
    ['Content-Length beside Transfer-Encoding', 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'LITEFS_BAD_REQUEST'],
    ['a head past 16 KiB', `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'LITEFS_HEAD_TOO_LARGE'],
    // Its deadline is checked often enough to be met: Node looks every 30 s by default.
    ['a head that stalls past --read-header-timeout', 'GET / HTTP/1.1\r\nhost: x\r\n', 408, 'LITEFS_REQUEST_TIMEOUT']
  ] as const) {
    lines.length = 0
    const answer = await send(text)
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${label}: ${status}`)
    const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string, error: string }
    t.equal(json.code, code, label)
    t.match(json.error, /nothing reached the app/)
    t.ok(lines.some(l => (JSON.parse(l) as { code?: string }).code === code), `${label}: a line says it`)
  }
  lines.length = 0
  t.equal(await send('GET / HTTP/1.1\r\nhost: x\r\n', sock => { sock.resetAndDestroy() }), '', 'a client that reset mid-head: nothing sent')
  t.equal(reached, 0, 'none reached the app')
  const ok = await send('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
  t.match(ok, /^HTTP\/1\.1 200 [^]*app$/, 'the server goes on')
  t.notOk(lines.some(l => /not valid|did not arrive/.test(l)), 'nothing said for the reset')
})

t.test('settings: LiteFS proxy flags and litefs.yml, then our own', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'serve-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const yml = join(dir, 'litefs.yml')
  writeFileSync(join(dir, 'bare.yml'), 'proxy:\n  addr: ":1"\n  target: "$HOST:2"\n  db: "$UNSET_VAR"\n')
  t.match(serveOptions(['--config', join(dir, 'bare.yml')], { HOST: 'app' }, () => {}), { target: 'app:2', db: '' }, '$NAME too; unset is empty, as LiteFS expands')
  t.equal((serveOptions(['--config', join(dir, 'bare.yml')], {}, () => {}) as SidecarOptions).api, undefined, 'no http: section, no api from it')
  for (const [addr, api] of [['0.0.0.0:1', 'http://localhost:1'], ['[::]:2', 'http://localhost:2'], ['10.0.0.5:3', 'http://10.0.0.5:3']]) {
    writeFileSync(join(dir, 'h.yml'), `http:\n  addr: "${addr}"\nproxy:\n  addr: ":1"\n  target: "x:2"\n  db: "d"\n`)
    t.equal((serveOptions(['--config', join(dir, 'h.yml')], {}, () => {}) as SidecarOptions).api, api, addr)
  }
  writeFileSync(yml, `fuse:\n  dir: "/mnt/\${NODE}"\nhttp:\n  addr: ":20303"\nproxy:\n  addr: ":8080"\n  target: "localhost:8000"\n  db: "db.sqlite3"\n  passthrough: ["/static/*", "*.png"]\n  primary-redirect-timeout: "1m30s"\n  max-lag: "0"\n  read-header-timeout: 2s\n  debug: true\n`)
  const o = serveOptions(['--config', yml, '--db', 'other.db', '--secret', '0123456789abcdef', '--api', 'false', '--log-format', 'json'], { NODE: 'node-2' }, () => {}) as SidecarOptions
  t.match(o, { addr: ':8080', target: 'localhost:8000', db: 'other.db', mount: '/mnt/node-2', api: false, passthrough: ['/static/*', '*.png'], primaryRedirectTimeout: 90_000, maxLag: 0, server: { readHeaderTimeout: 2000 }, secret: ['0123456789abcdef'] })
  const fromYml = serveOptions(['--config', yml], {}, () => {}) as SidecarOptions
  t.equal(fromYml.api, 'http://localhost:20303', 'http.addr names the API')
  const all = serveOptions(['--addr=:1', '--target', 'h:2', '--db', 'd', '--always-forward', '/cb', '--txid-timeout', '2s', '--txid-timeout-action', 'primary', '--forward', 'fly-replay',
    '--forward-timeout', '1s', '--forward-body-limit', '10', '--target-timeout', '3s', '--cookie-name', 'litefs-txid', '--cookie-max-age', '1m', '--token-header', 'X-Txid', '--trust-proxy', '--health-path', 'false',
    '--read-timeout', '1s', '--write-timeout', '1s', '--idle-timeout', '1s', '--primary-url', 'http://{hostname}:9', '--mount', '/m', '--log-level', 'warn', '--debug=false'], { LITEFS_PROXY_SECRET: 'aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb' }, () => {}) as SidecarOptions
  t.match(all, { alwaysForward: ['/cb'], readTimeout: 2000, readTimeoutAction: 'primary', forward: 'fly-replay', forwardTimeout: 1000, forwardBodyLimit: 10, targetTimeout: 3000, cookieName: 'litefs-txid', cookieMaxAge: 60_000, tokenHeader: 'X-Txid', trustProxy: true, healthPath: false, server: { readTimeout: 1000, writeTimeout: 1000, idleTimeout: 1000 }, secret: ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb'], mount: '/m' })
  t.equal(serveOptions(['--help'], {}, () => {}), undefined)
  t.match(serveOptions(['--addr', ':1', '--target', 'x:1', '--db', 'd', '--token-header', 'false', '--txid-timeout-action', 'stale', '--peer-cookie', 'txnum', '--peer-cookie', '__txid'], {}, () => {}), { tokenHeader: false, readTimeoutAction: 'stale', peerCookies: ['txnum', '__txid'] })
  const mapped = serveOptions(['--addr', ':1', '--target', 'x:1', '--db', 'd', '--primary-url', 'node-1=http://127.0.0.1:8081, node-2=http://127.0.0.1:8082'], {}, () => {}) as SidecarOptions
  const fn = mapped.primaryUrl as (h: string) => string
  t.equal(fn('node-2'), 'http://127.0.0.1:8082', 'a hostname → URL map, for names that do not resolve')
  t.throws(() => fn('node-9'), /--primary-url has no URL for the primary "node-9"/)
  t.throws(() => serveOptions(['--addr', ':1', '--target', 'x:1', '--db', 'd', '--primary-url', 'nonsense'], {}, () => {}), /--primary-url: expected a URL, a template with \{hostname\}, or host=url pairs/)
  for (const map of ['node-1=not a url', 'node-1=http://127.0.0.1:8081,node-2', 'node-1=nonsense']) {
    t.throws(() => serveOptions(['--addr', ':1', '--target', 'x:1', '--db', 'd', '--primary-url', map], {}, () => {}), /--primary-url: expected a URL, a template with \{hostname\}, or host=url pairs/, `a map with a bad pair: ${map}`)
  }
  // A static primary's own URL, as a user with one fixed primary writes it (issue 23).
  const plain = serveOptions(['--addr', ':1', '--target', 'x:1', '--db', 'd', '--primary-url', 'http://127.0.0.1:8081'], {}, () => {}) as SidecarOptions
  t.equal(plain.primaryUrl, 'http://127.0.0.1:8081')
  for (const [argv, re] of [
    [['--adr', ':1'], /unknown flag --adr \(litefs-proxy serve --help lists them\)/],
    [['--fuse-dir', '/litefs'], /unknown flag --fuse-dir: here that is --mount \(LiteFS's fuse\.dir\)/], // LiteFS's key as a flag (walk 6)
    [['addr'], /unexpected argument "addr"/],
    [['--addr'], /--addr needs a value/],
    [['--addr', ':1', '--addr', ':2'], /--addr is given twice/],
    [['--debug=yes'], /--debug takes no value/],
    [['--addr', ':1', '--target', 'x:1'], /--db is required/],
    [['--addr', ':1', '--target', 'x:1', '--db', 'd', '--max-lag', 'soon'], /--max-lag: expected a duration such as 10s/],
    [['--addr', ':1', '--target', 'x:1', '--db', 'd', '--forward', 'magic'], /--forward: expected http or fly-replay, got "magic"/],
    [['--addr', ':1', '--target', 'x:1', '--db', 'd', '--forward-body-limit', '-1'], /--forward-body-limit: expected a number of bytes/],
    [['--config', join(dir, 'none.yml')], /--config .*none\.yml: ENOENT/]
  ] as const) {
    t.throws(() => serveOptions(argv, {}, () => {}), re, argv.join(' '))
  }
  for (const [text, re] of [
    [': : :', /not valid YAML/],
    ['just text', /no mapping at the top/],
    ['proxy: [1]', /proxy: must be a mapping/],
    ['proxy:\n  nope: 1', /unknown key proxy\.nope/],
    ['proxy:\n  passthrough: "/x"', /proxy\.passthrough must be a list of strings/],
    ['proxy:\n  debug: "yes"', /proxy\.debug must be true or false/],
    ['http:\n  addr: "nowhere"', /http\.addr "nowhere" is not host:port/]
  ] as const) {
    writeFileSync(yml, text)
    t.throws(() => serveOptions(['--config', yml], {}, () => {}), re, text)
  }
  t.ok(new UsageError('x') instanceof Error)
})

function io (): Io & { stdout: string, stderr: string } {
  const o = { stdout: '', stderr: '', env: {}, out: (s: string) => { o.stdout += s }, err: (s: string) => { o.stderr += s } }
  return o
}

t.test('the command line: usage, one clear line and exit 2 for bad input', async t => {
  let o = io()
  t.equal(await run([], o), 2)
  t.match(o.stderr, /^Usage: litefs-proxy <command>/)
  o = io(); t.equal(await run(['--help'], o), 0); t.match(o.stdout, /Commands:[\s\S]*--version/)
  o = io(); t.equal(await run(['--version'], o), 0); t.equal(o.stdout, 'litefs-proxy unknown\n', 'a version nobody gave: said as unknown')
  o = io(); t.equal(await run(['config', '--help'], o) !== undefined, true, 'config is a command')
  o = io(); t.equal(await run(['bogus'], o), 2); t.equal(o.stderr, 'litefs-proxy: unknown command "bogus" (serve or config; litefs-proxy --help)\n')
  o = io(); t.equal(await run(['serve'], o), 2); t.match(o.stderr, /^Usage: litefs-proxy serve/)
  t.match(o.stderr, /--passthrough '\/static\/\*'/, 'with an example')
  o = io(); t.equal(await run(['serve', '--help'], o), 0); t.match(o.stdout, /--primary-redirect-timeout/)
  o = io(); t.equal(await run(['serve', '--addr', ':1'], o), 2); t.equal(o.stderr, 'litefs-proxy serve: --target is required (or proxy.target in the --config file)\n')
  o = io(); t.equal(await run(['serve', '--addr', ':1', '--target', 'x', '--db', 'd'], o), 2); t.equal(o.stderr, 'litefs-proxy serve: --target: expected the app\'s host:port or http://host:port, e.g. localhost:8000, got "x"\n')
  o = io(); t.equal(await run(['serve', '--addr', ':1', '--target', 'x:1', '--db', 'd', '--secret', 'short'], o), 2); t.equal(o.stderr, 'litefs-proxy serve: --secret: expected at least 16 characters (repeat the flag to rotate: the first signs), got one of 5 characters\n')
  const taken = createServer().listen(0, '127.0.0.1')
  await new Promise(resolve => taken.once('listening', resolve))
  t.teardown(() => { taken.close() })
  o = io(); t.equal(await run(['serve', '--addr', `127.0.0.1:${(taken.address() as AddressInfo).port}`, '--target', 'x:1', '--db', 'd', '--api', 'false', '--mount', '/nonexistent'], o), 1)
  t.match(o.stderr, /^litefs-proxy serve: cannot listen: listen EADDRINUSE/)
})

t.test('`litefs-proxy serve` as a process: listens, serves, stops cleanly on SIGTERM', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 4n })
  t.teardown(async () => { await fake.close() })
  const target = await app(t, fake)
  const child = spawn(process.execPath, [...process.execArgv, new URL('../lib/cli/main.ts', import.meta.url).pathname, 'serve',
    '--addr', '127.0.0.1:0', '--target', `127.0.0.1:${target.port}`, '--db', 'app.db', '--mount', fake.mount, '--api', fake.apiUrl], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { out += b })
  await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out), 'listening')
  t.match(out, /app at 127\.0\.0\.1:\d+, database app\.db in .*, LiteFS API http:\/\/127\.0\.0\.1:\d+/)
  const url = /listening on (http:\/\/\S+),/.exec(out)?.[1] as string
  await until(() => fake.subscribers === 1)
  const res = await request(`${url}/x`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 201)
  await res.body.dump()
  await until(() => /INFO {2}request method=POST path=\/x status=201 ms=[\d.]+ kind=write role=primary txid=0000000000000005/.test(out), 'a log line for it')
  const code = await new Promise<number | null>(resolve => { child.once('exit', resolve); child.kill('SIGTERM') })
  t.equal(code, 0)
  const usage = spawn(process.execPath, [...process.execArgv, new URL('../lib/cli/main.ts', import.meta.url).pathname], { stdio: 'ignore' })
  t.equal(await new Promise(resolve => usage.once('exit', resolve)), 2, 'no command: usage, exit 2')
  const version = spawn(process.execPath, [...process.execArgv, new URL('../lib/cli/main.ts', import.meta.url).pathname, '--version'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let printed = ''
  version.stdout.on('data', b => { printed += b })
  t.equal(await new Promise(resolve => version.once('exit', resolve)), 0)
  t.equal(printed, `litefs-proxy ${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string}\n`, '--version: the package\'s version (issue 23)')
})

void httpRequest

t.test('a misconfiguration is said once: in the log when it shows warnings, else as a process warning', async t => {
  for (const [level, expectLines, expectProcess] of [['info', 1, 0], ['error', 0, 1]] as const) {
    const mount = `/nonexistent-sidecar-${level}`
    const lines: string[] = []
    const seen: string[] = []
    const on = (w: Error & { code?: string }): void => { if (w.message.includes(mount)) seen.push(w.code as string) }
    process.on('warning', on)
    const s = createSidecar({ addr: '127.0.0.1:0', target: '127.0.0.1:9', db: 'app.db', mount, api: false, logger: lineLogger(level, 'text', l => lines.push(l)) })
    await s.listen()
    await until(() => lines.some(l => l.includes(mount)) || seen.length > 0)
    await new Promise(resolve => setImmediate(resolve)) // a process warning is emitted on the next tick
    process.off('warning', on)
    await s.close()
    t.equal(lines.filter(l => l.includes(mount)).length, expectLines, `--log-level ${level}: lines in its log`)
    t.same(seen, expectProcess === 1 ? ['LITEFS_MOUNT'] : [], `--log-level ${level}: process warnings`)
  }
})

t.test('CONNECT (a tunnel): answered 501 LITEFS_CONNECT_UNSUPPORTED with its log line, not dropped; nothing reaches the app', async t => {
  for (const role of ['primary', 'replica'] as const) {
    const fake = await FakeLitefs.start({ role, primary: 'node-a', txid: 5n })
    t.teardown(async () => { await fake.close() })
    const target = await app(t, fake)
    const lines: string[] = []
    const s = await sidecar(t, fake, `127.0.0.1:${target.port}`, {}, lines)
    const port = Number(new URL(s.url).port)
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => { socket.write('CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n') })
      let got = ''
      socket.on('data', c => { got += String(c) })
      socket.on('end', () => { resolve(got) })
      socket.on('error', reject)
    })
    t.match(answer, /^HTTP\/1\.1 501 Not Implemented\r\n/, `${role}: 501`)
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string }
    t.equal(body.code, 'LITEFS_CONNECT_UNSUPPORTED')
    t.equal(target.seen.length, 0, 'nothing reached the app')
    t.match(lines.map(l => JSON.parse(l)), [{ method: 'CONNECT', path: 'example.com:443', status: 501, code: 'LITEFS_CONNECT_UNSUPPORTED' }])
    // The server goes on as before.
    t.equal((await request(`${s.url}/x`)).statusCode, 200)
  }
})

t.test('CONNECT pipelined behind a write: the write is answered first, then the 501 (the 501 took its place: a write applied, read as "nothing reached the app")', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const target = await app(t, fake)
  const lines: string[] = []
  const s = await sidecar(t, fake, `127.0.0.1:${target.port}`, {}, lines)
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(new URL(s.url).port), '127.0.0.1', () => {
      socket.write('POST /notes HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi' + 'CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n')
    })
    let got = ''
    socket.on('data', c => { got += String(c) })
    socket.on('end', () => { resolve(got) })
    socket.on('error', reject)
  })
  t.same(target.seen.map(r => `${r.method} ${r.url} ${r.body}`), ['POST /notes hi'], 'the write reached the app, once')
  t.match(answer, /^HTTP\/1\.1 201 Created\r\n[^]*"body":"hi"[^]*HTTP\/1\.1 501 Not Implemented\r\n/, 'its 201 first, then the 501')
  const logged = lines.map(l => JSON.parse(l) as { method: string, status: number })
  t.same(logged.map(l => `${l.method} ${l.status}`).sort(), ['CONNECT 501', 'POST 201'], 'each logged once')
  t.notMatch(lines.join('\n'), /aborted/, 'the write\'s answer was not cut')
})
