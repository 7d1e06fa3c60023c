// Issue 18, kind 4: `serve` turned a connection into a raw pipe to the app as
// soon as a request asked for an upgrade, before the app answered 101. When the
// app did not switch (it ignores `Upgrade: h2c`, which `curl --http2` sends over
// plain HTTP; it refuses a WebSocket with 403), every later request on that
// connection reached the app unseen: a POST on a replica ran on the replica.
// Now every request on a connection is decided, whatever it asked for; the
// adapters (no upgrade listener of their own) are checked to do the same.
import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FakeLitefs } from './helpers/fake-litefs.js'
import { until } from './helpers/fake-litefs.js'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { RawConnection } from './helpers/raw-http.js'
import { FakeLitefs as FakeLitefsClass } from './helpers/fake-litefs.js'
import { websocketApp } from './helpers/websocket-apps.js'
import WebSocket from 'ws'
import { readFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { wrap } from '../lib/http.js'

const H2C = { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' } // as curl 7.88 sends them
const WEBSOCKET = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }

const routes = (fake: FakeLitefs): Record<string, (req: IncomingMessage, res: ServerResponse) => void> => {
  const echo = (req: IncomingMessage, res: ServerResponse): void => {
    let body = ''
    req.on('data', c => { body += c })
    req.on('end', () => {
      if (req.method === 'POST') fake.advance(fake.txid + 1n, { event: false })
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ method: req.method, body, upgrade: req.headers.upgrade ?? null }))
    })
  }
  return { 'GET /page': echo, 'POST /page': echo }
}

