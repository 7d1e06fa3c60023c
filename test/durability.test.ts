// `durability` (issue 21) through real sockets, for every adapter: a write
// served by the primary is answered only once every connected candidate has
// reported its cookie TXID; a candidate that does not get there in
// `durabilityTimeout` — or no candidate at all — turns the answer into 500
// LITEFS_NOT_REPLICATED with the cookie and no Retry-After; non-candidates and
// candidates gone silent do not count; a route's own setting wins; without
// peerSecret nothing can report. Candidates are played by signed reports sent
// by the test, and once by a replica's own litefs-proxy.
import t, { type Test } from 'tap'
import { request } from 'undici'
import { ADAPTERS, serve, type AdapterName, type Served } from './helpers/apps.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { PEER_HEADER, signReport } from '../lib/core/replica-report.js'
import { PEER_PATH } from '../lib/core/durability-options.js'
import { serveOptions } from '../lib/sidecar/settings.js'
import type { LitefsOptions } from '../lib/core/options.js'

const SECRET = 'a-peer-secret-of-some-length'
const hex = (n: bigint): string => n.toString(16).padStart(16, '0')

async function report (url: string, hostname: string, position: bigint, candidate = true): Promise<void> {
  const body = JSON.stringify({ hostname, candidate, positions: { 'app.db': hex(position) } })
  const res = await request(url + PEER_PATH, { method: 'POST', body, headers: { 'content-type': 'application/json', [PEER_HEADER]: signReport(SECRET, body) } })
  await res.body.dump()
  if (res.statusCode !== 204) throw new Error(`report refused: ${res.statusCode}`)
}

interface Answer { status: number, code?: string, error?: string, cookie?: string, retryAfter?: string }

/** A write, and a flag saying whether its answer came. */
function write (app: Served, path = '/items'): { done: () => boolean, answer: Promise<Answer> } {
  let came = false
  const answer = request(app.url + path, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }).then(async res => {
    const text = await res.body.text()
    came = true
    let code: string | undefined
    let error: string | undefined
    try { ({ code, error } = JSON.parse(text)) } catch {}
    const set = res.headers['set-cookie']
    return { status: res.statusCode, code, error, cookie: Array.isArray(set) ? set[0] : set, retryAfter: res.headers['retry-after'] as string | undefined }
  })
  return { done: () => came, answer }
}

