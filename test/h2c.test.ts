// Issue 18, kind 6: a primary whose server speaks only HTTP/2 without TLS (h2c:
// Fastify `http2: true`, `http2.createServer(wrap(…))`; what a balancer sending
// h2c to its backends, such as Fly's h2_backend, needs). A write forwarded in
// HTTP/1.1 got 502. The forwarder speaks what this node's own server spoke for
// the request (the primary runs the same app), or what `forwardProtocol` says;
// the probe of the primary's position speaks it too.
import t from 'tap'
import { connect as h2connect, type ClientHttp2Session } from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FakeLitefs } from './helpers/fake-litefs.js'
import { until } from './helpers/fake-litefs.js'
import { pair } from './helpers/pairs.js'
import { resolveOptions } from '../lib/core/options.js'

const routes = (fake: FakeLitefs): Record<string, (req: IncomingMessage, res: ServerResponse) => void> => {
  const echo = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/small' && Number(req.headers['content-length']) > 1024) {
      res.writeHead(413, { 'content-type': 'application/json' }).end('{"error":"too large"}') // before the body: an early answer
      return
    }
    let bytes = 0
    req.on('data', (c: Buffer) => { bytes += c.length })
    req.on('end', () => {
      if (req.method === 'POST') fake.advance(fake.txid + 1n, { event: false })
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ version: req.httpVersion, bytes, litefs: (req as { litefs?: unknown }).litefs ?? null }))
    })
  }
  return { 'POST /notes': echo, 'GET /notes': echo, 'POST /small': echo }
}

async function h2 (session: ClientHttp2Session, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number, body: any }> {
  return await new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...headers })
    let status = 0
    let text = ''
    stream.on('response', h => { status = h[':status'] as number })
    stream.on('data', c => { text += c })
    stream.on('end', () => { try { resolve({ status, body: JSON.parse(text) }) } catch (err) { reject(err) } })
    stream.on('error', reject)
    stream.end(body)
  })
}

for (const [adapter, framework] of [['fastify', { fastify: { http2: true, http2SessionTimeout: 3_600_000 } as any }], ['http', { http2: true }]] as const) {
  t.test(`${adapter} serving only h2c on every node: writes, reads sent after readTimeout, the probe, an early answer`, async t => {
    const { primary, replica } = await pair(t, adapter, { routes, replica: { readTimeout: 300, readTimeoutAction: 'primary' }, framework: { ...framework, unread: true } })
    const session = h2connect(replica.url)
    t.teardown(() => session.close())
    let res = await h2(session, 'POST', '/notes', {}, Buffer.alloc(100_000, 1))
    t.match(res, { status: 201, body: { version: '2.0', bytes: 100_000 } }, 'a write: forwarded in HTTP/2, its body whole')
    t.equal(primary.hits.length, 1)

    const behind = primary.fake.txid + 100n // ahead of the primary itself: no node will ever have it
    res = await h2(session, 'GET', '/notes', { cookie: `litefs-txid=${behind.toString(16).padStart(16, '0')}` })
    t.equal(res.status, 200)
    t.equal(res.body.litefs?.unreachable, true, "served at once: the probe asked the primary, over h2c, for its position (not after readTimeout)")

    const has = primary.fake.txid.toString(16).padStart(16, '0')
    res = await h2(session, 'GET', '/notes', { cookie: `litefs-txid=${has}` })
    t.match(res, { status: 200, body: { version: '2.0' } }, 'a read past readTimeout: sent to the primary in HTTP/2')

    res = await h2(session, 'POST', '/small', { 'content-length': String(4 << 20) }, Buffer.alloc(4 << 20, 1))
    t.same(res, { status: 413, body: { error: 'too large' } }, "an answer the primary gave before reading the body reaches the client")
    session.close()
    // The replica keeps its HTTP/2 session to the primary open. Closing the
    // primary (README code) closes it (GOAWAY), or the close would wait for
    // Fastify's http2SessionTimeout (set to an hour here: tap's timeout guards).
    await primary.close()
    t.pass('the primary closed while its replica held an HTTP/2 session to it')
  })
}

t.test('forwardProtocol: a mixed cluster says what its primary speaks; a bad value is refused', async t => {
  // An Express replica (HTTP/1.1) in front of an h2c-only primary.
  const { primary, replica } = await pair(t, 'express', { routes, replica: { forwardProtocol: 'http2' }, primaryFlavour: 'http', primaryFramework: { http2: true }, framework: { unread: true } })
  await until(() => replica.state.primaryHostname === 'node-a')
  const res = await fetch(`${replica.url}/notes`, { method: 'POST', body: 'x' })
  t.equal(res.status, 201)
  t.match(await res.json(), { version: '2.0', bytes: 1 }, 'Express, forwardProtocol http2: spoken to in h2c')
  t.equal(primary.hits.length, 1)
  t.throws(() => resolveOptions({ db: 'app.db', forwardProtocol: 'h3' }), /option "forwardProtocol" must be "http1" or "http2", got "h3"/)
  t.equal(resolveOptions({ db: 'app.db' }).forwardProtocol, undefined, "default: what this node's server spoke for the request")
})

for (const [adapter, framework] of [['fastify', { fastify: { http2: true, http2SessionTimeout: 3_600_000 } as any }], ['http', { http2: true }]] as const) {
  t.test(`${adapter} serving only h2c: a replica's health, asked first, asks the primary in HTTP/2 (it said unreachable: "does not match the HTTP/1.1 protocol")`, async t => {
    const { primary, replica } = await pair(t, adapter, { routes, replica: { primaryRedirectTimeout: 200 }, framework: { ...framework, unread: true } })
    await until(() => replica.state.primaryHostname === 'node-a')
    const session = h2connect(replica.url)
    t.teardown(() => session.close())
    // Nothing else before: no write forwarded, no read held. Its first answer waits for its question to the primary.
    const first = await h2(session, 'GET', '/litefs/health')
    t.match(first, { status: 200, body: { status: 'ok', role: 'replica' } }, 'the primary, asked over h2c, answered')
    t.notOk(first.body.unreachable)
    await new Promise(resolve => setTimeout(resolve, 1100)) // past ASK_EVERY and primaryRedirectTimeout: asked again
    const later = await h2(session, 'GET', '/litefs/health')
    t.match(later, { status: 200, body: { status: 'ok' } }, 'and again a second later')
    session.close()
    await primary.close()
  })
}
