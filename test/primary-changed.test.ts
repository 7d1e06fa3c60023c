// A write forwarded to a primary that read its body and then reset the
// connection (a primary going down: "reset before any answer" on a kept-alive
// connection is retried; see reused-connection.ts, and the warm-up below),
// while this very node becomes the primary. The retry finds this node primary,
// but the body the app needs was read by the first attempt: the app must still
// get it whole, once, and the old primary must have applied nothing.
// Found by the demo's failover under load: the app waited for a body already
// gone, and the write hung until the client gave up.
import t from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect as h2connect } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { PassThrough, Readable } from 'node:stream'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { serve, type AdapterName } from './helpers/apps.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { ownOrigin } from '../lib/core/own-origin.js'
import { CHANNELS } from '../lib/core/observe.js'
import diagnostics from 'node:diagnostics_channel'

type Test = typeof t

/**
 * The old primary: it reads the first chunk of each request's body, then (the
 * first `resets` times) calls `before()` and resets the connection, answering
 * nothing. Requests after that are read whole and answered 201. A warm-up
 * (`x-warm`, see warmUp) is answered 204 at once, so the connection the reset
 * cuts is a kept-alive one: only there is a reset taken for "not read".
 */
async function oldPrimary (t: Test, resets: number, before: () => Promise<void> | void, on: 'data' | 'end' = 'data'): Promise<{ url: string, got: string[], reset: () => Promise<void> }> {
  const got: string[] = []
  let left = resets
  let signal: () => void = () => {}
  const wasReset = new Promise<void>(resolve => { signal = resolve })
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['x-warm'] !== undefined) {
      req.resume().on('end', () => res.writeHead(204).end())
      return
    }
    // A replica whose kept-alive connection was reset asks whether this node is closing (primary-closing.ts): it is not.
    if (req.method === 'GET') {
      res.end('{}')
      return
    }
    if (left > 0) {
      left--
      if (on === 'end') req.resume()
      req.once(on, () => {
        void Promise.resolve(before()).then(() => { req.socket.resetAndDestroy(); signal() })
      })
      return
    }
    let body = ''
    req.on('data', c => { body += c })
    req.on('end', () => { got.push(body); res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ got: body, at: 'old' })) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, reset: async () => { await wasReset } }
}

/** One write forwarded through the node at `url` to the old primary, answered: its connection stays open for the next. */
async function warmUp (t: Test, url: string): Promise<void> {
  const res = await request(`${url}/echo`, { method: 'POST', headers: { 'x-warm': '1', 'content-type': 'text/plain' }, body: 'warm' })
  await res.body.dump()
  t.equal(res.statusCode, 204, 'a first write opens the connection to the old primary')
}

const echo = { method: 'POST', path: '/echo', handler: (ctx: { body: Buffer }) => ({ status: 201, body: { got: ctx.body.toString(), at: 'here' } }) }

for (const adapter of ['fastify', 'express', 'http'] as AdapterName[]) {
  t.test(`${adapter}: promoted while its forward was reset unread — the app gets the whole body, once`, async t => {
    await promotedMidForward(t, adapter, 'note-' + 'x'.repeat(3000))
    // An empty chunked body: nothing was kept, but its end was read.
    await promotedMidForward(t, adapter, '')
  })
}

