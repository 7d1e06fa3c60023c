// Writes that land on a replica reach the primary: two real Fastify servers on
// loopback, each with the plugin and its own fake LiteFS.
import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { request } from 'undici'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { serveFastify, type Served } from './helpers/apps.js'
import { FORWARDED_HEADER } from '../lib/core/forward.js'

type Test = typeof t

async function rawRequest (url: string, method: string, headers: Record<string, string>, body: string): Promise<{ statusCode: number, headers: IncomingHttpHeaders, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { text += chunk })
      res.on('end', () => resolve({ statusCode: res.statusCode as number, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

interface Pair {
  primary: Served & { fake: FakeLitefs, hits: Record<string, number>, release: () => void }
  replica: Served & { fake: FakeLitefs }
  urls: Record<string, string>
}

/** A primary (node-a) and a replica pointing at it, the replica's primaryUrl mapped through `urls`. */
async function pair (t: Test, replicaOpts: Record<string, unknown> = {}): Promise<Pair> {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const hits: Record<string, number> = {}
  let release = (): void => {}
  const hold = new Promise<void>(resolve => { release = resolve })
  const hit = (name: string): void => { hits[name] = (hits[name] ?? 0) + 1 }
  const primary = await serveFastify(pfake, {}, app => {
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 10 << 20 }, (_req, body, done) => done(null, body))
    app.post('/hash', { bodyLimit: 10 << 20 }, async request => {
      hit('hash')
      return { sha256: createHash('sha256').update(request.body as Buffer).digest('hex'), bytes: (request.body as Buffer).length }
    })
    app.post('/full', async (request, reply) => {
      hit('full')
      pfake.advance(pfake.txid + 1n, { event: false })
      void reply.code(201).header('x-custom', 'yes').header('set-cookie', 'a=1; Path=/').header('set-cookie', 'b=2; Path=/')
      return { echo: request.body, headers: request.headers, ip: request.ip }
    })
    app.get('/sse', { config: { litefs: { alwaysForward: true } } }, (_request, reply) => {
      hit('sse')
      reply.raw.once('close', () => hit('sse-closed'))
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
      reply.raw.write('data: 1\n\n')
      void hold.then(() => reply.raw.end('data: 2\n\n'))
    })
    app.post('/die', async request => {
      hit('die')
      request.raw.socket.destroy() // the primary goes away mid-request
      return await new Promise(() => {})
    })
    // Reads its body only once released: the replica must stop pulling from its client meanwhile.
    app.post('/slow-body', { bodyLimit: 64 << 20, preParsing: async (_req, _reply, payload) => { await hold; return payload } }, async request => {
      hit('slow-body')
      return { bytes: (request.body as Buffer).length }
    })
    app.post('/slow', async request => {
      hit('slow')
      request.raw.socket.once('close', () => hit('slow-abandoned'))
      await hold
      return 'late'
    })
  })
  const urls: Record<string, string> = { 'node-a': primary.url }
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  // The replica runs the same app in real life; here it only needs to know /sse goes to the primary.
  const replica = await serveFastify(rfake, { primaryUrl: (host: string) => urls[host] ?? `http://${host}.invalid`, alwaysForward: ['/sse'], ...replicaOpts })
  t.teardown(async () => {
    release()
    await replica.app.close()
    await primary.app.close()
    await rfake.close()
    await pfake.close()
  })
  await until(() => primary.app.litefs.state.role === 'primary' && replica.app.litefs.state.primaryHostname === 'node-a', 'roles known')
  return { primary: Object.assign(primary, { fake: pfake, hits, release }), replica: Object.assign(replica, { fake: rfake }), urls }
}

t.test('a POST to a replica runs exactly once, on the primary; the answer comes back whole', async t => {
  const { primary, replica } = await pair(t)
  // node:http sends these headers as given (undici would rewrite Connection itself).
  const res = await rawRequest(`${replica.url}/full`, 'POST', {
    'content-type': 'application/json', cookie: 'x=1', connection: 'x-drop, keep-alive', 'x-drop': 'secret', 'proxy-authorization': 'Basic Zm9v', 'x-forwarded-for': '10.9.8.7'
  }, JSON.stringify({ hello: 'world' }))
  const body = JSON.parse(res.body)
  t.equal(res.statusCode, 201, 'status from the primary')
  t.equal(res.headers['x-custom'], 'yes')
  t.same(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/', 'litefs-txid=000000000000000b; Path=/; HttpOnly; SameSite=Lax; Max-Age=300'],
    "both of the app's cookies and the primary's TXID cookie")
  t.same(body.echo, { hello: 'world' })
  t.equal(primary.hits.full, 1, 'ran once on the primary')
  t.equal(replica.writes + primary.writes, 0, 'ran nowhere else')
  t.equal(body.headers.host, new URL(replica.url).host, "the client's Host is kept")
  t.equal(body.headers['x-drop'], undefined, 'headers named by Connection are dropped')
  t.equal(body.headers['proxy-authorization'], undefined, 'Proxy-* headers are dropped')
  t.equal(body.headers['x-forwarded-for'], '10.9.8.7, 127.0.0.1', 'X-Forwarded-For appended')
  t.equal(body.headers['x-forwarded-proto'], 'http')
  t.equal(body.headers['x-forwarded-host'], new URL(replica.url).host)
  t.type(body.headers[FORWARDED_HEADER], 'string', 'marked as forwarded')
})

t.test('a 5 MB body arrives intact, streamed', async t => {
  const { primary, replica } = await pair(t)
  replica.app.log.level = 'silent'
  const big = Buffer.alloc(5 << 20)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff
  const expected = createHash('sha256').update(big).digest('hex')
  const chunks = function * (): Generator<Buffer> { for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536) }
  for (const [label, headers] of [['chunked', {}], ['with length', { 'content-length': String(big.length) }]] as const) {
    const res = await request(`${replica.url}/hash`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...headers },
      body: Readable.from(chunks())
    })
    t.equal(res.statusCode, 413, `${label}: past the replica's bodyLimit (1 MiB default): 413`)
    t.equal((await res.body.json() as any).code, 'LITEFS_BODY_TOO_LARGE')
  }
  t.equal(primary.hits.hash, undefined, 'the primary never ran the handler for a body past the limit')
  await replica.app.close()
  const roomy = await serveFastify(replica.fake, { primaryUrl: () => primary.url }, undefined, { bodyLimit: 10 << 20 })
  t.teardown(() => roomy.app.close())
  await until(() => roomy.app.litefs.state.primaryHostname === 'node-a')
  const res = await request(`${roomy.url}/hash`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Readable.from(chunks()) })
  const body = await res.body.json() as any
  t.equal(res.statusCode, 200)
  t.equal(body.bytes, big.length)
  t.equal(body.sha256, expected, 'same bytes on the primary')
  t.equal(primary.hits.hash, 1)
})

