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
      await until(() => replica.state.waiterCount === 30, 'all 30 held')
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
      await until(() => replica.state.waiterCount === 2, 'both held')
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
