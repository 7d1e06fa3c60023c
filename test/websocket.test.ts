// WebSockets (issue 22, item 3) through real sockets, in each adapter as the
// README wires it (Fastify with @fastify/websocket; Express and node:http with
// `ws` behind `proxy.upgrade()`) and behind `litefs-proxy serve`, each node on
// its own stand-in LiteFS: a handshake carrying a TXID ahead of the replica is
// held until the replica has it, and the app's first message sees that
// position; a handshake on an `alwaysForward` path is tunnelled to the
// primary, messages flowing both ways; passthrough is untouched; a primary
// that cannot be reached, or a read held too long, gets a clear answer on the
// raw connection; a client that leaves while held lets go of its wait. The
// last test runs the same on the dev cluster, whose replication is real SQLite.
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import WebSocket from 'ws'
import { litefs as fastifyLitefs } from '../lib/fastify.js'
import { CHANNELS, wrap } from '../lib/http.js'
import { LitefsCore } from '../lib/core/proxy.js'
import type { NodeState } from '../lib/core/node-state.js'
import { MAX_EARLY_BYTES } from '../lib/core/upgrade-socket.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { createDevCluster, type DevNode } from '../lib/dev/index.js'
import { RawConnection } from './helpers/raw-http.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { websocketApp, type WsFlavour as Flavour, WS_FLAVOURS as FLAVOURS } from './helpers/websocket-apps.js'

type Test = Pick<typeof t, 'teardown'>

const quiet = { debug () {}, info () {}, warn () {}, error () {} }
const hex = (n: bigint): string => n.toString(16).padStart(16, '0')
const HANDSHAKE = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }
/** Paths: /admin/* writes (alwaysForward), /raw/* is passthrough, anything else a read. */
const PATHS = { alwaysForward: ['/admin/*'], passthrough: ['/raw/*'] }

interface WsNode {
  url: string
  state: NodeState
  fake: FakeLitefs
  /** The loop-guard header of each connection the app accepted, by path. */
  accepted: Array<{ path: string, forwarded: string | null }>
}

/** The app's WebSocket endpoint: says who it is and where its database is, then echoes. */
function greet (role: string, fake: FakeLitefs, accepted: WsNode['accepted'], ws: WebSocket, req: IncomingMessage, kind: string | undefined): void {
  const forwarded = (req.headers['litefs-forwarded'] as string | undefined) ?? null
  accepted.push({ path: req.url as string, forwarded })
  ws.send(JSON.stringify({ node: role, path: req.url, position: String(fake.txid), kind: kind ?? null, forwarded }))
  ws.on('message', m => { ws.send(`${role}:${String(m)}`) })
}

async function listen (server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** One node of `flavour` on its own stand-in LiteFS, wired as the README says. */
async function wsNode (t: Test, flavour: Flavour, role: 'primary' | 'replica', options: Record<string, unknown>): Promise<WsNode> {
  const fake = await FakeLitefs.start({ role, primary: 'node-a', txid: role === 'primary' ? 10n : 5n })
  t.teardown(async () => { await fake.close() })
  const accepted: WsNode['accepted'] = []
  const app = await websocketApp(t, flavour, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...PATHS, ...options }, {
    connection: (ws, req, kind) => { greet(role, fake, accepted, ws, req, kind) },
    decline: req => req.url === '/admin/refused'
  })
  const state = app.state
  await until(() => state.litefs === 'up' && (role === 'primary' ? state.role === 'primary' : state.primaryHostname === 'node-a'), `the ${role} follows LiteFS`)
  return { url: app.url, state, fake, accepted }
}

/** A client, its messages in order. */
class Client {
  readonly ws: WebSocket
  readonly messages: string[] = []
  readonly opened: Promise<void>
  private wake: (() => void) | undefined
  constructor (t: Test, url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url.replace('http', 'ws'), { headers })
    this.ws.on('message', m => { this.messages.push(String(m)); this.wake?.() })
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve)
      this.ws.once('error', reject)
    })
    t.teardown(() => { this.ws.terminate() })
  }

  /** The n-th message (0-based), once it came. */
  async message (n: number): Promise<string> {
    for (let i = 0; this.messages.length <= n; i++) {
      if (i > 1000) throw new Error('no message')
      await new Promise<void>(resolve => { this.wake = resolve })
    }
    return this.messages[n]
  }
}