t.test('backpressure: a primary that reads slowly slows the client down, nothing piles up', async t => {
  const { primary } = await pair(t)
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  let raw: import('node:http').IncomingMessage | undefined
  const replica = await serveFastify(rfake, { primaryUrl: () => primary.url }, app => {
    app.server.on('request', (req: import('node:http').IncomingMessage) => { raw = req })
  }, { bodyLimit: 64 << 20 })
  t.teardown(async () => { await replica.app.close(); await rfake.close() })
  await until(() => replica.app.litefs.state.primaryHostname === 'node-a')
  const chunk = Buffer.alloc(1 << 20, 1)
  const body = async function * (): AsyncGenerator<Buffer> { for (let i = 0; i < 48; i++) yield chunk }
  const pending = request(`${replica.url}/slow-body`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Readable.from(body()) })
  await until(() => raw?.isPaused() === true, 'the replica paused its client')
  primary.release()
  const res = await pending
  t.same(await res.body.json(), { bytes: 48 << 20 })
})

t.test('a server-sent-events answer arrives event by event', async t => {
  const { primary, replica } = await pair(t)
  const res = await request(`${replica.url}/sse`)
  t.equal(res.headers['content-type'], 'text/event-stream')
  const it = res.body[Symbol.asyncIterator]()
  const first = await it.next()
  t.equal(Buffer.from(first.value).toString(), 'data: 1\n\n', 'the first event before the primary sent the second')
  primary.release()
  let rest = ''
  for (let r = await it.next(); r.done !== true; r = await it.next()) rest += Buffer.from(r.value).toString()
  t.equal(rest, 'data: 2\n\n')
  t.equal(primary.hits.sse, 1)
})

