// A connection in the kernel's accept queue when a primary's close begins: its
// first request may be a replica's forwarded write. The close lets the event
// loop accept it before the app closes its server (accept-queued.ts), so the
// write is answered — as its connection's last, telling the peer this node
// closes — and not reset unread (a 502 whose outcome no replica can know).
// The queue is made for real: a worker thread connects and sends while the
// main thread, where the server runs, is blocked and cannot accept.
// Through real sockets, with node:http (wrap), Fastify (which answers 503 to
// any request once its close began: nothing applied, and said) and `serve`.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { Worker } from 'node:worker_threads'
import Fastify from 'fastify'
import { wrap } from '../lib/http.js'
import { litefs } from '../lib/fastify.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'

type Test = typeof t

const FORWARDED = 'POST /items HTTP/1.1\r\nhost: x\r\nlitefs-forwarded: node-b\r\ncontent-length: 1\r\n\r\nx'

// Connects, sends the request, tells the main thread, and reports what came back and how it ended.
const CLIENT = `
const { workerData, parentPort } = require('node:worker_threads')
const { connect } = require('node:net')
const s = connect(workerData.port, '127.0.0.1', () => {
  s.write(workerData.request, () => {
    // In the kernel: connected, the request in the server's receive buffer. (A pause for the
    // loopback's last ACK to land is setup, not a measure: nothing is asserted on time.)
    setTimeout(() => { Atomics.store(workerData.flag, 0, 1); Atomics.notify(workerData.flag, 0) }, 20)
  })
})
let text = ''
s.setEncoding('latin1')
s.on('data', d => { text += d })
s.on('end', () => parentPort.postMessage(text + '<end>'))
s.on('error', e => parentPort.postMessage(text + '<' + e.code + '>'))
`

/**
 * Queue a connection carrying `request` on `port` without the server accepting
 * it: the main thread blocks (bounded: 10 s) while a worker connects and sends.
 * Resolves with what the connection received, once it ended.
 */
function queued (port: number, request: string): Promise<string> {
  const flag = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(CLIENT, { eval: true, workerData: { port, request, flag } })
  const answer = new Promise<string>(resolve => worker.once('message', m => { void worker.terminate(); resolve(String(m)) }))
  Atomics.wait(flag, 0, 0, 10_000) // no poll here: nothing is accepted meanwhile
  return answer
}

/** A stand-in LiteFS saying this node is the primary, gone when `t` ends. */
async function primaryFake (t: Test): Promise<FakeLitefs> {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  t.teardown(async () => { await fake.close() })
  return fake
}

async function listen (server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

/** A plain request on a new connection, answered, then closed. */
async function once (port: number, request: string): Promise<string> {
  const s: Socket = connect(port, '127.0.0.1')
  let text = ''
  s.setEncoding('latin1').on('data', (d: string) => { text += d })
  s.write(request)
  await new Promise(resolve => s.once('close', resolve))
  return text
}

t.test('node:http: a write queued as close() begins is answered, not reset unread', async t => {
  const fake = await primaryFake(t)
  let applied = 0
  const listener = wrap((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.method === 'POST') applied++
      res.writeHead(req.method === 'POST' ? 201 : 200).end('ok')
    })
  }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1 })
  const server = createServer(listener)
  const port = await listen(server)
  t.teardown(() => { server.closeAllConnections(); server.close() })
  t.match(await once(port, 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /, 'the app answers')
  const answer = queued(port, FORWARDED)
  await listener.close()
  server.close() // the README's order: the server closes once close() resolved
  const got = await answer
  t.match(got, /^HTTP\/1\.1 201 /, `answered 201: ${JSON.stringify(got)}`)
  t.match(got, /\r\nconnection: close\r\n/i, 'as its connection\'s last')
  t.match(got, /\r\nlitefs-proxy-closing: 1\r\n/i, 'telling the peer this node closes')
  t.equal(applied, 1, 'applied once')
})

t.test('serve: a write queued as the close begins is sent to the app and answered', async t => {
  const fake = await primaryFake(t)
  let applied = 0
  const target = createServer((req, res) => {
    req.resume()
    req.on('end', () => { if (req.method === 'POST') applied++; res.writeHead(req.method === 'POST' ? 201 : 200).end('ok') })
  })
  const targetPort = await listen(target)
  t.teardown(() => { target.closeAllConnections(); target.close() })
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${targetPort}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, logger: lineLogger('silent', 'text') })
  await s.listen()
  const port = Number(new URL(s.url).port)
  await until(() => s.core.state.writable) // LiteFS told it this node is the primary
  const answer = queued(port, FORWARDED)
  const closed = s.close()
  const got = await answer
  await closed
  t.match(got, /^HTTP\/1\.1 201 /, `answered 201: ${JSON.stringify(got)}`)
  t.match(got, /\r\nlitefs-proxy-closing: 1\r\n/i, 'telling the peer this node closes')
  t.equal(applied, 1, 'applied once')
})

t.test('fastify: a write queued as close() begins gets Fastify\'s 503 (nothing applied), not a reset', async t => {
  const fake = await primaryFake(t)
  let applied = 0
  const app = Fastify()
  await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1 })
  app.post('/items', async (_req, reply) => { applied++; return await reply.code(201).send('ok') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  await until(() => app.litefs.state.writable)
  const port = (app.server.address() as AddressInfo).port
  const answer = queued(port, FORWARDED)
  const closed = app.close()
  const got = await answer
  await closed
  t.match(got, /^HTTP\/1\.1 503 /, `answered 503 by Fastify, closing: ${JSON.stringify(got)}`)
  t.match(got, /\r\nconnection: close\r\n/i, 'closing its connection')
  t.equal(applied, 0, 'nothing applied')
})
