// Closing with WebSockets open that litefs-proxy itself pipes (walk 7): a
// handshake on an `alwaysForward` path tunnelled from a replica to the primary,
// in each in-process adapter with the README's shutdown code, and `serve`'s
// upgrades piped to its app. The app ends its own sockets (the snippets
// terminate `wss.clients`); the tunnels are litefs-proxy's, not in that list,
// and the server's close() waited for them as long as a client stayed — under
// LiteFS's exec, the lease handover with it. Here close() resolves, the
// tunnel's sockets close, and the client sees its connection end; `serve`
// gives them its drain, as requests in flight, then cuts them and says so.
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import express from 'express'
import { spawn } from 'node:child_process'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import { litefs as fastifyLitefs } from '../lib/fastify.js'
import { litefs as expressLitefs } from '../lib/express.js'
import { wrap, type UpgradeListener } from '../lib/http.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import type { Logger } from '../lib/core/logger.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'

type Test = Pick<typeof t, 'teardown'>

/** A logger that keeps its warn lines. */
function warnings (): Logger & { lines: Array<{ obj: object, msg: string }> } {
  const lines: Array<{ obj: object, msg: string }> = []
  const nothing = (): void => {}
  return { lines, debug: nothing, info: nothing, error: nothing, warn: (obj, msg) => { lines.push({ obj, msg }) } }
}

async function listen (server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** The primary: node:http behind wrap(), an echoing `ws` endpoint; `gate`, if given, holds each handshake until it resolves. */
async function primary (t: Test, gate?: () => Promise<void>): Promise<{ url: string, sockets: WebSocket[], handshakes: () => number }> {
  const fake = await FakeLitefs.start({ role: 'primary', primary: 'node-a', txid: 10n })
  t.teardown(async () => { await fake.close() })
  const sockets: WebSocket[] = []
  let handshakes = 0
  const wss = new WebSocketServer({ noServer: true })
  wss.on('connection', ws => { sockets.push(ws); ws.on('message', m => { ws.send(`primary:${String(m)}`) }) })
  const listener = wrap((_req, res) => { res.end('page') }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1 })
  const server = createServer(listener)
  server.on('upgrade', listener.upgrade((req, socket, head) => {
    handshakes++
    void (gate?.() ?? Promise.resolve()).then(() => { wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req)) })
  }))
  const url = await listen(server)
  await until(() => listener.core.state.role === 'primary', 'the primary follows LiteFS')
  t.teardown(async () => {
    await listener.close()
    for (const ws of wss.clients) ws.terminate()
    await new Promise(resolve => server.close(resolve))
  })
  return { url, sockets, handshakes: () => handshakes }
}

type Flavour = 'http' | 'express' | 'fastify'

interface Replica {
  url: string
  log: ReturnType<typeof warnings>
  /** The README's shutdown code for this adapter; resolves once the server has closed. */
  shutdown: () => Promise<void>
  /** The app's own sockets (none: every handshake here is tunnelled). */
  own: () => number
}

