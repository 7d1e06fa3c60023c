// HTTP/1.1 pipelining (RFC 9112 §9.3): requests sent one behind the other on
// one connection, before any answer. Node queues the later ones' responses
// without a socket until the answer before is sent, and never closes such a
// queued response when the connection ends. A queued request that litefs-proxy
// forwards (a write on a replica) or holds (a read whose token is ahead) is
// answered, in order, like any other; one whose client leaves while queued
// frees what it held and sends nothing on. In every adapter and behind serve,
// through raw sockets.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'

const routes = (): Record<string, Handler> => ({
  'GET /items': (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[]}') },
  'POST /items': (req, res) => {
    const done = (): void => { res.writeHead(201, { 'content-type': 'application/json' }).end('{"created":true}') }
    if (req.readableEnded) done()
    else req.resume().on('end', done)
  }
})

/** Open a raw connection to `url` and send `text` at once (every request of it, pipelined). */
async function pipeline (url: string, text: string): Promise<{ socket: Socket, received: () => string }> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  let got = ''
  socket.setEncoding('latin1').on('data', (d: string) => { got += d })
  socket.on('error', () => {})
  socket.write(text)
  return { socket, received: () => got }
}

const statuses = (text: string): string[] => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map(m => m[1])

const GET = 'GET /items HTTP/1.1\r\nhost: x\r\n\r\n'
const POST = 'POST /items HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'
const aheadGet = (txid: bigint): string => `GET /items HTTP/1.1\r\nhost: x\r\nlitefs-txid: ${txid.toString(16).padStart(16, '0')}\r\n\r\n` // the token header: the same name in every flavour

for (const flavour of FLAVOURS) {
  t.test(flavour, async t => {
    t.test('a write pipelined behind a read, on a replica: forwarded and answered, in order, applied once', async t => {
      const { primary, replica } = await pair(t, flavour, { routes })
      await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
      const { socket, received } = await pipeline(replica.url, GET + POST + GET)
      t.teardown(() => { socket.destroy() })
      await until(() => statuses(received()).length === 3, 'three answers')
      t.same(statuses(received()), ['200', '201', '200'], 'each answered, in the order asked')
      t.match(received(), /\{"created":true\}/)
      t.same(primary.hits, ['POST /items'], 'the write reached the primary once')
      t.same(replica.hits, ['GET /items', 'GET /items'], 'the reads were served here')
    })

    t.test('a read held for its token, pipelined behind another: answered once the replica catches up', async t => {
      const { replica } = await pair(t, flavour, { routes })
      await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
      const { socket, received } = await pipeline(replica.url, GET + aheadGet(7n))
      t.teardown(() => { socket.destroy() })
      await until(() => statuses(received()).length === 1, 'the first answered')
      await until(() => replica.state.waiterCount === 1, 'the second is held')
      replica.fake.advance(7n)
      await until(() => statuses(received()).length === 2, 'the second answered')
      t.same(statuses(received()), ['200', '200'])
      t.equal(replica.stats().held, 0)
    })

    t.test('30 held reads pipelined on one connection: answered in order, without a listener warning', async t => {
      // Each queued request listens for its connection's end; one listener per
      // request on the socket would pass EventEmitter's limit (10) and warn.
      const warnings: string[] = []
      const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`) }
      process.on('warning', onWarning)
      t.teardown(() => { process.off('warning', onWarning) })
      const { replica } = await pair(t, flavour, { routes })
      await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
      const { socket, received } = await pipeline(replica.url, aheadGet(7n).repeat(30))
      t.teardown(() => { socket.destroy() })
      // serve decides one request of a connection at a time (in-turn.ts); the adapters, as Node hands them over.
      await until(() => replica.state.waiterCount === (flavour === 'serve' ? 1 : 30), 'held')
      replica.fake.advance(7n)
      await until(() => statuses(received()).length === 30, 'all 30 answered')
      t.same(statuses(received()), Array(30).fill('200'))
      await new Promise(resolve => setImmediate(resolve)) // a warning is emitted on the next tick
      t.same(warnings.filter(w => w.includes('MaxListeners')), [], 'no MaxListenersExceededWarning')
      t.equal(replica.stats().held, 0)
    })

    t.test('a held read queued behind another whose client leaves: its wait ends, nothing is left held', async t => {
      const { replica } = await pair(t, flavour, { routes })
      await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
      // Both held: the second is queued behind the first, without a socket of its own.
      const { socket } = await pipeline(replica.url, aheadGet(7n) + aheadGet(8n))
      await until(() => replica.state.waiterCount === (flavour === 'serve' ? 1 : 2), 'both held (serve: the first, the second waits its turn)')
      socket.destroy()
      await until(() => replica.state.waiterCount === 0, 'both waits end with the connection')
      t.equal(replica.stats().held, 0)
      if (flavour === 'serve') {
        // Its access log has a line for each, the queued one's included (its response never closes by itself).
        await until(() => replica.lines.filter(l => l.includes('"aborted":true')).length === 2, 'a line for each request, aborted')
        t.pass('both logged as aborted')
      }
    })
  })
}

t.test('serve: a connection\'s pipelined requests reach the app one at a time, in order, on one connection', async t => {
  const { createServer } = await import('node:http')
  const { createSidecar } = await import('../lib/sidecar/sidecar.js')
  const { lineLogger } = await import('../lib/sidecar/access-log.js')
  const { FakeLitefs } = await import('./helpers/fake-litefs.js')
  const arrived: string[] = []
  let release: () => void = () => {}
  const released = new Promise<void>(resolve => { release = resolve })
  let connections = 0
  const app = createServer((req, res) => {
    arrived.push(`${req.method as string} ${req.url as string}`)
    const answer = (): void => { res.writeHead(200, { 'content-type': 'text/plain' }).end(req.url) }
    if (req.url === '/slow') void released.then(answer)
    else req.resume().on('end', answer)
  })
  app.on('connection', () => { connections++ })
  await new Promise<void>(resolve => app.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { app.closeAllConnections(); await new Promise(resolve => app.close(resolve)) })
  const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const sidecar = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(app.address() as { port: number }).port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: lineLogger('silent', 'text', () => {}) })
  await sidecar.listen()
  t.teardown(async () => { await sidecar.close() })
  await until(() => sidecar.core.state.role === 'primary', 'primary')

  const slowPost = 'POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}'
  const after = 'GET /after HTTP/1.1\r\nhost: x\r\n\r\n'
  const { socket, received } = await pipeline(sidecar.url, slowPost + after)
  t.teardown(() => { socket.destroy() })
  await until(() => arrived.length === 1, 'the write reached the app')
  for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve)) // room for a wrong second one to arrive
  t.same(arrived, ['POST /slow'], 'the read behind it waits for its answer')
  release()
  await until(() => statuses(received()).length === 2, 'both answered')
  t.same(arrived, ['POST /slow', 'GET /after'], 'in the order sent')

  arrived.length = 0
  connections = 0
  const many = await pipeline(sidecar.url, GET.repeat(20))
  t.teardown(() => { many.socket.destroy() })
  await until(() => statuses(many.received()).length === 20, 'all 20 answered')
  t.equal(arrived.length, 20)
  t.ok(connections <= 1, `20 pipelined requests took ${connections} new connection(s) to the app, not one each`)
})