/** The app's WebSocket endpoint: /ws switches and echoes; anything else is refused. */
function upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (req.url !== '/ws') {
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nforbidden')
    return
  }
  socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n')
  socket.write(head)
  socket.pipe(socket)
}

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: after a request asking for h2c, the next request on the connection is decided`, async t => {
    const { primary, replica } = await pair(t, flavour, { routes, upgrade, framework: { unread: true } })
    const c = await RawConnection.open(replica.url)
    t.teardown(() => c.close())
    c.send('GET', '/page', H2C)
    let a = await c.answer()
    t.equal(a.status, 200, 'the GET is answered in HTTP/1.1 by the replica\'s app')
    // In-process the app sees the request as the client sent it; behind serve, declined.
    t.equal(JSON.parse(a.body).upgrade, flavour === 'serve' ? null : 'h2c', flavour === 'serve' ? 'the app never saw the Upgrade' : 'in-process: the request as sent')
    c.send('POST', '/page', {}, 'after h2c')
    a = await c.answer()
    t.equal(a.status, 201)
    t.same(JSON.parse(a.body), { method: 'POST', body: 'after h2c', upgrade: null }, 'the next POST on the same connection went to the primary')
    t.match(String(a.headers['set-cookie']), /txid=/, 'with its cookie')
    c.send('POST', '/page', H2C, 'a POST asking for h2c, as curl --http2 -d sends it')
    a = await c.answer()
    t.equal(a.status, 201, 'served, not refused')
    t.same(JSON.parse(a.body), { method: 'POST', body: 'a POST asking for h2c, as curl --http2 -d sends it', upgrade: null }, 'its body whole, on the primary')
    c.send('GET', '/page')
    t.equal((await c.answer()).status, 200, 'the connection goes on')
    t.same(replica.hits, ['GET /page', 'GET /page'], "the replica's app ran the reads only")
    t.same(primary.hits, ['POST /page', 'POST /page'])
  })
}

t.test('serve: WebSocket handshakes are decided as requests; one the app refuses leaves an HTTP connection', async t => {
  const { primary, replica } = await pair(t, 'serve', { routes, upgrade })
  await t.test('refused with 403: relayed, and the next POST on the connection is forwarded', async t => {
    const c = await RawConnection.open(replica.url)
    t.teardown(() => c.close())
    c.send('GET', '/chat', WEBSOCKET)
    let a = await c.answer()
    t.equal(a.status, 403)
    t.equal(a.body, 'forbidden')
    c.send('POST', '/page', {}, 'after a refused upgrade')
    a = await c.answer()
    t.equal(a.status, 201)
    t.equal(JSON.parse(a.body).body, 'after a refused upgrade')
    t.same(primary.hits, ['POST /page'], 'on the primary')
    t.same(replica.hits, [])
  })
  await t.test('a POST asking for a WebSocket is declined and served as the write it is (was 400)', async t => {
    const c = await RawConnection.open(replica.url)
    t.teardown(() => c.close())
    c.send('POST', '/page', WEBSOCKET, 'not a handshake')
    const a = await c.answer()
    t.equal(a.status, 201)
    t.equal(JSON.parse(a.body).body, 'not a handshake')
    t.equal(primary.hits.length, 2)
  })
  await t.test('a handshake that declares a body is refused 400 and its connection closed: the body never runs (was run as the next request)', async t => {
    const smuggled = 'POST /page HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n'
    const before = { primary: primary.hits.length, replica: replica.hits.length }
    for (const [label, headers, body] of [
      ['Content-Length, to a path the app refuses', {}, smuggled],
      ['Content-Length, to the path the app switches', {}, 'hello'],
      ['Transfer-Encoding: chunked', { 'transfer-encoding': 'chunked' }, `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`]
    ] as const) {
      const c = await RawConnection.open(replica.url)
      t.teardown(() => c.close())
      replica.lines.length = 0
      c.send('GET', label.includes('switches') ? '/ws' : '/chat', { ...WEBSOCKET, ...headers }, body)
      const a = await c.answer()
      t.equal(a.status, 400, label)
      t.match(JSON.parse(a.body), { code: 'LITEFS_BAD_REQUEST', error: /has no body/ })
      t.same(a.headers.connection, ['close'])
      await until(() => c.closed, 'the connection closed')
      t.match(replica.lines.join('\n'), /WebSocket handshake has no body.*"code":"LITEFS_BAD_REQUEST"/, 'said in the log')
    }
    t.equal(primary.hits.length, before.primary, 'no write ran on the primary')
    t.equal(replica.hits.length, before.replica, "nothing reached the replica's app")
    // Content-Length: 0 is no body: the handshake goes on as any.
    const c = await RawConnection.open(replica.url)
    t.teardown(() => c.close())
    c.send('GET', '/chat', { ...WEBSOCKET, 'content-length': '0' })
    t.equal((await c.answer()).status, 403, 'Content-Length: 0 reaches the app')
  })
  await t.test('accepted: held for its TXID like any read, then piped both ways; logged as 101', async t => {
    const c = await RawConnection.open(replica.url)
    t.teardown(() => c.close())
    replica.lines.length = 0
    const txid = replica.fake.txid + 2n
    c.send('GET', '/ws', { ...WEBSOCKET, cookie: `__txid=${txid.toString(16).padStart(16, '0')}` })
    await until(() => replica.state.waiterCount === 1, 'the handshake is held')
    replica.fake.advance(txid)
    const a = await c.answer()
    t.equal(a.status, 101)
    c.write('ping\n')
    t.match(await c.until('ping\n'), /ping\n$/, 'bytes both ways')
    c.close()
    await until(() => replica.lines.some(l => l.includes('"/ws"')), 'a log line')
    t.match(JSON.parse(replica.lines.find(l => l.includes('"/ws"')) as string), { method: 'GET', path: '/ws', status: 101, kind: 'read', role: 'replica' })
    t.notMatch(replica.lines.find(l => l.includes('"/ws"')) as string, /aborted/)
  })
})

t.test('serve: a WebSocket handshake the app answers with a head over 256 KiB, or drops mid-answer', async t => {
  const { pair: makePair } = await import('./helpers/pairs.js')
  const { giveBack } = await import('../lib/sidecar/upgrade.js')
  const huge = (req: IncomingMessage, socket: Duplex): void => {
    socket.on('error', () => {}) // serve hangs up on a head it will not read
    if (req.url === '/huge') socket.end(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nx-big: ${'b'.repeat(300_000)}\r\n\r\n`)
    else socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 100\r\n\r\ncut short') // then gone, 91 bytes short
  }
  const { replica } = await makePair(t, 'serve', { routes, upgrade: huge })
  let c = await RawConnection.open(replica.url)
  c.send('GET', '/huge', WEBSOCKET)
  const a = await c.answer()
  t.equal(a.status, 502)
  t.match(JSON.parse(a.body), { code: 'LITEFS_ANSWER_TOO_LARGE' })
  c.close()
  c = await RawConnection.open(replica.url)
  c.send('GET', '/cut', WEBSOCKET)
  await until(() => c.closed, 'the client is cut: nothing more can be said once the head went out')
  const { createServer } = await import('node:http')
  const { connect } = await import('node:net')
  const server = createServer()
  let connected = 0
  server.on('connection', () => { connected++ })
  const gone = connect(1, '127.0.0.1')
  gone.on('error', () => {})
  gone.destroy()
  giveBack(server, gone, Buffer.alloc(0))
  t.equal(connected, 0, 'a connection already gone is not handed back')
})