async function promotedMidForward (t: Test, adapter: AdapterName, body: string): Promise<void> {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  let node: Awaited<ReturnType<typeof serve>> | undefined
  const old = await oldPrimary(t, 1, async () => {
    fake.becomePrimary()
    await until(() => node?.state.role === 'primary', 'the node follows its promotion')
  }, body === '' ? 'end' : 'data')
  node = await serve(adapter, fake, { primaryUrl: () => old.url }, { routes: [echo as never] })
  t.teardown(async () => { await node?.close() })
  await warmUp(t, node.url)
  // A stream: sent chunked, so an empty one still has a body that ends.
  const res = await request(`${node.url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: Readable.from(body === '' ? [] : [body]) })
  const answer = await res.body.json() as { got: string, at: string }
  t.equal(res.statusCode, 201, 'answered by the app on this node')
  t.same(answer, { got: body, at: 'here' }, 'which read the whole body')
  t.same(old.got, [], 'the old primary applied nothing')
  t.match(res.headers['set-cookie'], /litefs-txid=/, 'the write on the new primary gets its cookie')
}

t.test('serve: promoted while its forward was reset unread — the app gets the whole body, once', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const seen: string[] = []
  const target: Server = createServer((req, res) => {
    let body = ''
    req.on('data', c => { body += c })
    req.on('end', () => { seen.push(body); fake.advance(fake.txid + 1n, { event: false }); res.writeHead(201).end(body) })
  })
  await new Promise<void>(resolve => target.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { target.closeAllConnections(); await new Promise(resolve => target.close(resolve)) })
  let sidecar: ReturnType<typeof createSidecar> | undefined
  const old = await oldPrimary(t, 1, async () => {
    fake.becomePrimary()
    await until(() => sidecar?.core.state.role === 'primary', 'the sidecar follows its promotion')
  })
  sidecar = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(target.address() as AddressInfo).port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, primaryUrl: () => old.url, logger: lineLogger('silent', 'text', () => {}) })
  await sidecar.listen()
  t.teardown(async () => { await sidecar?.close() })
  await until(() => sidecar?.core.state.primaryHostname === 'node-a')
  await warmUp(t, sidecar.url)
  const body = 'y'.repeat(5000)
  const res = await request(`${sidecar.url}/notes`, { method: 'POST', body })
  t.equal(res.statusCode, 201)
  t.equal(await res.body.text(), body, 'the app behind the sidecar read the whole body')
  t.same(seen, [body], 'once')
  t.same(old.got, [], 'the old primary applied nothing')
})

t.test('a body still arriving between attempts is kept for the next one, not dropped', async t => {
  // The first attempt gets the first piece and is reset; the client sends the
  // next piece meanwhile; the second attempt (the primary is back) must carry all.
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const old = await oldPrimary(t, 1, () => {})
  for (const adapter of ['fastify', 'express', 'http'] as AdapterName[]) {
    const node = await serve(adapter, fake, { primaryUrl: () => old.url }, { routes: [echo as never] })
    if (adapter === 'fastify') await warmUp(t, node.url)
    const upload = new PassThrough()
    const answer = request(`${node.url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: upload })
    upload.write('first,')
    if (adapter === 'fastify') await old.reset() // one reset in all: the first request's
    upload.write('second,')
    upload.end('third')
    const res = await answer
    t.equal(res.statusCode, 201, adapter)
    t.same(await res.body.json(), { got: 'first,second,third', at: 'old' }, `${adapter}: every piece reached the primary, in order`)
    await node.close()
  }
  t.same(old.got, ['first,second,third', 'first,second,third', 'first,second,third'])
})

