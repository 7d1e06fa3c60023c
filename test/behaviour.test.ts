// One behaviour suite, run through real sockets against each adapter: the
// Fastify plugin, the Express middleware and the node:http wrapper.
import t from 'tap'
import { request, Agent } from 'undici'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type AdapterName, type Served, type ServeOptions } from './helpers/apps.js'
import type { LitefsOptions } from '../lib/core/options.js'

type Test = typeof t

const cookie = (txid: bigint): string => `litefs-txid=${txid.toString(16).padStart(16, '0')}`

async function get (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number, body: any, headers: Record<string, any> }> {
  const res = await request(url, { headers, method })
  const text = await res.body.text()
  let body: any = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.statusCode, body, headers: res.headers }
}

/** A primary's app that answers (its health check is all a replica asks it here). */
async function answering (t: Test): Promise<string> {
  const server = createServer((_req, res) => { res.end('{}') })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function start (t: Test, adapter: AdapterName, fakeOpts: Parameters<typeof FakeLitefs.start>[0], opts: Partial<LitefsOptions> = {}, extra: ServeOptions = {}): Promise<{ fake: FakeLitefs, served: Served, url: string }> {
  const fake = await FakeLitefs.start(fakeOpts)
  const served = await serve(adapter, fake, opts, extra)
  t.teardown(async () => { await served.close(); await fake.close() })
  return { fake, served, url: served.url }
}

for (const adapter of ADAPTERS) {
  t.test(adapter, async t => {
    const replica = async (t: Test, opts: Partial<LitefsOptions> = {}): Promise<{ fake: FakeLitefs, served: Served, url: string }> =>
      await start(t, adapter, { role: 'replica', primary: 'node-a', txid: 5n }, opts)

    t.test('a read whose cookie is ahead is held until a tx event, then served', async t => {
      const { fake, url, served } = await replica(t)
      await until(() => fake.subscribers === 1)
      const pending = get(`${url}/items`, { cookie: cookie(7n) })
      await until(() => served.state.waiterCount === 1, 'held')
      fake.advance(6n, { file: false })
      await until(() => served.state.position('app.db') === 6n)
      t.equal(served.state.waiterCount, 1, 'not yet: 6 < 7')
      fake.advance(7n, { file: false })
      const res = await pending
      t.equal(res.status, 200)
      t.equal(res.body.litefs.kind, 'read')
      t.equal(res.body.litefs.awaitedTxid, '0000000000000007')
      t.type(res.body.litefs.waitedMs, 'number')
      t.equal(res.headers['set-cookie'], undefined, 'a read sets no cookie')
    })

    t.test('with the API down, the polling feed releases the read', async t => {
      const { fake, served } = await start(t, adapter, { role: 'replica', txid: 5n, api: false }, { api: 'http://127.0.0.1:9' })
      const pending = get(`${served.url}/items`, { cookie: cookie(9n) })
      await until(() => served.state.waiterCount === 1, 'held')
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

    t.test('past readTimeout: 504 with a one-line JSON body', async t => {
      const { url } = await replica(t, { readTimeout: 30 })
      const res = await get(`${url}/items`, { cookie: cookie(99n) })
      t.equal(res.status, 504)
      t.equal(res.body.code, 'LITEFS_READ_TIMEOUT')
      t.match(res.body.error, /did not reach TXID 0000000000000063/)
      t.match(res.headers['content-type'], /application\/json/)
    })

    t.test('the primary never holds a read, even for a cookie ahead of it', async t => {
      const { served } = await start(t, adapter, { role: 'primary', txid: 5n })
      await until(() => served.state.role === 'primary')
      const res = await get(`${served.url}/items`, { cookie: cookie(500n) })
      t.equal(res.status, 200)
      t.equal(res.body.litefs.waitedMs, undefined)
      t.equal(res.body.litefs.awaitedTxid, '00000000000001f4')
    })

    t.test('a client that disconnects while held leaves no waiter behind', async t => {
      const { url, served } = await replica(t)
      const client = httpRequest(`${url}/items`, { headers: { cookie: cookie(50n) }, agent: false })
      client.on('error', () => {})
      client.end()
      await until(() => served.state.waiterCount === 1, 'held')
      client.destroy()
      await until(() => served.state.waiterCount === 0, 'waiter gone')
      t.equal(served.state.waiterCount, 0)
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
      await until(() => served.state.waiterCount === 1000, '1,000 held')
      fake.advance(8n, { file: false }) // one event
      const results = await Promise.all(all)
      t.ok(results.every(r => r.status === 200 && r.body.litefs.waitedMs !== undefined), 'all 1,000 served after waiting')
      t.equal(served.state.waiterCount, 0)
    })

    t.test('a write on the primary gets the position after its commit; the app\'s cookies stay', async t => {
      const { fake, served } = await start(t, adapter, { role: 'primary', txid: 5n }, {}, {
        routes: [{
          method: 'POST',
          path: '/two-cookies',
          handler: () => {
            fake.advance(fake.txid + 1n, { event: false })
            return { headers: { 'set-cookie': ['app=1; Path=/', 'app2=2; Path=/'] }, body: 'ok' }
          }
        }]
      })
      await until(() => served.state.role === 'primary')
      const res = await request(`${served.url}/items`, { method: 'POST' })
      const body = await res.body.json() as any
      t.equal(res.statusCode, 200)
      t.equal(res.headers['set-cookie'], 'litefs-txid=0000000000000006; Path=/; HttpOnly; SameSite=Lax; Max-Age=300',
        'the new position (6), not the one before the handler (5)')
      t.equal(body.litefs.local, true)
      const res2 = await request(`${served.url}/two-cookies`, { method: 'POST' })
      await res2.body.dump()
      t.same(res2.headers['set-cookie'], ['app=1; Path=/', 'app2=2; Path=/', 'litefs-txid=0000000000000007; Path=/; HttpOnly; SameSite=Lax; Max-Age=300'])
    })

    t.test('concurrent writes: each cookie is at or after that write\'s own commit', async t => {
      const { fake, served } = await start(t, adapter, { role: 'primary', txid: 5n }, {}, {
        routes: [{
          method: 'POST',
          path: '/commit',
          handler: () => {
            fake.advance(fake.txid + 1n, { event: false })
            return { body: { committed: Number(fake.txid) } }
          }
        }]
      })
      await until(() => served.state.role === 'primary')
      const agent = new Agent({ connections: 50 })
      t.teardown(() => agent.close())
      const results = await Promise.all(Array.from({ length: 200 }, async () => {
        const res = await request(`${served.url}/commit`, { method: 'POST', dispatcher: agent })
        const { committed } = await res.body.json() as { committed: number }
        return { committed, cookie: parseInt(/litefs-txid=([0-9a-f]{16})/.exec(String(res.headers['set-cookie']))?.[1] ?? '0', 16) }
      }))
      t.ok(results.every(r => r.cookie >= r.committed), 'no cookie behind its own write')
      t.equal(new Set(results.map(r => r.committed)).size, 200, '200 distinct commits')
    })

    t.test('Secure over HTTPS, behind a trusted proxy', async t => {
      const { served } = await start(t, adapter, { role: 'primary', txid: 1n }, {}, { trustProxy: true })
      await until(() => served.state.role === 'primary')
      const res = await request(`${served.url}/items`, { method: 'POST', headers: { 'x-forwarded-proto': 'https' } })
      await res.body.dump()
      t.match(res.headers['set-cookie'], /; Secure$/)
      const plain = await request(`${served.url}/items`, { method: 'POST' })
      await plain.body.dump()
      t.notMatch(plain.headers['set-cookie'], /Secure/)
    })

    t.test('passthrough: no wait, no cookie; alwaysForward makes a GET a write', async t => {
      const { fake, served } = await start(t, adapter, { role: 'replica', txid: 5n }, { passthrough: ['/static/*'], alwaysForward: ['/oauth/*'], forward: 'fly-replay' })
      await until(() => served.state.primaryHostname === 'node-a')
      for (const path of ['/static/app.js', '/opt-out']) {
        const res = await get(`${served.url}${path}`, { cookie: cookie(99n) })
        t.equal(res.status, 200, `${path} served at once`)
        t.equal(res.body.litefs?.kind ?? 'passthrough', 'passthrough')
      }
      for (const path of ['/oauth/callback', '/to-primary']) {
        const res = await get(`${served.url}${path}`)
        t.equal(res.status, 200, `${path} is a write: replayed on the primary`)
        t.equal(res.headers['fly-replay'], 'instance=node-a')
        t.equal(res.body, '', 'the app did not run')
      }
      fake.becomePrimary()
      await until(() => served.state.role === 'primary')
      const post = await request(`${served.url}/static/upload`, { method: 'POST' })
      await post.body.dump()
      t.equal(post.headers['set-cookie'], undefined, 'a passthrough write gets no cookie')
      const oauth = await request(`${served.url}/oauth/callback`)
      await oauth.body.dump()
      t.match(oauth.headers['set-cookie'], /^litefs-txid=0000000000000005;/, 'an alwaysForward GET on the primary gets the cookie')
    })

    t.test('OPTIONS is a read: a CORS preflight is not a write', async t => {
      const { url } = await replica(t, { forward: 'fly-replay' })
      const res = await request(`${url}/items`, { method: 'OPTIONS' })
      await res.body.dump()
      t.equal(res.statusCode, 204)
      t.equal(res.headers['fly-replay'], undefined)
    })

    t.test('a write on a replica without a known primary: held, then 503 with Retry-After', async t => {
      const { fake, served } = await replica(t, { primaryRedirectTimeout: 20 })
      await until(() => served.state.primaryHostname === 'node-a')
      fake.losePrimary()
      await until(() => served.state.primaryHostname === undefined)
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
      const { fake, served } = await replica(t, { maxLag: '1s', primaryUrl: await answering(t) })
      let res = await get(`${served.url}/litefs/health`)
      t.equal(res.status, 200)
      t.same(res.body, { status: 'ok', role: 'replica', primary: 'node-a', lag: 829, txid: '0000000000000005' })
      fake.setLag(4000)
      res = await get(`${served.url}/litefs/health`)
      t.equal(res.status, 503)
      t.equal(res.body.status, 'lagging')
      const head = await request(`${served.url}/litefs/health`, { method: 'HEAD' })
      t.equal(await head.body.text(), '')
      t.equal(head.statusCode, 503)
      fake.setLag(2147483647) // before the first sync
      t.equal((await get(`${served.url}/litefs/health`)).status, 503)
    })

    t.test("health: unreachable while the primary's app cannot be reached (a write would fail); ok once it answers", async t => {
      let target = 'http://127.0.0.1:9' // nothing listens there
      const { served } = await replica(t, { primaryUrl: () => target, primaryRedirectTimeout: 200 })
      let res = await get(`${served.url}/litefs/health`)
      t.equal(res.status, 503, 'the first answer asked the primary first')
      t.same(res.body, { status: 'unreachable', role: 'replica', primary: 'node-a', lag: 829, txid: '0000000000000005', unreachable: { origin: 'http://127.0.0.1:9', error: 'ECONNREFUSED' } })
      const write = await get(`${served.url}/items`, {}, 'POST')
      t.equal(write.status, 503, 'as a write does')
      t.equal(write.body.code, 'LITEFS_NO_PRIMARY')
      target = await answering(t)
      let status = 0
      for (let i = 0; i < 50 && status !== 200; i++) { // asked again within a second
        if (i > 0) await new Promise(resolve => setTimeout(resolve, 100))
        status = (await get(`${served.url}/litefs/health`)).status
      }
      t.equal(status, 200, 'ok once the primary answers')
      t.equal((await get(`${served.url}/items`, {}, 'POST')).status, 200, 'and a write goes through')
    })

    t.test('health: unreachable, at once, when primaryUrl gives no URL for the primary', async t => {
      const { served } = await replica(t, { primaryUrl: (host: string) => { throw new Error(`no URL for ${host} here`) } })
      const res = await get(`${served.url}/litefs/health`)
      t.equal(res.status, 503)
      t.same(res.body.unreachable, { origin: null, error: 'primaryUrl threw for the primary "node-a": no URL for node-a here' })
    })

    t.test('health: maxLag 0 disables; a custom path; false turns it off', async t => {
      const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
      fake.setLag(99_999)
      const a = await serve(adapter, fake, { maxLag: 0, healthPath: '/healthz', primaryUrl: await answering(t) })
      const b = await serve(adapter, fake, { healthPath: false })
      t.teardown(async () => { await a.close(); await b.close(); await fake.close() })
      t.equal((await get(`${a.url}/healthz`)).status, 200)
      t.equal((await get(`${b.url}/litefs/health`)).status, 404)
    })
  })
}
