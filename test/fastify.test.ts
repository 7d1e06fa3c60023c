import t from 'tap'
import { request, Agent } from 'undici'
import { spawn } from 'node:child_process'
import cookiePlugin from '@fastify/cookie'
import Fastify from 'fastify'
import { litefs } from '../lib/fastify.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { serveFastify, type Served } from './helpers/apps.js'
import { NodeState } from '../lib/core/node-state.js'

type Test = typeof t

const cookie = (txid: bigint): string => `litefs-txid=${txid.toString(16).padStart(16, '0')}`

async function get (url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number, body: any, headers: Record<string, any> }> {
  const res = await request(url, { headers, signal })
  const text = await res.body.text()
  let body: any = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.statusCode, body, headers: res.headers }
}

async function replica (t: Test, opts = {}): Promise<{ fake: FakeLitefs, url: string, served: Served }> {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  const served = await serveFastify(fake, opts)
  t.teardown(async () => { await served.app.close(); await fake.close() })
  return { fake, url: served.url, served }
}

t.test('a read whose cookie is ahead is held until a tx event, then served', async t => {
  const { fake, url, served } = await replica(t)
  await until(() => fake.subscribers === 1)
  const pending = get(`${url}/items`, { cookie: cookie(7n) })
  await until(() => heldCount(served) === 1, 'held')
  fake.advance(6n, { file: false })
  await until(() => stateOf(served).position('app.db') === 6n)
  t.equal(heldCount(served), 1, 'not yet: 6 < 7')
  fake.advance(7n, { file: false })
  const res = await pending
  t.equal(res.status, 200)
  t.equal(res.body.litefs.kind, 'read')
  t.equal(res.body.litefs.awaitedTxid, '0000000000000007')
  t.type(res.body.litefs.waitedMs, 'number')
  t.equal(res.headers['set-cookie'], undefined, 'a read sets no cookie')
})

t.test('with the API down, the polling feed releases the read', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 5n, api: false })
  const served = await serveFastify(fake, { api: 'http://127.0.0.1:9' })
  t.teardown(async () => { await served.app.close(); await fake.close() })
  const pending = get(`${served.url}/items`, { cookie: cookie(9n) })
  await until(() => heldCount(served) === 1, 'held')
  fake.advance(9n, { event: false })
  const res = await pending
  t.equal(res.status, 200)
  t.equal(res.body.litefs.awaitedTxid, '0000000000000009')
})

t.test('not held when the replica has caught up, nor without a cookie', async t => {
  const { url } = await replica(t)
  for (const c of [cookie(5n), cookie(3n), cookie(0n), '']) {
    const res = await get(`${url}/items`, c === '' ? {} : { cookie: c })
    t.equal(res.status, 200)
    t.equal(res.body.litefs.waitedMs, undefined, `served at once with "${c}"`)
  }
})

t.test('past readTimeout: 504 with a JSON body', async t => {
  const { url } = await replica(t, { readTimeout: 30 })
  const res = await get(`${url}/items`, { cookie: cookie(99n) })
  t.equal(res.status, 504)
  t.equal(res.body.code, 'LITEFS_READ_TIMEOUT')
  t.match(res.body.error, /did not reach TXID 0000000000000063/)
  t.match(res.headers['content-type'], /application\/json/)
})

t.test('the primary never holds a read, even for a cookie ahead of it', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
  const served = await serveFastify(fake)
  t.teardown(async () => { await served.app.close(); await fake.close() })
  await until(() => stateOf(served).role === 'primary')
  const res = await get(`${served.url}/items`, { cookie: cookie(500n) })
  t.equal(res.status, 200)
  t.equal(res.body.litefs.waitedMs, undefined)
  t.equal(res.body.litefs.awaitedTxid, '00000000000001f4')
})

t.test('a client that disconnects while held leaves no waiter behind', async t => {
  const { url, served } = await replica(t)
  const ac = new AbortController()
  const pending = get(`${url}/items`, { cookie: cookie(50n) }, ac.signal)
  await until(() => heldCount(served) === 1, 'held')
  ac.abort()
  await t.rejects(pending)
  await until(() => heldCount(served) === 0, 'waiter gone')
  t.equal(heldCount(served), 0)
})

t.test('1,000 concurrent held reads are all released by one tx event', async t => {
  const { fake, url, served } = await replica(t)
  await until(() => fake.subscribers === 1)
  const agent = new Agent({ connections: 1000, pipelining: 0 })
  t.teardown(() => agent.close())
  const all = Array.from({ length: 1000 }, async (_, i) => {
    const res = await request(`${url}/items`, { dispatcher: agent, headers: { cookie: cookie(6n + BigInt(i % 3)) } })
    return { status: res.statusCode, body: await res.body.json() as any }
  })
  await until(() => heldCount(served) === 1000, '1,000 held')
  fake.advance(8n, { file: false }) // one event
  const results = await Promise.all(all)
  t.ok(results.every(r => r.status === 200 && r.body.litefs.waitedMs !== undefined), 'all 1,000 served after waiting')
  t.equal(heldCount(served), 0)
})

