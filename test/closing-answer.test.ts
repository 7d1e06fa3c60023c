// A request answered 503 LITEFS_CLOSED because the app is shutting down also
// closes its HTTP/1.1 connection (Connection: close): a keep-alive client sends
// its next request elsewhere instead of to a server on its way out. Every
// flavour, through a raw socket.
import t from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { connect, type Socket } from 'node:net'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'

const routes = (): Record<string, Handler> => ({
  'GET /items': (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{}') },
  'POST /items': (req, res) => {
    const done = (): void => { res.writeHead(201, { 'content-type': 'application/json' }).end('{"created":true}') }
    if (req.readableEnded) done()
    else req.resume().on('end', done)
  }
})

// Anywhere: an answer's body need not end its line.
const statuses = (text: string): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => m[1])

/** A raw connection to `url`: what it received so far, and whether it ended; destroyed on teardown. */
function rawConnection (t: { teardown: (fn: () => void) => void }, url: string): { socket: Socket, readonly got: string, readonly ended: boolean } {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  t.teardown(() => { socket.destroy() })
  let got = ''
  let ended = false
  socket.setEncoding('latin1').on('data', (d: string) => { got += d }).on('close', () => { ended = true }).on('error', () => {})
  return { socket, get got () { return got }, get ended () { return ended } }
}

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a held read answered LITEFS_CLOSED at close says Connection: close, and the connection ends`, async t => {
    const { replica } = await pair(t, flavour, { routes })
    await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
    const raw = rawConnection(t, replica.url)
    raw.socket.write('GET /items HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\nlitefs-txid: 00000000000000ff\r\n\r\n')
    await until(() => replica.state.waiterCount === 1, 'held')
    const closing = replica.close()
    await until(() => raw.ended, 'the server closed the connection after its answer')
    await closing
    t.match(raw.got, /^HTTP\/1\.1 503 /)
    t.match(raw.got, /\r\nconnection: close\r\n/i)
    t.match(raw.got, /"code":"LITEFS_CLOSED"/)
    if (flavour === 'serve') {
      // serve's access log names the code of its own answer, as the body does.
      t.ok(replica.lines.some(l => l.includes('"msg":"request"') && l.includes('"status":503') && l.includes('"code":"LITEFS_CLOSED"')), 'the request line has code LITEFS_CLOSED')
    }
  })
}

// A write pipelined behind the held read is decided (in-process: Node runs it at
// once; serve: once the read is answered) before the close: its answer must not be
// dropped by the held read's Connection: close (walk 7: applied, never answered).
for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a write pipelined behind a held read, then close: the read gets LITEFS_CLOSED, the write its answer if it ran`, async t => {
    const { primary, replica } = await pair(t, flavour, { routes })
    await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
    const raw = rawConnection(t, replica.url)
    raw.socket.write('GET /items HTTP/1.1\r\nhost: x\r\nlitefs-txid: 00000000000000ff\r\n\r\n' +
      'POST /items HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}')
    // The write's forward ends (its answer queued behind the held read's) before the close begins.
    const forwarded: unknown[] = []
    const onForwardEnd = (m: unknown): void => { forwarded.push(m) }
    subscribe('litefs-proxy:forward:end', onForwardEnd)
    t.teardown(() => { unsubscribe('litefs-proxy:forward:end', onForwardEnd) })
    await until(() => replica.state.waiterCount === 1, 'the read held')
    if (flavour !== 'serve') await until(() => forwarded.length === 1, 'the write forwarded, applied, its answer back')
    const closing = replica.close()
    await until(() => raw.ended, 'the connection ended after its last answer')
    await closing
    const applied = primary.hits.filter(h => h === 'POST /items').length
    if (flavour === 'serve') {
      // serve runs a connection's requests one at a time: the write behind the closed read never ran.
      t.equal(applied, 0, 'not run')
      t.same(statuses(raw.got), ['503'], 'the read answered; nothing else')
    } else {
      t.equal(applied, 1, 'the write ran once (Node runs pipelined requests at once)')
      t.same(statuses(raw.got), ['503', '201'], 'the read answered LITEFS_CLOSED, then the write its 201, in order')
      t.match(raw.got, /\{"created":true\}/)
    }
    t.match(raw.got, /"code":"LITEFS_CLOSED"/)
  })
}