/** A replica wired as the README's "Websockets" says, `/admin/*` tunnelled to `primaryUrl`. */
async function replica (t: Test, flavour: Flavour, primaryUrl: string): Promise<Replica> {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const options = { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, alwaysForward: ['/admin/*'], primaryUrl: () => primaryUrl }
  const log = warnings()
  if (flavour === 'fastify') {
    // The core's lines go to Fastify's logger: its warn lines are kept here.
    const nothing = (): void => {}
    const instance = { ...log, fatal: nothing, trace: nothing, level: 'warn', silent: nothing, child: () => instance }
    const app = Fastify({ loggerInstance: instance as any })
    await app.register(fastifyLitefs, options)
    await app.register(fastifyWebsocket)
    app.get('/*', { websocket: true }, ws => { ws.send('replica') })
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1')
    await until(() => app.litefs.state.primaryHostname === 'node-a', 'the replica follows LiteFS')
    let closed = false
    t.teardown(async () => { if (!closed) await app.close() })
    return { url, log, own: () => app.websocketServer.clients.size, shutdown: async () => { closed = true; await app.close() } }
  }
  const wss = new WebSocketServer({ noServer: true })
  wss.on('connection', ws => { ws.send('replica') })
  let proxy: { upgrade: (listener: UpgradeListener) => UpgradeListener, close: () => Promise<void>, core: { state: { primaryHostname: string | undefined } } }
  let server: Server
  if (flavour === 'express') {
    const middleware = expressLitefs({ ...options, logger: log })
    const app = express()
    app.use(middleware)
    server = createServer(app)
    proxy = middleware
  } else {
    const listener = wrap((_req, res) => { res.end('page') }, { ...options, logger: log })
    server = createServer(listener)
    proxy = listener
  }
  server.on('upgrade', proxy.upgrade((req: IncomingMessage, socket: Duplex, head: Buffer) => { wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req)) }))
  const url = await listen(server)
  await until(() => proxy.core.state.primaryHostname === 'node-a', 'the replica follows LiteFS')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return {
    url,
    log,
    own: () => wss.clients.size,
    shutdown: async () => {
      // The README's SIGTERM handler, awaited to its end.
      await proxy.close()
      for (const ws of wss.clients) ws.terminate()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

/** A client, and the events of its connection in order. */
function client (t: Test, url: string): { ws: WebSocket, events: string[], opened: Promise<void>, closed: Promise<number> } {
  const ws = new WebSocket(url.replace('http', 'ws'))
  const events: string[] = []
  ws.on('message', m => events.push(`message ${String(m)}`))
  ws.on('error', () => {})
  t.teardown(() => { ws.terminate() })
  return {
    ws,
    events,
    opened: new Promise(resolve => ws.once('open', () => { events.push('open'); resolve() })),
    closed: new Promise(resolve => ws.once('close', code => { events.push(`close ${code}`); resolve(code) }))
  }
}

for (const flavour of ['http', 'express', 'fastify'] as const) {
  t.test(`${flavour}: close() with a WebSocket tunnelled to the primary ends the tunnel`, async t => {
    const p = await primary(t)
    const r = await replica(t, flavour, p.url)
    const c = client(t, `${r.url}/admin/live`)
    await c.opened
    c.ws.send('ping')
    await until(() => c.events.includes('message primary:ping'), 'an echo through the tunnel')
    t.equal(r.own(), 0, "the tunnel is not among the app's sockets")
    const theirs = p.sockets[0]
    const primarySide = new Promise<void>(resolve => theirs.once('close', () => resolve()))
    const steps: string[] = []
    const closing = r.shutdown().then(() => steps.push('shutdown done'))
    void c.closed.then(() => steps.push('client closed'))
    await closing
    await c.closed
    await primarySide
    t.same(c.events, ['open', 'message primary:ping', 'close 1006'], 'the client saw its connection end (no close frame: as terminate())')
    t.ok(steps.includes('shutdown done'), "the README's shutdown code completed")
    t.match(r.log.lines, [{ obj: { websockets: 1 }, msg: /1 WebSocket connection\(s\) tunnelled by litefs-proxy were ended as it closed/ }], 'said, with the count')
  })
}

t.test('a handshake answered 101 by the primary after close() began is ended at once', async t => {
  let release = (): void => {}
  const released = new Promise<void>(resolve => { release = resolve })
  const p = await primary(t, async () => { await released })
  const r = await replica(t, 'http', p.url)
  const c = client(t, `${r.url}/admin/live`)
  await until(() => p.handshakes() === 1, 'the handshake reached the primary')
  const shutdown = r.shutdown() // close() ends the tunnels before its first await: none open yet
  t.equal(p.sockets.length, 0, 'the primary has not switched it yet')
  release()
  await c.closed
  await shutdown
  t.same(c.events.filter(e => !e.startsWith('message')), ['open', 'close 1006'], 'switched, then ended')
  t.same(r.log.lines, [], 'none was open when close() ran: nothing said')
})

/** An app behind serve: `ws` echoing; `goingAway` closes its sockets as an app told to stop would. */
async function wsTarget (t: Test): Promise<{ port: number, sockets: WebSocket[], goingAway: () => void }> {
  const sockets: WebSocket[] = []
  const wss = new WebSocketServer({ noServer: true })
  wss.on('connection', ws => { sockets.push(ws); ws.on('message', m => { ws.send(`app:${String(m)}`) }) })
  const server = createServer((_req, res) => { res.end('page') })
  server.on('upgrade', (req, socket, head) => { wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req)) })
  await listen(server)
  t.teardown(async () => {
    for (const ws of wss.clients) ws.terminate()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  return { port: (server.address() as AddressInfo).port, sockets, goingAway: () => { for (const ws of wss.clients) ws.close(1001, 'going away') } }
}

/** serve on a primary in front of wsTarget, its warn lines kept, and a client piped through it to /live. */
async function servePiped (t: Test, drainTimeout: number): Promise<{ app: Awaited<ReturnType<typeof wsTarget>>, s: ReturnType<typeof createSidecar>, c: ReturnType<typeof client>, lines: string[] }> {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await fake.close() })
  const app = await wsTarget(t)
  const lines: string[] = []
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${app.port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, drainTimeout, logger: lineLogger('warn', 'json', l => lines.push(l)) })
  await s.listen()
  t.teardown(async () => { await s.close() })
  const c = client(t, `${s.url}/live`)
  await c.opened
  return { app, s, c, lines }
}