t.test('a client that leaves mid-answer closes the stream from the primary too', async t => {
  const { primary, replica } = await pair(t)
  const res = await new Promise<import('node:http').IncomingMessage>(resolve => httpRequest(`${replica.url}/sse`, { agent: false }, resolve).end())
  const first = await new Promise<string>(resolve => res.once('data', chunk => resolve(String(chunk))))
  t.equal(first, 'data: 1\n\n')
  res.destroy()
  await until(() => primary.hits['sse-closed'] === 1, 'the primary\'s stream ended')
  t.pass('the replica let go of both ends')
})

t.test('primary gone, a new one announced within the window: the write lands once', async t => {
  const { primary, replica, urls } = await pair(t)
  replica.fake.losePrimary()
  await until(() => replica.app.litefs.state.primaryHostname === undefined)
  const pending = request(`${replica.url}/full`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })
  await until(() => replica.app.litefs.state.waiterCount === 1, 'write held for a primary')
  urls['node-b'] = primary.url
  replica.fake.becomeReplica('node-b')
  const res = await pending
  const body = await res.body.json() as any
  t.equal(res.statusCode, 201)
  t.same(body.echo, { n: 1 })
  t.equal(primary.hits.full, 1, 'exactly once')
})

t.test('a client that gives up while its write waits for a primary leaves nothing behind', async t => {
  const { primary, replica } = await pair(t)
  replica.fake.losePrimary()
  await until(() => replica.app.litefs.state.primaryHostname === undefined)
  const client = httpRequest(`${replica.url}/full`, { method: 'POST', agent: false })
  client.on('error', () => {})
  client.end('{}')
  await until(() => replica.app.litefs.state.waiterCount === 1)
  client.destroy()
  await until(() => replica.app.litefs.state.waiterCount === 0, 'waiter gone')
  t.equal(primary.hits.full, undefined)
})

t.test('this node promoted while a write waits: served here', async t => {
  const { primary, replica } = await pair(t)
  replica.fake.losePrimary()
  await until(() => replica.app.litefs.state.primaryHostname === undefined)
  const pending = request(`${replica.url}/items`, { method: 'POST' })
  await until(() => replica.app.litefs.state.waiterCount === 1)
  replica.fake.becomePrimary()
  const res = await pending
  const body = await res.body.json() as any
  t.equal(res.statusCode, 200)
  t.equal(body.litefs.local, true)
  t.equal(replica.writes, 1, 'the new primary ran it')
  t.equal(primary.writes, 0)
  t.match(res.headers['set-cookie'], /^litefs-txid=0000000000000006;/)
})