/** A masked client text frame (RFC 6455 §5.2), as a client sends it. */
function frame (text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))])
}

const tokenCookie = (txid: bigint): Record<string, string> => ({ cookie: `litefs-txid=${hex(txid)}` })

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: WebSocket handshakes are decided as requests`, async t => {
    const primary = await wsNode(t, flavour, 'primary', {})
    const replica = await wsNode(t, flavour, 'replica', { primaryUrl: () => primary.url })

    await t.test('a handshake carrying a TXID ahead of the replica is held until the replica has it', async t => {
      const client = new Client(t, `${replica.url}/live`, tokenCookie(7n))
      await until(() => replica.state.waiterCount === 1, 'the handshake is held')
      t.equal(client.ws.readyState, WebSocket.CONNECTING, 'not switched while held')
      t.same(replica.accepted, [], 'the app has not seen it')
      replica.fake.advance(7n)
      await client.opened
      t.match(JSON.parse(await client.message(0)), { node: 'replica', path: '/live', position: '7' }, "the app's first message sees the client's write")
      if (flavour !== 'serve') t.equal(JSON.parse(client.messages[0]).kind, 'read')
      client.ws.send('hello')
      t.equal(await client.message(1), 'replica:hello', 'messages both ways')
      client.ws.close()
    })

    await t.test('the token header holds it too; a handshake the replica is not behind opens at once', async t => {
      const held = new Client(t, `${replica.url}/live`, { 'litefs-txid': hex(9n) })
      await until(() => replica.state.waiterCount === 1, 'held for the token header')
      const now = new Client(t, `${replica.url}/live`, tokenCookie(3n))
      await now.opened
      t.match(JSON.parse(await now.message(0)), { node: 'replica', position: '7' }, 'not held: the replica has TXID 3')
      t.equal(held.ws.readyState, WebSocket.CONNECTING)
      replica.fake.advance(9n)
      await held.opened
      t.match(JSON.parse(await held.message(0)), { node: 'replica', position: '9' })
    })

    await t.test('a handshake on an alwaysForward path is tunnelled to the primary', async t => {
      const client = new Client(t, `${replica.url}/admin/live`, tokenCookie(999n))
      await client.opened
      const hello = JSON.parse(await client.message(0))
      t.match(hello, { node: 'primary', path: '/admin/live', position: '10' }, "the primary's app answered")
      t.type(hello.forwarded, 'string', 'with the loop-guard marker')
      if (flavour !== 'serve') t.equal(hello.kind, 'write', 'decided there as a write served locally')
      client.ws.send('ping')
      t.equal(await client.message(1), 'primary:ping', 'messages both ways through the tunnel')
      client.ws.send('again')
      t.equal(await client.message(2), 'primary:again')
      t.same(replica.accepted.filter(a => a.path === '/admin/live'), [], "the replica's app never saw it")
      t.equal(replica.state.waiterCount, 0)
      client.ws.close()
    })

    await t.test('passthrough is untouched: no wait for a TXID far ahead', async t => {
      const client = new Client(t, `${replica.url}/raw/live`, tokenCookie(999n))
      await client.opened
      t.match(JSON.parse(await client.message(0)), { node: 'replica', path: '/raw/live', forwarded: null })
      if (flavour !== 'serve') t.equal(JSON.parse(client.messages[0]).kind, 'passthrough')
      t.equal(replica.state.waiterCount, 0)
      client.ws.close()
    })

    await t.test('a client that leaves while held lets go of its wait', async t => {
      const heldBefore = LitefsCore.heldInProcess
      const c = await RawConnection.open(replica.url)
      c.send('GET', '/live', { ...HANDSHAKE, ...tokenCookie(50n) })
      await until(() => replica.state.waiterCount === 1, 'held')
      c.socket.end() // a FIN, not a reset: the server's sockets allow half-open ones
      await until(() => replica.state.waiterCount === 0, 'the wait is let go')
      await until(() => c.closed, 'the connection is closed')
      t.equal(LitefsCore.heldInProcess, heldBefore, 'nothing counted as held any more')
      const r = await RawConnection.open(replica.url)
      r.send('GET', '/live', { ...HANDSHAKE, ...tokenCookie(50n) })
      await until(() => replica.state.waiterCount === 1, 'held')
      r.close() // a reset
      await until(() => replica.state.waiterCount === 0, 'let go after a reset too')
    })

    await t.test('what the client sends while held reaches the app after the switch', async t => {
      const c = await RawConnection.open(replica.url)
      t.teardown(() => c.close())
      c.write(`GET /live HTTP/1.1\r\nhost: test\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\ncookie: litefs-txid=${hex(11n)}\r\n\r\n`)
      c.write(frame('early'))
      await until(() => replica.state.waiterCount === 1, 'held')
      c.write(frame('while held'))
      replica.fake.advance(11n)
      const a = await c.answer()
      t.equal(a.status, 101)
      const seen = await c.until('replica:while held')
      t.match(seen, /replica:early[\s\S]*replica:while held/, 'both frames, in order')
    })

    await t.test("a read held past readTimeout with readTimeoutAction 'primary' is tunnelled to the primary", async t => {
      const fallback = await wsNode(t, flavour, 'replica', { primaryUrl: () => primary.url, readTimeout: 50, readTimeoutAction: 'primary' })
      const client = new Client(t, `${fallback.url}/live`, tokenCookie(8n)) // the primary has it (10), this replica (5) never will here
      await client.opened
      t.match(JSON.parse(await client.message(0)), { node: 'primary', path: '/live' })
      t.same(fallback.accepted, [])
      client.ws.close()
    })

    await t.test('the primary itself hands a writing handshake to its own app', async t => {
      const client = new Client(t, `${primary.url}/admin/live`)
      await client.opened
      t.match(JSON.parse(await client.message(0)), { node: 'primary', forwarded: null })
      client.ws.close()
    })
  })

  t.test(`${flavour}: clear answers on the raw connection`, async t => {
    // A replica whose primary is gone (nothing listens where it should be).
    const dead = createNetServer()
    const deadUrl = await listen(dead as unknown as Server)
    await new Promise(resolve => dead.close(resolve))
    const replica = await wsNode(t, flavour, 'replica', { primaryUrl: () => deadUrl, readTimeout: 100, primaryRedirectTimeout: 100 })

    await t.test('a read held past readTimeout: 504 LITEFS_READ_TIMEOUT', async t => {
      const c = await RawConnection.open(replica.url)
      t.teardown(() => c.close())
      c.send('GET', '/live', { ...HANDSHAKE, ...tokenCookie(50n) })
      const a = await c.answer()
      t.equal(a.status, 504)
      t.match(JSON.parse(a.body), { code: 'LITEFS_READ_TIMEOUT' })
      t.match(a.headers['content-type'], ['application/json; charset=utf-8'])
      if (flavour !== 'serve') {
        t.same(a.headers.connection, ['close'], 'the connection ends with the answer')
        await until(() => c.closed, 'closed')
      }
    })

    await t.test('a writing handshake with the primary unreachable: 503 LITEFS_NO_PRIMARY', async t => {
      const c = await RawConnection.open(replica.url)
      t.teardown(() => c.close())
      c.send('GET', '/admin/live', HANDSHAKE)
      const a = await c.answer()
      t.equal(a.status, 503)
      t.match(JSON.parse(a.body), { code: 'LITEFS_NO_PRIMARY', error: /could not be reached \(ECONNREFUSED\)/ })
      t.same(a.headers['retry-after'], ['1'])
      t.equal(replica.accepted.length, 0, "the replica's app never saw either")
    })
  })
}

t.test('express and node:http: an upgrade the primary declines is relayed', async t => {
  for (const flavour of ['express', 'http'] as const) {
    const primary = await wsNode(t, flavour, 'primary', {})
    const replica = await wsNode(t, flavour, 'replica', { primaryUrl: () => primary.url })
    const c = await RawConnection.open(replica.url)
    t.teardown(() => c.close())
    c.send('GET', '/admin/refused', HANDSHAKE)
    const a = await c.answer()
    t.equal(a.status, 403, flavour)
    t.equal(a.body, 'refused')
  }
})

t.test('node:http: a primary that takes the connection and fails, or never answers, or does not resolve', async t => {
  const sockets = new Set<Socket>()
  let behaviour: 'eager' | 'drop' | 'silent' = 'eager'
  const fakePrimary = createNetServer(socket => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('data', () => {
      if (behaviour === 'drop') socket.destroy()
      // Switches and speaks at once, in the same write: bytes that come with the 101's head.
      if (behaviour === 'eager') socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\nhello at once')
    })
  })
  const fakeUrl = await listen(fakePrimary as unknown as Server)
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise(resolve => fakePrimary.close(resolve)) })
  let primaryUrl = fakeUrl
  const warnings: string[] = []
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const listener = wrap((_req, res) => { res.end() }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...PATHS, primaryUrl: () => primaryUrl, forwardTimeout: 100, primaryRedirectTimeout: 200, logger: { ...quiet, warn: (_o, m) => { warnings.push(m) } } })
  const server = createServer(listener)
  server.on('upgrade', listener.upgrade(() => { t.fail('never the replica\'s app') }))
  const url = await listen(server)
  t.teardown(async () => { await listener.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  await until(() => listener.core.state.primaryHostname === 'node-a')
  const ask = async (): Promise<{ status: number, body: Record<string, string> }> => {
    const c = await RawConnection.open(url)
    c.send('GET', '/admin/live', HANDSHAKE)
    const a = await c.answer()
    c.close()
    return { status: a.status, body: JSON.parse(a.body) }
  }
  const eager = await RawConnection.open(url)
  eager.send('GET', '/admin/live', HANDSHAKE)
  t.equal((await eager.answer()).status, 101)
  t.match(await eager.until('hello at once'), /hello at once$/, 'what came with the 101 reaches the client')
  eager.close()
  behaviour = 'drop'
  t.match(await ask(), { status: 502, body: { code: 'LITEFS_FORWARD_FAILED', error: /the primary at .* failed before answering the WebSocket handshake/ } }, 'taken, then dropped: not retried')
  behaviour = 'silent'
  t.match(await ask(), { status: 504, body: { code: 'LITEFS_FORWARD_TIMEOUT', error: /did not answer the WebSocket handshake within 100 ms/ } })
  // The client leaves while the primary has not answered: the handshake to the primary goes with it.
  const before = sockets.size
  const c = await RawConnection.open(url)
  c.send('GET', '/admin/live', HANDSHAKE)
  await until(() => sockets.size === before + 1, 'the handshake reached the primary')
  const upstream = [...sockets].at(-1) as Socket
  c.close()
  await until(() => upstream.destroyed, 'the connection to the primary is closed too')
  primaryUrl = 'http://no-such-primary.invalid:1'
  t.match(await ask(), { status: 503, body: { code: 'LITEFS_NO_PRIMARY' } })
  t.ok(warnings.some(w => /does not resolve/.test(w)), 'the unresolved primary is said')
  // An https primary is spoken to over TLS, its certificate checked (the fixture's is self-signed: refused).
  const tls = { key: readFileSync(new URL('./fixtures/tls/key.pem', import.meta.url)), cert: readFileSync(new URL('./fixtures/tls/cert.pem', import.meta.url)) }
  const secure = createHttpsServer(tls, (_req, res) => { res.end() })
  secure.on('upgrade', () => { t.fail('a certificate not trusted is never sent a handshake') })
  const secureUrl = (await listen(secure as unknown as Server)).replace('http:', 'https:')
  t.teardown(async () => { secure.closeAllConnections(); await new Promise(resolve => secure.close(resolve)) })
  primaryUrl = secureUrl
  t.match(await ask(), { status: 502, body: { code: 'LITEFS_FORWARD_FAILED', error: /SELF_SIGNED|certificate/i } })
})

t.test('node:http: a client gone between two attempts to reach the primary is not tunnelled', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const dead = createNetServer()
  const deadUrl = await listen(dead as unknown as Server)
  await new Promise(resolve => dead.close(resolve))
  const listener = wrap((_req, res) => { res.end() }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...PATHS, primaryUrl: () => deadUrl, primaryRedirectTimeout: 10_000, logger: quiet })
  const server = createServer(listener)
  server.on('upgrade', listener.upgrade(() => { t.fail('never the app') }))
  const url = await listen(server)
  t.teardown(async () => { await listener.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  await until(() => listener.core.state.primaryHostname === 'node-a')
  const outcomes: string[] = []
  // The first attempt is refused; the client's connection is cut as that is published, before the next attempt.
  const onEnd = (m: unknown): void => {
    const { request, outcome } = m as { request: IncomingMessage, outcome: string }
    outcomes.push(outcome)
    if (outcomes.length === 1) request.socket.destroy()
  }
  subscribe(CHANNELS.forwardEnd, onEnd)
  t.teardown(() => { unsubscribe(CHANNELS.forwardEnd, onEnd) })
  const c = await RawConnection.open(url)
  c.send('GET', '/admin/live', HANDSHAKE)
  await until(() => outcomes.length === 2, 'a second attempt')
  t.same(outcomes, ['failed', 'gone'], 'refused, then the client was gone: nothing sent')
  await until(() => c.closed)
})

t.test('node:http: a client sending more than a handshake while held is cut; a failure is a 500', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const listener = wrap((_req, res) => { res.end() }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...PATHS, primaryUrl: () => { throw new Error('no map for this host') }, logger: quiet })
  const server = createServer(listener)
  server.on('upgrade', listener.upgrade(() => { t.fail('never the app') }))
  const url = await listen(server)
  t.teardown(async () => { await listener.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  await until(() => listener.core.state.primaryHostname === 'node-a')
  const c = await RawConnection.open(url)
  c.send('GET', '/live', { ...HANDSHAKE, ...tokenCookie(50n) })
  await until(() => listener.core.state.waiterCount === 1, 'held')
  c.write(Buffer.alloc(MAX_EARLY_BYTES + 1))
  await until(() => listener.core.state.waiterCount === 0, 'let go')
  await until(() => c.closed, 'cut')
  const f = await RawConnection.open(url)
  t.teardown(() => f.close())
  f.send('GET', '/admin/live', HANDSHAKE)
  const a = await f.answer()
  t.equal(a.status, 503)
  t.same(JSON.parse(a.body), { error: 'primaryUrl threw for the primary "node-a": no map for this host; nothing was applied', code: 'LITEFS_NO_PRIMARY' })
})

t.test('fastify without @fastify/websocket: a handshake is an ordinary GET, as before', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const app = Fastify({ forceCloseConnections: true })
  await app.register(fastifyLitefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, primaryUrl: 'http://127.0.0.1:9' })
  app.get('/live', async () => 'no websockets here')
  const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1')
  t.teardown(async () => { await app.close() })
  const c = await RawConnection.open(url)
  t.teardown(() => c.close())
  c.send('GET', '/live', HANDSHAKE)
  const a = await c.answer()
  t.equal(a.status, 200)
  t.equal(a.body, 'no websockets here')
})

t.test('node:http: closing answers a held handshake 503 LITEFS_CLOSED', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const listener = wrap((_req, res) => { res.end() }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, logger: quiet })
  const server = createServer(listener)
  server.on('upgrade', listener.upgrade(() => { t.fail('never the app') }))
  const url = await listen(server)
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  await until(() => listener.core.state.primaryHostname === 'node-a')
  const c = await RawConnection.open(url)
  t.teardown(() => c.close())
  c.send('GET', '/live', { ...HANDSHAKE, ...tokenCookie(50n) })
  await until(() => listener.core.state.waiterCount === 1, 'held')
  const closed = listener.close()
  const a = await c.answer()
  await closed
  t.equal(a.status, 503)
  t.match(JSON.parse(a.body), { code: 'LITEFS_CLOSED' })
  await until(() => c.closed, 'and the connection ends')
})

t.test('serve: a tunnelled handshake is logged as 101; an app that never answers a handshake gets targetTimeout', async t => {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await pfake.close() })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await rfake.close() })
  const p = await websocketApp(t, 'serve', { db: 'app.db', mount: pfake.mount, api: pfake.apiUrl, pollInterval: 1 }, { connection: ws => { ws.send('from the primary') } })
  const lines: string[] = []
  const r = await websocketApp(t, 'serve', { db: 'app.db', mount: rfake.mount, api: rfake.apiUrl, pollInterval: 1, ...PATHS, primaryUrl: () => p.url }, { connection: () => { t.fail('never the replica\'s app') }, log: l => lines.push(l) })
  await until(() => p.state.role === 'primary' && r.state.primaryHostname === 'node-a')
  const client = new Client(t, `${r.url}/admin/live`)
  t.equal(await client.message(0), 'from the primary')
  client.ws.close()
  await until(() => lines.some(l => l.includes('"/admin/live"')), 'its line')
  t.match(JSON.parse(lines.find(l => l.includes('"/admin/live"')) as string), { path: '/admin/live', status: 101, kind: 'write', forwardedTo: p.url })

  // An app that takes the connection and never answers the handshake.
  const taken = new Set<Socket>()
  const silent = createNetServer(socket => { taken.add(socket); socket.on('error', () => {}) })
  const silentUrl = await listen(silent as unknown as Server)
  t.teardown(async () => { for (const s of taken) s.destroy(); await new Promise(resolve => silent.close(resolve)) })
  const sidecar = createSidecar({ addr: '127.0.0.1:0', target: silentUrl.replace('http://', ''), targetTimeout: 100, db: 'app.db', mount: pfake.mount, api: pfake.apiUrl, pollInterval: 1, logger: lineLogger('silent', 'json', () => {}) })
  await sidecar.listen()
  t.teardown(async () => { await sidecar.close() })
  const c = await RawConnection.open(sidecar.url)
  t.teardown(() => c.close())
  c.send('GET', '/live', HANDSHAKE)
  const a = await c.answer()
  t.equal(a.status, 504)
  t.match(JSON.parse(a.body), { code: 'LITEFS_FORWARD_TIMEOUT', error: /the app at .* did not answer the WebSocket handshake within 100 ms/ })
})

t.test("fastify: a websocket route's own setting counts ({ alwaysForward: true } tunnels it, false leaves it untouched)", async t => {
  const nodes: Array<{ url: string, state: NodeState }> = []
  for (const role of ['primary', 'replica'] as const) {
    const fake = await FakeLitefs.start({ role, primary: 'node-a', txid: role === 'primary' ? 10n : 5n })
    t.teardown(async () => { await fake.close() })
    const app = Fastify({ forceCloseConnections: true })
    await app.register(fastifyLitefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...(role === 'replica' ? { primaryUrl: () => nodes[0].url } : {}) })
    await app.register(fastifyWebsocket)
    app.get('/feed', { websocket: true, config: { litefs: { alwaysForward: true } } }, ws => { ws.send(role) })
    app.get('/public', { websocket: true, config: { litefs: false } }, ws => { ws.send(role) })
    t.teardown(async () => {
      for (const ws of app.websocketServer.clients) ws.terminate()
      await app.close()
    })
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1')
    nodes.push({ url, state: app.litefs.state })
  }
  const [primary, replica] = nodes
  await until(() => primary.state.role === 'primary' && replica.state.primaryHostname === 'node-a')
  const feed = new Client(t, `${replica.url}/feed`)
  t.equal(await feed.message(0), 'primary', 'tunnelled to the primary')
  const open = new Client(t, `${replica.url}/public`, tokenCookie(999n))
  t.equal(await open.message(0), 'replica', 'passthrough: at once, here')
  t.equal(replica.state.waiterCount, 0)
})

t.test('on the dev cluster (real SQLite replication, 1.5 s behind): the first message after a held handshake has the write', async t => {
  const cluster = await createDevCluster({ nodes: 2, lag: 1500, schema: 'CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)' })
  t.teardown(async () => { await cluster.close() })
  const [primaryNode, replicaNode] = cluster.nodes
  for (const flavour of FLAVOURS) {
    const urls = new Map<string, string>()
    const endpoint = (node: DevNode) => ({
      connection: (ws: WebSocket) => { ws.send(JSON.stringify({ node: node.name, notes: node.db.prepare('SELECT text FROM notes ORDER BY id').all() })) }
    })
    const options = { db: cluster.db, forward: 'http', primaryUrl: (host: string) => urls.get(host) as string, ...PATHS }
    const primary = await websocketApp(t, flavour, { ...options, state: primaryNode.state }, endpoint(primaryNode))
    urls.set(primaryNode.name, primary.url)
    const replica = await websocketApp(t, flavour, { ...options, state: replicaNode.state }, endpoint(replicaNode))
    const before = primaryNode.state.position(cluster.db)
    primaryNode.db.prepare('INSERT INTO notes (text) VALUES (?)').run(flavour)
    await until(() => primaryNode.state.position(cluster.db) > before, 'the primary saw its commit')
    const client = new Client(t, `${replica.url}/live`, tokenCookie(primaryNode.state.position(cluster.db)))
    const first = JSON.parse(await client.message(0))
    t.equal(first.node, replicaNode.name, `${flavour}: served by the replica`)
    t.same(first.notes.at(-1), { text: flavour }, `${flavour}: read on the replica, the client's write is there`)
    const tunnelled = new Client(t, `${replica.url}/admin/live`)
    t.equal(JSON.parse(await tunnelled.message(0)).node, primaryNode.name, `${flavour}: alwaysForward reaches the primary`)
    client.ws.close()
    tunnelled.ws.close()
  }
})