t.test('serve: a piped WebSocket the app closes during the drain ends with its close frame; nothing is cut', async t => {
  const { app, s, c, lines } = await servePiped(t, 60_000)
  const closing = s.close()
  await until(() => !s.server.listening, 'the listener closed')
  t.same(c.events, ['open'], 'still open while the drain lasts')
  app.goingAway()
  t.equal(await c.closed, 1001, "the app's own close frame reached the client")
  await closing
  t.same(lines, [], 'nothing cut, nothing said')
})

t.test('serve: a piped WebSocket still open at drainTimeout is ended, and that is said', async t => {
  const { app, s, c, lines } = await servePiped(t, 50)
  c.ws.send('ping')
  await until(() => c.events.includes('message app:ping'), 'an echo from the app')
  const appSide = new Promise<number>(resolve => app.sockets[0].once('close', code => resolve(code)))
  await s.close()
  t.equal(await c.closed, 1006, 'the client saw its connection end')
  t.equal(await appSide, 1006, "the app's side closed too")
  const cut = lines.map(l => JSON.parse(l) as { msg: string }).filter(l => /were cut/.test(l.msg))
  t.match(cut, [{ requests: 0, websockets: 1, msg: /^litefs-proxy: 1 WebSocket connection\(s\) still open 50 ms after the close began were cut$/ }], 'said once, with the count')
})

t.test('`litefs-proxy serve` as a process: SIGTERM with a piped WebSocket open exits within its drain, and says so', async t => {
  t.setTimeout(120_000) // a process to start (tsx), then its 10 s drain
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(async () => { await fake.close() })
  const app = await wsTarget(t)
  const child = spawn(process.execPath, [...process.execArgv, new URL('../lib/cli/main.ts', import.meta.url).pathname, 'serve',
    '--addr', '127.0.0.1:0', '--target', `127.0.0.1:${app.port}`, '--db', 'app.db', '--mount', fake.mount, '--api', fake.apiUrl], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { out += b })
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out), 'listening')
  const url = /listening on (http:\/\/\S+),/.exec(out)?.[1] as string
  const c = client(t, `${url}/live`)
  await c.opened
  c.ws.send('ping')
  await until(() => c.events.includes('message app:ping'), 'an echo from the app')
  const order: string[] = []
  void c.closed.then(() => order.push('client closed'))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exited, code 0')
  order.push('exited')
  await c.closed
  t.same(order, ['client closed', 'exited'], 'the WebSocket ended before the process did')
  t.match(out, /WARN {2}litefs-proxy: 1 WebSocket connection\(s\) still open 10000 ms after the close began were cut/, 'said, with the count')
})
