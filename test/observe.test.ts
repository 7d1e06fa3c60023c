// Observability, in every adapter, through real sockets: stats(), the
// diagnostics channels, Server-Timing, and maxWaiting under overload.
import t from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type AdapterName, type Served } from './helpers/apps.js'
import { CHANNELS, type LitefsStats } from '../lib/core/observe.js'
import { LitefsCore } from '../lib/core/proxy.js'

type Test = typeof t

function statsOf (served: Served & { stats?: () => LitefsStats }): LitefsStats {
  return (served.stats as () => LitefsStats)()
}

async function nodes (t: Test, adapter: AdapterName, replicaOpts: Record<string, unknown> = {}): Promise<{ primary: Served, replica: Served, rfake: FakeLitefs }> {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await pfake.close(); await rfake.close() })
  const primary = await serve(adapter, pfake, { serverTiming: true })
  const replica = await serve(adapter, rfake, { primaryUrl: () => primary.url, serverTiming: true, ...replicaOpts })
  t.teardown(async () => { await replica.close(); await primary.close() })
  return { primary, replica, rfake }
}

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: stats(), channels and Server-Timing`, async t => {
    const { primary, replica, rfake } = await nodes(t, adapter, { readTimeout: 60_000 })
    const seen: Array<[string, any]> = []
    const listeners = Object.values(CHANNELS).map(name => {
      const fn = (message: unknown): void => { seen.push([name, message]) }
      subscribe(name, fn)
      return [name, fn] as const
    })
    t.teardown(() => { for (const [name, fn] of listeners) unsubscribe(name, fn) })

    const before = statsOf(replica)
    t.match(before, { held: 0, waits: 0, forwards: 0, cookies: 0, feed: 'events', litefs: 'up', role: 'replica', primary: 'node-a' })

    const read = request(`${replica.url}/items`, { headers: { cookie: 'litefs-txid=0000000000000006' } })
    await until(() => statsOf(replica).held === 1, 'held, as stats() says')
    rfake.advance(6n)
    const r = await read
    await r.body.dump()
    t.match(r.headers['server-timing'], /^litefs;dur=\d+\.\d;desc="wait"$/, 'Server-Timing on the read that waited')

    const w = await request(`${replica.url}/items`, { method: 'POST', body: 'x' })
    await w.body.dump()
    t.match(String(w.headers['server-timing']), /litefs;dur=\d+\.\d;desc="forward"/, 'Server-Timing on the forwarded write')
    const after = statsOf(replica)
    t.match(after, { held: 0, waits: 1, timeouts: 0, forwards: 1, forwardErrors: {} })
    t.equal(statsOf(primary).cookies, 1, 'the primary cookied the write')

    const names = seen.map(s => s[0])
    t.ok(names.includes(CHANNELS.waitStart) && names.includes(CHANNELS.waitEnd), 'wait start and end published')
    const end = seen.find(s => s[0] === CHANNELS.waitEnd)?.[1]
    t.match(end, { kind: 'position', result: 'ready' })
    t.type(end.ms, 'number')
    t.match(seen.find(s => s[0] === CHANNELS.waitStart)?.[1], { kind: 'position', txid: '0000000000000006' })
    t.match(seen.find(s => s[0] === CHANNELS.forwardEnd)?.[1], { outcome: 'sent', origin: primary.url })
    t.match(seen.find(s => s[0] === CHANNELS.cookieSet)?.[1], { txid: '000000000000000b' })
    t.ok(seen.every(s => s[1].request !== undefined), 'each message carries its request')
  })

  t.test(`${adapter}: maxWaiting: past it, 503 LITEFS_OVERLOADED at once; failures counted by code`, async t => {
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    t.teardown(async () => { await fake.close() })
    const s = await serve(adapter, fake, { maxWaiting: 2, readTimeout: 60_000, primaryUrl: () => 'http://127.0.0.1:9', primaryRedirectTimeout: 50 })
    t.teardown(async () => { await s.close() })
    const held = [1, 2].map(async () => await request(`${s.url}/items`, { headers: { cookie: 'litefs-txid=00000000000000ff' } }))
    await until(() => statsOf(s).held === 2)
    const third = await request(`${s.url}/items`, { headers: { cookie: 'litefs-txid=00000000000000ff' } })
    t.equal(third.statusCode, 503)
    t.equal(third.headers['retry-after'], '1')
    t.match(await third.body.json(), { code: 'LITEFS_OVERLOADED', error: /2 requests are held already/ })
    t.equal(statsOf(s).overloaded, 1)
    fake.advance(0xffn)
    for (const r of await Promise.all(held)) { t.equal(r.statusCode, 200); await r.body.dump() }
    const refused = await request(`${s.url}/items`, { method: 'POST', body: 'x' })
    t.equal(refused.statusCode, 503)
    await refused.body.dump()
    t.match(statsOf(s).forwardErrors, { LITEFS_NO_PRIMARY: 1 }, 'a forward that failed, by code')
    t.equal(LitefsCore.heldInProcess, 0, 'nothing left held in the process')
  })
}

t.test('the feed in stats(): events, polling while the stream is down, files with api: false; the dev state', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const s = await serve('http', fake)
  const files = await serve('http', fake, { api: false })
  t.teardown(async () => { await s.close(); await files.close() })
  t.equal(statsOf(s).feed, 'events')
  t.equal(statsOf(files).feed, 'files')
  await fake.stopApi()
  await until(() => statsOf(s).feed === 'polling')
  t.equal(statsOf(s).litefs, 'stream-lost')
  const { NodeState } = await import('../lib/core/node-state.js')
  const dev = await serve('http', fake, { state: new NodeState({ readPosition: () => 1n, readLag: () => 0 }) })
  t.teardown(async () => { await dev.close() })
  t.equal(statsOf(dev).feed, 'state')
})

t.test('options: maxWaiting and serverTiming are checked', async t => {
  const { resolveOptions } = await import('../lib/core/options.js')
  t.throws(() => resolveOptions({ db: 'a', maxWaiting: -1 }), /"maxWaiting" must be a whole number ≥ 0, got -1/)
  t.throws(() => resolveOptions({ db: 'a', serverTiming: 'yes' }), /"serverTiming" must be true or false/)
  t.match(resolveOptions({ db: 'a' }), { maxWaiting: 10_000, serverTiming: false })
})
