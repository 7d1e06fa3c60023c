// The core's decisions, without a framework (the adapters' tests cover sockets).
import t from 'tap'
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { LitefsCore, type AdapterHooks } from '../lib/core/proxy.js'
import { NodeState } from '../lib/core/node-state.js'
import { EXACT } from '../lib/core/path-match.js'

interface Ctx { req: IncomingMessage, res: ServerResponse }
const silent = { debug () {}, info () {}, warn () {}, error () {} }
const hooks: AdapterHooks<Ctx> = {
  req: c => c.req,
  res: c => c.res,
  url: c => c.req.url as string,
  route: () => undefined,
  log: () => silent,
  secure: () => false,
  view: () => ({ proto: 'http', host: undefined, client: undefined }),
  pathRules: () => EXACT,
  routeUrl: () => undefined,
  takeOver: () => {},
  attach: () => {}
}
function core (opts: Record<string, unknown> = {}, pos?: bigint, lag?: number): LitefsCore<Ctx> {
  const state = new NodeState({ readPosition: () => pos, readLag: () => lag })
  return new LitefsCore({ db: 'app.db', state, ...opts }, hooks)
}
const ctx = (method: string, url: string, cookie?: string): Ctx => ({
  req: { method, url, headers: cookie === undefined ? {} : { cookie }, socket: { localPort: 8080 } } as unknown as IncomingMessage,
  res: new EventEmitter() as unknown as ServerResponse
})

t.test('classification follows DESIGN §3, in order', async t => {
  const c = core({ passthrough: ['/static/*', '/litefs/health'], alwaysForward: ['/oauth/*'], healthPath: '/healthz' })
  t.equal(c.classify('POST', '/static/x?y=1', undefined), 'passthrough', 'passthrough first, query ignored')
  t.equal(c.classify('GET', '/anything', false), 'passthrough', 'a route may opt out')
  t.equal(c.classify('GET', '/healthz', undefined), 'health')
  t.equal(c.classify('HEAD', '/healthz?x', undefined), 'health')
  t.equal(c.classify('POST', '/healthz', undefined), 'write', 'health answers GET and HEAD only')
  for (const m of ['GET', 'HEAD', 'OPTIONS']) t.equal(c.classify(m, '/items', undefined), 'read', `${m} is a read`)
  for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND']) t.equal(c.classify(m, '/items', undefined), 'write', `${m} is a write`)
  t.equal(c.classify('GET', '/oauth/callback', undefined), 'write', 'alwaysForward')
  t.equal(c.classify('GET', '/items', { alwaysForward: true }), 'write', 'a route may say so')
  t.equal(c.classify('GET', '/items', {}), 'read')
  await c.close()
})

t.test('a replica whose database does not exist yet holds a read with a cookie', async t => {
  const c = core({ readTimeout: 5 })
  c.state.setRole('replica', 'node-a')
  const info = await c.decide(ctx('GET', '/', 'litefs-txid=0000000000000001'))
  t.equal(info.answer?.statusCode, 504, 'no position is position 0: the write has not arrived')
  await c.close()
})

t.test('a client gone before its read is held is not waited for', async t => {
  const c = core({ readTimeout: 60_000 })
  c.state.setRole('replica', 'node-a')
  const x = ctx('GET', '/', 'litefs-txid=0000000000000009')
  ;(x.res as any).socket = { destroyed: true }
  const info = await c.decide(x)
  t.equal(info.aborted, true)
  t.equal(c.state.waiterCount, 0)
  await c.close()
})

t.test('a read decided while the app closes answers 503', async t => {
  const c = core()
  c.state.setRole('replica', 'node-a')
  await c.state.close()
  const info = await c.decide(ctx('GET', '/', 'litefs-txid=0000000000000001'))
  t.equal(info.answer?.statusCode, 503)
  t.match(info.answer, { code: 'LITEFS_CLOSED' })
  t.equal(info.answer?.headers['retry-after'], '1')
})

t.test('no cookie for a write when the database has no position yet', async t => {
  const c = core()
  c.state.setRole('primary')
  const c1 = ctx('POST', '/')
  const info = await c.decide(c1)
  t.equal(info.local, true)
  t.same(await c.acknowledge(info, c1), { headers: [] }, 'the answer as it is: no cookie')
  t.same(await c.acknowledge({ ...info, local: false }, c1), { headers: [] }, 'and never for a response not served here as primary')
  await c.close()
})

