// "Our view of LiteFS outlives LiteFS", in every adapter, through real sockets:
// an app whose LiteFS stopped must never write (the directory under a dead
// mount is a plain one where SQLite creates a new database), must recover by
// itself when LiteFS is back, and a replica must never forward into the gap of
// a primary that LiteFS names but cannot reach (the retry blip).
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type AdapterName, type Served } from './helpers/apps.js'
import type { LitefsOptions } from '../lib/core/options.js'
import { FORWARDED_HEADER } from '../lib/core/forward.js'

type Test = typeof t

async function call (url: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number, body: any, headers: Record<string, any> }> {
  const res = await request(url, { method, headers, body: method === 'POST' ? 'x' : undefined })
  const text = await res.body.text()
  let body: any = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.statusCode, body, headers: res.headers }
}

async function node (t: Test, adapter: AdapterName, fakeOpts: Parameters<typeof FakeLitefs.start>[0], opts: Partial<LitefsOptions> = {}): Promise<{ fake: FakeLitefs, served: Served }> {
  const fake = await FakeLitefs.start(fakeOpts)
  const served = await serve(adapter, fake, opts)
  t.teardown(async () => { await served.close(); await fake.close() })
  return { fake, served }
}

/** A stand-in primary app that counts what reaches it. */
async function countingPrimary (t: Test): Promise<{ url: string, hits: () => number }> {
  let hits = 0
  const server: Server = createServer((req, res) => {
    hits++
    req.resume()
    req.on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end('{"at":"primary"}'))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

for (const adapter of ADAPTERS) {
  t.test(adapter, async t => {
    t.test('an orphaned primary app (its LiteFS stopped) serves no write, says unavailable, holds reads', async t => {
      const { fake, served } = await node(t, adapter, { role: 'primary', txid: 5n }, { primaryRedirectTimeout: 30, readTimeout: 30 })
      await fake.stop()
      await until(() => served.state.litefs === 'down', 'the app sees LiteFS gone')
      const write = await call(`${served.url}/items`, 'POST')
      t.equal(write.status, 503)
      t.equal(write.body.code, 'LITEFS_UNAVAILABLE')
      t.equal(write.headers['retry-after'], '1')
      t.equal(write.headers['set-cookie'], undefined)
      const forwarded = await call(`${served.url}/items`, 'POST', { [FORWARDED_HEADER]: 'node-b' })
      t.equal(forwarded.status, 503, 'a write forwarded to it by a replica: the same')
      t.equal(forwarded.body.code, 'LITEFS_UNAVAILABLE')
      t.equal(served.writes, 0, 'the handler never ran: nothing written under the dead mount')
      const health = await call(`${served.url}/litefs/health`)
      t.equal(health.status, 503)
      t.same(health.body, { status: 'unavailable', role: 'unknown', primary: null, lag: null, txid: '0000000000000005' })
      const read = await call(`${served.url}/items`)
      t.equal(read.status, 503, 'a read on a dead mount is held, then refused')
      t.equal(read.body.code, 'LITEFS_UNAVAILABLE')
      t.equal(served.state.waiterCount, 0)
    })

    t.test('LiteFS back: held writes are served once, with a fresh cookie; held reads are served', async t => {
      const { fake, served } = await node(t, adapter, { role: 'primary', txid: 5n }, { primaryRedirectTimeout: 60_000, readTimeout: 60_000 })
      await fake.stop()
      await until(() => served.state.litefs === 'down')
      const write = call(`${served.url}/items`, 'POST')
      const read = call(`${served.url}/items`)
      await until(() => served.state.waiterCount === 2, 'both held')
      t.equal(served.writes, 0)
      fake.txid = 7n // LiteFS restarts at the position its data has
      await fake.restart()
      const w = await write
      t.equal(w.status, 200)
      t.equal(served.writes, 1, 'applied once')
      t.equal(w.body.litefs.local, true)
      t.match(w.headers['set-cookie'], /^litefs-txid=0000000000000008;/, 'the cookie is read from the new mount after the commit')
      const r = await read
      t.equal(r.status, 200)
      t.equal(r.body.litefs.kind, 'read')
      t.equal((await call(`${served.url}/litefs/health`)).body.status, 'ok')
    })

    t.test('the LiteFS API alone unreachable: writes wait, reads are served, health unavailable', async t => {
      const { fake, served } = await node(t, adapter, { role: 'primary', txid: 5n }, { primaryRedirectTimeout: 30 })
      await fake.stopApi()
      await until(() => served.state.litefs === 'stream-lost')
      const write = await call(`${served.url}/items`, 'POST')
      t.equal(write.body.code, 'LITEFS_UNAVAILABLE')
      t.equal(served.writes, 0)
      const read = await call(`${served.url}/items`, 'GET', { cookie: 'litefs-txid=0000000000000005' })
      t.equal(read.status, 200, 'the mount answers: reads go on')
      t.equal((await call(`${served.url}/litefs/health`)).body.status, 'unavailable')
    })

    t.test('the retry blip of a replica whose primary is down forwards nothing', async t => {
      const primary = await countingPrimary(t)
      const { fake, served } = await node(t, adapter, { role: 'replica', primary: 'node-a', txid: 5n }, { primaryUrl: () => primary.url, primaryRedirectTimeout: 60_000 })
      fake.losePrimary()
      await until(() => served.state.primaryHostname === undefined)
      fake.loseContact() // no frame from the primary any more: .lag grows
      const write = call(`${served.url}/items`, 'POST')
      await until(() => served.state.waiterCount === 1, 'held: no primary')
      for (let i = 0; i < 3; i++) fake.blip('node-a')
      await until(() => fake.subscribers === 1 && served.state.waiterCount === 1)
      await new Promise(resolve => setTimeout(resolve, 100)) // several confirmation checks pass (not a timing assertion)
      t.equal(primary.hits(), 0, 'nothing forwarded into the gap')
      t.equal(served.state.primaryHostname, undefined)

      fake.announcePrimary('node-a') // the next attempt: named, and this time it stays…
      await new Promise(resolve => setTimeout(resolve, 100))
      t.equal(primary.hits(), 0, '…but no frame came: still not forwarded')
      fake.contact() // the primary's heartbeat arrives: connected
      const res = await write
      t.equal(res.status, 201)
      t.equal(primary.hits(), 1, 'forwarded once, to the confirmed primary')
    })
  })
}