t.test('a write on the primary gets the position after its commit', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
  const served = await serveFastify(fake, {}, app => {
    app.post('/two-cookies', async (_req, reply) => {
      fake.advance(fake.txid + 1n, { event: false })
      void reply.header('set-cookie', 'app=1; Path=/')
      return 'ok'
    })
  })
  t.teardown(async () => { await served.app.close(); await fake.close() })
  await until(() => stateOf(served).role === 'primary')
  const res = await request(`${served.url}/items`, { method: 'POST' })
  const body = await res.body.json() as any
  t.equal(res.statusCode, 200)
  t.equal(res.headers['set-cookie'], 'litefs-txid=0000000000000006; Path=/; HttpOnly; SameSite=Lax; Max-Age=300',
    'the new position (6), not the one before the handler (5)')
  t.equal(body.litefs.local, true)
  const res2 = await request(`${served.url}/two-cookies`, { method: 'POST' })
  await res2.body.dump()
  t.same(res2.headers['set-cookie'], ['app=1; Path=/', 'litefs-txid=0000000000000007; Path=/; HttpOnly; SameSite=Lax; Max-Age=300'], "the app's own cookie stays")
})

t.test('Secure over HTTPS, honouring trustProxy', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  const served = await serveFastify(fake, {}, undefined, { trustProxy: true })
  t.teardown(async () => { await served.app.close(); await fake.close() })
  await until(() => stateOf(served).role === 'primary')
  const res = await request(`${served.url}/items`, { method: 'POST', headers: { 'x-forwarded-proto': 'https' } })
  await res.body.dump()
  t.match(res.headers['set-cookie'], /; Secure$/)
})

t.test('passthrough: no wait, no cookie; alwaysForward makes a GET a write', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
  const served = await serveFastify(fake, { passthrough: ['/static/*'], alwaysForward: ['/oauth/*'], forward: 'fly-replay' })
  t.teardown(async () => { await served.app.close(); await fake.close() })
  await until(() => stateOf(served).role === 'replica' && stateOf(served).primaryHostname === 'node-a')
  for (const path of ['/static/app.js', '/opt-out']) {
    const res = await get(`${served.url}${path}`, { cookie: cookie(99n) })
    t.equal(res.status, 200, `${path} served at once`)
    t.equal(res.body.litefs.kind, 'passthrough')
  }
  for (const path of ['/oauth/callback', '/to-primary']) {
    const res = await get(`${served.url}${path}`)
    t.equal(res.status, 200, `${path} is a write: replayed on the primary`)
    t.equal(res.headers['fly-replay'], 'instance=node-a')
    t.equal(res.body, '', 'the app did not run')
  }
  fake.becomePrimary()
  await until(() => stateOf(served).role === 'primary')
  const post = await request(`${served.url}/static/upload`, { method: 'POST' })
  await post.body.dump()
  t.equal(post.headers['set-cookie'], undefined, 'a passthrough write gets no cookie')
  const oauth = await request(`${served.url}/oauth/callback`)
  await oauth.body.dump()
  t.match(oauth.headers['set-cookie'], /^litefs-txid=0000000000000005;/, 'an alwaysForward GET on the primary gets the cookie')
})

t.test('OPTIONS is a read: a CORS preflight is not a write', async t => {
  const { url } = await replica(t)
  const res = await request(`${url}/items`, { method: 'OPTIONS' })
  await res.body.dump()
  t.not(res.statusCode, 503)
})

t.test('a write on a replica without a known primary: held, then 503 with Retry-After', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
  const served = await serveFastify(fake, { primaryRedirectTimeout: 20 })
  t.teardown(async () => { await served.app.close(); await fake.close() })
  await until(() => stateOf(served).primaryHostname === 'node-a')
  fake.losePrimary()
  await until(() => stateOf(served).primaryHostname === undefined)
  const w = await request(`${served.url}/items`, { method: 'POST' })
  t.equal(w.statusCode, 503)
  t.equal(w.headers['retry-after'], '1')
  t.equal((await w.body.json() as any).code, 'LITEFS_NO_PRIMARY')
  t.equal(served.writes, 0, 'the handler never ran')
})