t.test('health reports what it knows', async t => {
  const c = core({}, 4n, undefined)
  c.state.setRole('replica', 'node-a')
  c.state.readPosition('app.db')
  t.same(c.health(), { statusCode: 503, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"status":"lagging","role":"replica","primary":"node-a","lag":null,"txid":"0000000000000004"}' }, 'unknown lag on a replica is not healthy')
  const d = core({}, 4n, 20)
  d.state.setRole('replica', 'node-a')
  t.equal(d.health().statusCode, 200)
  d.state.setRole('primary')
  t.same(JSON.parse(d.health().body), { status: 'ok', role: 'primary', primary: null, lag: 0, txid: '0000000000000004' }, "the primary's position is read from -pos: replicas ask it")
  const e = core({}, undefined, 0)
  e.state.setRole('primary')
  e.state.setPosition('app.db', 2n)
  t.equal(JSON.parse(e.health().body).txid, '0000000000000002', 'a primary without -pos yet: the last known position')
  // Several databases, asked from code (no route, no facts read beforehand): each one, read now.
  const f = core({ db: ['app.db', 'cache.db'] }, 6n, 0)
  f.state.setRole('primary')
  t.same(JSON.parse(f.health().body).databases, { 'app.db': '0000000000000006', 'cache.db': '0000000000000006' }, 'core.health() with several databases')
  await f.close()
  await c.close()
  await d.close()
  await e.close()
})

t.test('a read held for a dead mount: released when LiteFS is back, answered when the app closes', async t => {
  const c = core({ readTimeout: 60_000 })
  c.state.setLitefs('down')
  const back = c.decide(ctx('GET', '/', 'litefs-txid=0000000000000003')) as Promise<any>
  t.equal(c.state.waiterCount, 1, 'held, cookie or not')
  c.state.setLitefs('up')
  c.state.setRole('replica', 'node-a')
  c.state.setPosition('app.db', 3n)
  const info = await back
  t.equal(info.answer, undefined, 'served')
  t.equal(info.awaitedTxid, '0000000000000003')
  t.type(info.waitedMs, 'number')
  c.state.setLitefs('down')
  const closing = c.decide(ctx('GET', '/')) as Promise<any>
  await c.state.close()
  t.equal((await closing).answer.code, 'LITEFS_CLOSED')
  await c.close()
})

t.test('after drain(), nothing is held: a read that would wait is answered 503 at once', async t => {
  const c = core({ readTimeout: 60_000 })
  c.state.setRole('replica', 'node-a')
  t.same(c.drain(), [], 'nobody was held')
  const info = await c.decide(ctx('GET', '/', 'litefs-txid=0000000000000009'))
  t.equal(info.answer?.statusCode, 503)
  t.equal((info.answer as any).code, 'LITEFS_CLOSED')
  await c.close()
})

t.test('a database at TXID 0 (created, nothing committed) sets no cookie', async t => {
  const c = core({}, 0n, 0)
  c.state.setRole('primary')
  t.same(await c.acknowledge({ kind: 'write', role: 'primary', local: true }, ctx('POST', '/')), { headers: [] })
  await c.close()
})

t.test('maxWaiting 0: every kind of wait refused at once with 503 LITEFS_OVERLOADED', async t => {
  const c = core({ maxWaiting: 0, readTimeout: 60_000, primaryRedirectTimeout: 60_000 })
  c.state.setLitefs('down')
  t.equal((await c.decide(ctx('GET', '/')) as any).answer.code, 'LITEFS_OVERLOADED', 'a read on a dead mount')
  c.state.setLitefs('up')
  c.state.setRole('replica', undefined)
  t.equal((await c.decide(ctx('POST', '/')) as any).answer.code, 'LITEFS_OVERLOADED', 'a write waiting for a primary')
  const forwarded = ctx('POST', '/')
  ;(forwarded.req.headers as Record<string, string>)['litefs-forwarded'] = 'node-b'
  t.equal((await c.decide(forwarded) as any).answer.code, 'LITEFS_OVERLOADED', 'a forwarded write waiting for this node to be primary')
  c.state.setRole('replica', 'node-a')
  t.equal((await c.decide(ctx('GET', '/', 'litefs-txid=00000000000000ff')) as any).answer.code, 'LITEFS_OVERLOADED', 'a read waiting for its TXID')
  t.equal(c.stats().overloaded, 4)
  await c.close()
})