t.test('no primary for the whole window: 503 with Retry-After', async t => {
  const { primary, replica } = await pair(t, { primaryRedirectTimeout: 30 })
  replica.fake.losePrimary()
  await until(() => replica.app.litefs.state.primaryHostname === undefined)
  const res = await request(`${replica.url}/full`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.equal((await res.body.json() as any).code, 'LITEFS_NO_PRIMARY')
  t.equal(primary.hits.full, undefined)
})

t.test('a connection refused before sending is retried against a fresh primary', async t => {
  const { primary, replica, urls } = await pair(t)
  const closed = createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const deadPort = (closed.address() as AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  urls['node-a'] = `http://127.0.0.1:${deadPort}` // the old primary: nothing listens there any more
  const pending = request(`${replica.url}/full`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":2}' })
  urls['node-b'] = primary.url
  replica.fake.becomeReplica('node-b')
  const res = await pending
  t.equal(res.statusCode, 201)
  t.same((await res.body.json() as any).echo, { n: 2 })
  t.equal(primary.hits.full, 1, 'once')
})

t.test('a refused connection past the window: 503', async t => {
  const { replica, urls } = await pair(t, { primaryRedirectTimeout: 150 })
  urls['node-a'] = 'http://127.0.0.1:9'
  const res = await request(`${replica.url}/full`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 503)
  const body = await res.body.json() as any
  t.equal(body.code, 'LITEFS_NO_PRIMARY')
  t.match(body.error, /refused the connection/)
})

t.test('the primary dies mid-request: 502, and the write is not retried', async t => {
  const { primary, replica } = await pair(t)
  const res = await request(`${replica.url}/die`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(res.statusCode, 502)
  const body = await res.body.json() as any
  t.equal(body.code, 'LITEFS_FORWARD_FAILED')
  t.match(body.error, /not retried/)
  t.equal(primary.hits.die, 1, 'the handler ran once: no second attempt')
})

t.test('past forwardTimeout: 504', async t => {
  const { primary, replica } = await pair(t, { forwardTimeout: 30 })
  const res = await request(`${replica.url}/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(res.statusCode, 504)
  t.equal((await res.body.json() as any).code, 'LITEFS_FORWARD_TIMEOUT')
  t.equal(primary.hits.slow, 1)
})

t.test('a client that leaves mid-forward: nothing is answered, nothing is left', async t => {
  const { primary, replica } = await pair(t)
  const client = httpRequest(`${replica.url}/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false })
  client.on('error', () => {})
  client.end('{}')
  await until(() => primary.hits.slow === 1, 'reached the primary')
  client.destroy() // the client hangs up while the primary works
  await until(() => primary.hits['slow-abandoned'] === 1, 'the replica dropped its request to the primary')
  const after = await request(`${replica.url}/full`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  await after.body.dump()
  t.equal(primary.hits.slow, 1, 'and did not send it again')
})

t.test('loop guard: a forwarded request reaching a replica is not forwarded again', async t => {
  const { primary, replica } = await pair(t, { primaryRedirectTimeout: 200 })
  for (const marker of ['node-x', 'forged-by-a-client']) {
    const res = await request(`${replica.url}/full`, { method: 'POST', headers: { [FORWARDED_HEADER]: marker, 'content-type': 'application/json' }, body: '{}' })
    t.equal(res.statusCode, 503)
    t.equal((await res.body.json() as any).code, 'LITEFS_NO_PRIMARY')
  }
  t.equal(primary.hits.full, undefined, 'never forwarded')
  t.equal(replica.writes, 0, 'never written locally on a replica')
  // A client that gives up while held leaves nothing behind.
  const ac = new AbortController()
  const gone = request(`${replica.url}/full`, { method: 'POST', headers: { [FORWARDED_HEADER]: 'node-x' }, body: '{}', signal: ac.signal })
  await until(() => replica.app.litefs.state.waiterCount === 1)
  ac.abort()
  await t.rejects(gone)
  await until(() => replica.app.litefs.state.waiterCount === 0)
  // Held for the primary role: if this node is promoted meanwhile, it serves the write.
  const pending = request(`${replica.url}/items`, { method: 'POST', headers: { [FORWARDED_HEADER]: 'node-x' } })
  await until(() => replica.app.litefs.state.waiterCount === 1)
  replica.fake.becomePrimary()
  const res = await pending
  t.equal(res.statusCode, 200)
  t.equal(replica.writes, 1)
})

t.test('a forwarded request on the primary is served there', async t => {
  const { primary } = await pair(t)
  const res = await request(`${primary.url}/items`, { method: 'POST', headers: { [FORWARDED_HEADER]: 'node-b' } })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  t.equal(primary.writes, 1)
})

t.test('fly-replay: the exact header, and nothing else runs', async t => {
  const { primary, replica } = await pair(t, { forward: 'fly-replay' })
  const res = await request(`${replica.url}/full`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['fly-replay'], 'instance=node-a')
  t.equal(await res.body.text(), '')
  t.equal(primary.hits.full, undefined)
})

t.test('readTimeoutAction primary: a read the replica cannot serve in time goes to the primary', async t => {
  const { replica } = await pair(t, { readTimeout: 20, readTimeoutAction: 'primary' })
  const res = await request(`${replica.url}/items`, { headers: { cookie: 'litefs-txid=0000000000000009' } })
  const body = await res.body.json() as any
  t.equal(res.statusCode, 200)
  t.equal(body.litefs.role, 'primary', 'answered by the primary')
  t.equal(body.litefs.awaitedTxid, '0000000000000009')
})