async function primary (t: Test, adapter: AdapterName, opts: Partial<LitefsOptions> = {}, routes?: Parameters<typeof serve>[3]): Promise<{ fake: FakeLitefs, app: Served }> {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(() => fake.close())
  const app = await serve(adapter, fake, { peerSecret: SECRET, durability: true, durabilityTimeout: 300, ...opts }, routes)
  t.teardown(app.close)
  return { fake, app }
}

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: the answer waits for every connected candidate`, async t => {
    const { app } = await primary(t, adapter, { durabilityTimeout: 30_000 })
    await report(app.url, 'c1', 10n)
    await report(app.url, 'c2', 10n)
    await report(app.url, 'r1', 0n, false) // not a candidate: never waited for
    const w = write(app) // the handler commits TXID 11
    await until(() => app.stats().durability?.waits === 1, 'the answer is held')
    await report(app.url, 'c1', 11n)
    await new Promise(resolve => setImmediate(resolve))
    t.notOk(w.done(), 'one candidate of two has it: still held')
    await report(app.url, 'c2', 12n)
    const a = await w.answer
    t.equal(a.status, 200, "the app's answer, once both have it")
    t.match(a.cookie, /^litefs-txid=000000000000000b;/)
    t.same(app.stats().durability, { waits: 1, replicated: 1, notReplicated: 0 })
  })

  t.test(`${adapter}: past durabilityTimeout, 500 LITEFS_NOT_REPLICATED with the cookie`, async t => {
    const { app } = await primary(t, adapter)
    await report(app.url, 'c1', 10n)
    const a = await write(app).answer
    t.equal(a.status, 500)
    t.equal(a.code, 'LITEFS_NOT_REPLICATED')
    t.match(a.cookie, /^litefs-txid=000000000000000b;/, 'the cookie still set: the write is there')
    t.equal(a.retryAfter, undefined, 'nothing invites a retry')
    t.same(app.stats().durability, { waits: 1, replicated: 0, notReplicated: 1 })
  })

  t.test(`${adapter}: no candidate connected, 500`, async t => {
    const { app } = await primary(t, adapter)
    const a = await write(app).answer
    t.equal(a.code, 'LITEFS_NOT_REPLICATED')
  })

  t.test(`${adapter}: a route that says no, and a write already replicated`, async t => {
    const { app, fake } = await primary(t, adapter, adapter === 'http' ? { durability: ['/items'] } : {}, {
      routes: [{ method: 'POST', path: '/quick', setting: adapter === 'http' ? undefined : { durability: false }, handler: () => { fake.advance(fake.txid + 1n, { event: false }); return { body: 'q' } } }]
    })
    const quick = await write(app, '/quick').answer
    t.equal(quick.status, 200, 'not waited for')
    t.equal(app.stats().durability?.waits, 0)
    await report(app.url, 'c1', 100n)
    const a = await write(app).answer
    t.equal(a.status, 200, 'a candidate ahead already: answered at once')
  })
}

t.test('only non-candidates report: the 500 says so', async t => {
  const { app } = await primary(t, 'http')
  await report(app.url, 'r1', 10n, false)
  const a = await write(app).answer
  t.equal(a.code, 'LITEFS_NOT_REPLICATED')
  t.match(a.error, /no candidate is reporting to this primary: the nodes reporting say they are not candidates/)
})

t.test('a candidate silent for 2 s stops counting', async t => {
  const { app } = await primary(t, 'http', { durabilityTimeout: 30_000 })
  await report(app.url, 'gone', 10n)
  await report(app.url, 'alive', 10n)
  const w = write(app)
  await until(() => app.stats().durability?.waits === 1, 'held')
  // Only 'alive' keeps reporting, as a heartbeat does.
  const beat = setInterval(() => { void report(app.url, 'alive', 11n) }, 200)
  t.teardown(() => clearInterval(beat))
  const a = await w.answer
  t.equal(a.status, 200)
  t.equal(app.stats().peers?.find(p => p.hostname === 'gone')?.connected, false)
})

t.test("a replica's own litefs-proxy releases the answer", async t => {
  const { app } = await primary(t, 'fastify', { durabilityTimeout: 30_000, peerName: 'node-a' })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 10n, candidate: true })
  t.teardown(() => rfake.close())
  const replica = await serve('fastify', rfake, { peerSecret: SECRET, peerName: 'node-b', primaryUrl: () => app.url })
  t.teardown(replica.close)
  await until(() => app.stats().peers?.some(p => p.hostname === 'node-b' && p.behind === '0') === true, 'node-b reports')
  const w = write(app)
  await until(() => app.stats().durability?.waits === 1, 'held')
  rfake.advance(11n) // LiteFS replicated it: the replica's litefs-proxy reports at once
  t.equal((await w.answer).status, 200)
})

t.test('durability without peerSecret: 500 at once, said once', async t => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const fake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  t.teardown(() => fake.close())
  const app = await serve('fastify', fake, { durability: true }) // its logger is off: the warning is a process warning
  t.teardown(app.close)
  const a = await write(app).answer
  t.equal(a.code, 'LITEFS_NOT_REPLICATED')
  await until(() => warnings.length > 0, 'the warning')
  t.match(warnings[0], /durability is on, but "peerSecret" is not set/)
})

t.test('serve flags', async t => {
  const base = ['--addr', ':8080', '--target', 'localhost:8000', '--db', 'app.db']
  const o = (argv: string[], env: Record<string, string> = {}): any => serveOptions([...base, ...argv], env, () => {})
  t.match(o(['--durability', '--peer-secret', SECRET, '--durability-timeout', '2s', '--peer-name', 'n1']), { durability: true, peerSecret: [SECRET], durabilityTimeout: 2000, peerName: 'n1' })
  t.match(o(['--durable-path', '/orders/*', '--durable-path', '/pay'], { LITEFS_PROXY_PEER_SECRET: `${SECRET},${SECRET}2` }), { durability: ['/orders/*', '/pay'], peerSecret: [SECRET, `${SECRET}2`] })
  t.equal(o([]).durability, undefined)
})