// Fastify's handshakes are @fastify/websocket's (its own upgrade handling, not litefs-proxy's entry).
for (const flavour of FLAVOURS.filter(f => f !== 'fastify')) {
  t.test(`${flavour}: a handshake pipelined behind a held read waits for that read's answer, then switches (it threw ERR_HTTP_SOCKET_ASSIGNED: an uncaught exception that ended the process)`, async t => {
    const replica = await wsNode(t, flavour, 'replica', {})
    const c = await RawConnection.open(replica.url)
    t.teardown(() => { c.close() })
    const txid = replica.fake.txid + 1n
    let pipelined = `GET /page HTTP/1.1\r\nhost: test\r\ncookie: litefs-txid=${hex(txid)}\r\n\r\nGET /live HTTP/1.1\r\nhost: test\r\n`
    for (const [k, v] of Object.entries(HANDSHAKE)) pipelined += `${k}: ${v}\r\n`
    c.write(pipelined + '\r\n')
    await until(() => replica.state.waiterCount === 1, 'the read is held')
    replica.fake.advance(txid)
    const read = await c.answer()
    t.equal(read.status, 200, 'the read is answered first, in its place')
    t.equal(read.body, 'page')
    const switched = await c.answer()
    t.equal(switched.status, 101, "then the handshake's 101")
    t.match(await c.until('"path":"/live"'), /"node":"replica","path":"\/live"/, "the app's first message")
  })
}