t.test('a node serving HTTP/2 without TLS sends the kept body to its own server in h2c; over TLS it cannot (503 LITEFS_PRIMARY_CHANGED)', async t => {
  t.equal(ownOrigin({ socket: { localAddress: '127.0.0.1', localPort: 80 }, httpVersionMajor: 1 } as never), 'http://127.0.0.1:80')
  t.equal(ownOrigin({ socket: { localAddress: '::1', localPort: 81 }, httpVersionMajor: 1 } as never), 'http://[::1]:81')
  t.equal(ownOrigin({ socket: { localAddress: '::1', localPort: 81, encrypted: true }, httpVersionMajor: 1 } as never), undefined, 'TLS')
  t.equal(ownOrigin({ socket: { localAddress: '::1', localPort: 81 }, httpVersionMajor: 2 } as never), 'http://[::1]:81', 'HTTP/2 without TLS: h2c')
  t.equal(ownOrigin({ socket: {}, httpVersionMajor: 1 } as never), undefined, 'a socket already gone')

  // Fastify on HTTP/2 (cleartext, prior knowledge), through a real session.
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const { default: Fastify } = await import('fastify')
  const { default: litefs } = await import('../lib/fastify.js')
  const app = Fastify({ http2: true })
  let applied = 0
  const old = await oldPrimary(t, 1, async () => {
    fake.becomePrimary()
    await until(() => app.litefs.state.role === 'primary')
  })
  // The old primary (an HTTP/1.1 stand-in) is spoken to in HTTP/1.1; this node's own server in h2c.
  await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, primaryUrl: () => old.url, forwardProtocol: 'http1' })
  app.post('/echo', async request => { applied++; return { ok: true, body: request.body, version: request.raw.httpVersion } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  await until(() => app.litefs.state.primaryHostname === 'node-a')
  const session = h2connect(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  t.teardown(() => { session.destroy() })
  const warm = session.request({ ':method': 'POST', ':path': '/echo', 'content-type': 'text/plain', 'x-warm': '1' })
  warm.end('warm')
  const warmStatus = await new Promise(resolve => { warm.on('response', h => { resolve(h[':status']) }); warm.resume() })
  t.equal(warmStatus, 204, 'a first write opens the connection to the old primary')
  const stream = session.request({ ':method': 'POST', ':path': '/echo', 'content-type': 'text/plain' })
  stream.end('z'.repeat(100))
  const [headers, text] = await new Promise<[Record<string, unknown>, string]>((resolve, reject) => {
    let h: Record<string, unknown> = {}
    let out = ''
    stream.on('response', r => { h = r })
    stream.on('data', c => { out += c })
    stream.on('end', () => resolve([h, out]))
    stream.on('error', reject)
  })
  t.equal(headers[':status'], 200)
  t.same(JSON.parse(text), { ok: true, body: 'z'.repeat(100), version: '2.0' }, 'the app here got the whole body, in HTTP/2')
  t.equal(applied, 1, 'applied once, here')
  t.same(old.got, [], 'not by the old primary')
})

t.test('refused, then promoted: no attempt read the body, so the app here reads it from the request', async t => {
  const closed = createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
  await new Promise(resolve => closed.close(resolve)) // nothing listens there now: refused
  for (const adapter of ['fastify', 'express', 'http'] as AdapterName[]) {
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    const node = await serve(adapter, fake, { primaryUrl: () => deadUrl }, { routes: [echo as never] })
    // The first refusal promotes this node: the retry finds it primary.
    const promote = (): void => { diagnostics.unsubscribe(CHANNELS.forwardEnd, promote); fake.becomePrimary() }
    diagnostics.subscribe(CHANNELS.forwardEnd, promote)
    const res = await request(`${node.url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'refused-then-local' })
    t.equal(res.statusCode, 201, adapter)
    t.same(await res.body.json(), { got: 'refused-then-local', at: 'here' }, `${adapter}: served here, whole`)
    await node.close()
    await fake.close()
  }
})

t.test('over TLS the kept body cannot go to this node\'s own server (its certificate names the host, not the address): 503 LITEFS_PRIMARY_CHANGED, nothing applied', async t => {
  const { readFileSync } = await import('node:fs')
  const https = await import('node:https')
  const { wrap } = await import('../lib/http.js')
  const tls = { key: readFileSync(new URL('./fixtures/tls/key.pem', import.meta.url)), cert: readFileSync(new URL('./fixtures/tls/cert.pem', import.meta.url)) }
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  let applied = 0
  let listener: ReturnType<typeof wrap> | undefined
  const old = await oldPrimary(t, 1, async () => {
    fake.becomePrimary()
    await until(() => listener?.core.state.role === 'primary')
  })
  listener = wrap((_req, res) => { applied++; res.end('{}') }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, primaryUrl: () => old.url, logger: { debug () {}, info () {}, warn () {}, error () {} } })
  const server = https.createServer(tls, listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await listener?.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  await until(() => listener?.core.state.primaryHostname === 'node-a')
  const post = async (headers: Record<string, string>): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, method: 'POST', path: '/echo', ca: tls.cert, headers: { 'content-type': 'text/plain', ...headers } }, res => {
      let body = ''
      res.on('data', c => { body += c })
      res.on('end', () => resolve({ status: res.statusCode as number, body }))
    })
    req.on('error', reject)
    req.end('y'.repeat(100))
  })
  t.equal((await post({ 'x-warm': '1' })).status, 204, 'a first write opens the connection to the old primary')
  const answer = await post({})
  t.equal(answer.status, 503)
  t.match(JSON.parse(answer.body), { code: 'LITEFS_PRIMARY_CHANGED' })
  t.equal(applied, 0, 'the app here applied nothing')
  t.same(old.got, [], 'nor did the old primary')
})