t.test('malformed cookies are ignored: never a 500, never a wait', async t => {
  const { url } = await replica(t, { readTimeout: 60_000 })
  const bad = [
    'litefs-txid=',
    'litefs-txid=000000000000007',
    'litefs-txid=00000000000000070',
    'litefs-txid=zzzzzzzzzzzzzzzz',
    'litefs-txid=ffffffffffffffff0',
    'litefs-txid=; litefs-txid=garbage',
    'litefs-txid=' + 'f'.repeat(8192),
    'a=' + 'b'.repeat(8192),
    '=;;;=;',
    'litefs-txid=%00%00'
  ]
  for (const c of bad) {
    const res = await get(`${url}/items`, { cookie: c })
    t.equal(res.status, 200, `served: ${c.slice(0, 40)}`)
    t.equal(res.body.litefs.waitedMs, undefined)
  }
})

t.test('health', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
  const served = await serveFastify(fake, { maxLag: '1s' })
  t.teardown(async () => { await served.app.close(); await fake.close() })
  let res = await get(`${served.url}/litefs/health`)
  t.equal(res.status, 200)
  t.same(res.body, { status: 'ok', role: res.body.role, primary: res.body.primary, lag: 829, txid: '0000000000000005' })
  fake.setLag(4000)
  res = await get(`${served.url}/litefs/health`)
  t.equal(res.status, 503)
  t.equal(res.body.status, 'lagging')
  const head = await request(`${served.url}/litefs/health`, { method: 'HEAD' })
  await head.body.dump()
  t.equal(head.statusCode, 503)
  fake.setLag(2147483647) // before the first sync
  t.equal((await get(`${served.url}/litefs/health`)).status, 503)
})

t.test('health: maxLag 0 disables; a custom path; false removes the route', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
  fake.setLag(99_999)
  const a = await serveFastify(fake, { maxLag: 0, healthPath: '/healthz' })
  const b = await serveFastify(fake, { healthPath: false })
  t.teardown(async () => { await a.app.close(); await b.app.close(); await fake.close() })
  t.equal((await get(`${a.url}/healthz`)).status, 200)
  t.equal((await get(`${b.url}/litefs/health`)).status, 404)
})

t.test('works beside @fastify/cookie', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
  const served = await serveFastify(fake, {}, app => {
    void app.register(cookiePlugin)
    app.after(() => {
      app.post('/with-cookie', async (_req, reply) => {
        fake.advance(fake.txid + 1n, { event: false })
        void reply.setCookie('session', 'abc', { path: '/' })
        return 'ok'
      })
    })
  })
  t.teardown(async () => { await served.app.close(); await fake.close() })
  await until(() => stateOf(served).role === 'primary')
  const res = await request(`${served.url}/with-cookie`, { method: 'POST' })
  await res.body.dump()
  const cookies = ([] as string[]).concat(res.headers['set-cookie'] as string[])
  t.equal(cookies.length, 2)
  t.ok(cookies.some(c => c.startsWith('session=abc')))
  t.ok(cookies.some(c => c.startsWith('litefs-txid=0000000000000006')))
})

t.test('option state: any NodeState drives the plugin (the dev cluster uses this)', async t => {
  let pos = 3n
  const state = new NodeState({ readPosition: () => pos, readLag: () => 0 })
  state.setRole('primary')
  const app = Fastify()
  await app.register(litefs, { db: 'app.db', state })
  app.post('/w', async () => { pos = 4n; return 'ok' })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const res = await request(`http://127.0.0.1:${(app.server.address() as any).port}/w`, { method: 'POST' })
  await res.body.dump()
  t.match(res.headers['set-cookie'], /^litefs-txid=0000000000000004;/)
  t.equal(app.litefs.state, state)
})

t.test('bad options fail registration, naming the option', async t => {
  for (const [opts, re] of [
    [{ db: 'app.db', readTimeout: 'soon' }, /"readTimeout" must be a positive duration/],
    [{}, /"db" must be/],
    [{ db: 'app.db', api: 'ftp://x' }, /"api"/],
    [{ db: 'app.db', typo: 1 }, /unknown option "typo"/]
  ] as const) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(litefs, opts as any) }, re)
    await app.close()
  }
})

t.test('a closed app leaves nothing running: the process exits by itself', async t => {
  const code = await new Promise<number | null>(resolve => {
    // The same loaders as this test (TypeScript, coverage): the child runs our source.
    const child = spawn(process.execPath, [...process.execArgv, new URL('./helpers/close-exits.ts', import.meta.url).pathname], { stdio: 'inherit' })
    child.on('exit', resolve)
  })
  t.equal(code, 0)
})

function stateOf (served: Served): NodeState {
  return served.app.litefs.state
}
function heldCount (served: Served): number {
  return stateOf(served).waiterCount
}