for (const flavour of ['http', 'serve'] as const) {
  t.test(`${flavour}: a client that resets its connection while the read before its handshake is held: the handshake is never decided, the server goes on`, async t => {
    const replica = await wsNode(t, flavour, 'replica', {})
    const c = await RawConnection.open(replica.url)
    const txid = replica.fake.txid + 1n
    let pipelined = `GET /page HTTP/1.1\r\nhost: test\r\ncookie: litefs-txid=${hex(txid)}\r\n\r\nGET /live HTTP/1.1\r\nhost: test\r\n`
    for (const [k, v] of Object.entries(HANDSHAKE)) pipelined += `${k}: ${v}\r\n`
    c.write(pipelined + '\r\n')
    await until(() => replica.state.waiterCount === 1, 'the read is held')
    ;(c.socket as Socket).resetAndDestroy()
    replica.fake.advance(txid) // the held read is answered onto a connection reset: an error on its socket, caught
    await until(() => replica.state.waiterCount === 0, 'the read let go')
    await new Promise(resolve => setTimeout(resolve, 50))
    t.same(replica.accepted, [], 'the handshake never reached the app')
    const res = await fetch(`${replica.url}/page`)
    t.equal(res.status, 200, 'the server goes on')
    t.equal(await res.text(), 'page')
  })
}