// Walk 7: in-process, an app with a WebSocket listener behind `proxy.upgrade()`
// (ws) got every `Upgrade: h2c` request — `curl --http2`, POSTs included — and
// ws answered it 400 or 405: the request never ran. Declined now, as serve does.
for (const flavour of ['express', 'http', 'serve'] as const) {
  t.test(`${flavour} with a ws listener: a request asking for h2c is served as a plain request; WebSockets still switch`, async t => {
    const fake = await FakeLitefsClass.start({ role: 'primary', txid: 5n })
    t.teardown(async () => { await fake.close() })
    const app = await websocketApp(t, flavour, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1 }, { connection: ws => { ws.send('hello') } })
    await until(() => app.state.role === 'primary', 'primary')
    const c = await RawConnection.open(app.url)
    t.teardown(() => c.close())
    c.send('GET', '/page', H2C)
    let a = await c.answer()
    t.equal(a.status, 200, 'served, not refused by ws')
    t.equal(a.body, 'page')
    if (flavour !== 'express') { // the Express app routes GET /page only
      c.send('POST', '/page', H2C, 'a body')
      a = await c.answer()
      t.equal(a.status, 200, 'a POST asking for h2c, as curl --http2 -d sends it: served')
      t.equal(a.body, 'page')
    }
    c.send('GET', '/page')
    t.equal((await c.answer()).status, 200, 'the connection goes on in HTTP/1.1')
    const ws = new WebSocket(app.url.replace('http', 'ws') + '/chat')
    t.teardown(() => { ws.terminate() })
    t.equal(await new Promise(resolve => ws.once('message', m => { resolve(String(m)) })), 'hello', 'a WebSocket handshake still reaches the listener')
  })
}

t.test('http over TLS with a ws listener: a request asking for h2c is served as a plain request', async t => {
  const fake = await FakeLitefsClass.start({ role: 'primary', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const listener = wrap((_req, res) => { res.end('page') }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, logger: { debug () {}, info () {}, warn () {}, error () {} } })
  const tls = { key: readFileSync(new URL('./fixtures/tls/key.pem', import.meta.url)), cert: readFileSync(new URL('./fixtures/tls/cert.pem', import.meta.url)) }
  const server = createHttpsServer(tls, listener)
  server.on('upgrade', listener.upgrade((_req, socket) => { socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n') }))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await listener.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  await until(() => listener.core.state.role === 'primary', 'primary')
  const socket = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false })
  t.teardown(() => { socket.destroy() })
  let got = ''
  socket.setEncoding('latin1').on('data', (d: string) => { got += d })
  socket.write('POST /page HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\ncontent-length: 6\r\n\r\na body')
  await until(() => /\r\n\r\npage$/.test(got), 'answered')
  t.match(got, /^HTTP\/1\.1 200 /, 'served on the TLS connection, not refused by the listener')
})
