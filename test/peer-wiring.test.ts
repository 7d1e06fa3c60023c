// Replica reports wired into the core (issue 21), through real sockets, for
// every adapter: a replica's litefs-proxy reports its candidacy (LiteFS's
// /info) and position to the primary's at the URL primaryUrl gives, the
// primary's table shows it in stats() and health, and the endpoint takes only
// signed reports (403 otherwise, 400 for a signed non-report); without
// peerSecret it does not exist (the app's own 404).
import t from 'tap'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import { litefs } from '../lib/fastify.js'
import { request } from 'undici'
import { ADAPTERS, serve } from './helpers/apps.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { PEER_HEADER, signReport } from '../lib/core/replica-report.js'
import { PEER_PATH } from '../lib/core/durability-options.js'
import { resolveOptions } from '../lib/core/options.js'

const SECRET = 'a-peer-secret-of-some-length'

async function post (url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const res = await request(url + PEER_PATH, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })
  const text = await res.body.text()
  let parsed: any = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.statusCode, body: parsed }
}

/** The refusal of a report from a stranger who gave no name, said once in this process (by whichever adapter met it first). */
let strangerSaid = ''

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: a replica reports to the primary, which shows it`, async t => {
    const pfake = await FakeLitefs.start({ role: 'primary', txid: 5n })
    const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 3n, candidate: true })
    t.teardown(async () => { await pfake.close(); await rfake.close() })
    const primary = await serve(adapter, pfake, { peerSecret: SECRET, peerName: 'node-a' })
    t.teardown(primary.close)
    const replica = await serve(adapter, rfake, { peerSecret: SECRET, peerName: 'node-b', primaryUrl: () => primary.url })
    t.teardown(replica.close)
    // Express and node:http learn their port from a first request (a balancer's health check).
    await request(replica.url + '/litefs/health').then(async r => await r.body.dump())
    await until(() => primary.stats().peers?.some(p => p.hostname === 'node-b' && p.connected && p.behind === '2') === true, 'the primary lists node-b, 2 behind')
    const peer = primary.stats().peers?.[0]
    t.equal(peer?.candidate, true, 'its candidacy, from its LiteFS /info')
    t.ok(Date.parse(peer?.since as string) <= Date.now(), 'since when it reports')
    t.same(primary.stats().durability, { waits: 0, replicated: 0, notReplicated: 0 })
    // A position change is reported at once.
    rfake.advance(5n)
    await until(() => primary.stats().peers?.[0]?.behind === '0', 'node-b caught up')
    const health = await request(primary.url + '/litefs/health')
    t.same((await health.body.json() as any).peers, [{ hostname: 'node-b', candidate: true, connected: true, behind: '0' }], 'health on the primary lists its peers')
    t.notOk(replica.stats().peers?.length, 'the replica has no peers of its own')
  })

  t.test(`${adapter}: two processes reporting one name: both counted, said once (LITEFS_PEER_NAME)`, async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
    t.teardown(() => fake.close())
    const said: Array<{ code?: string, hostname?: string }> = []
    const logger = { debug () {}, info () {}, error () {}, warn (o: { code?: string, hostname?: string }) { said.push(o) } }
    // Fastify logs through its own logger; warnings are said once per process and name (warnings.ts): one name per adapter.
    const app = await serve(adapter, fake, { peerSecret: SECRET, ...(adapter === 'fastify' ? {} : { logger }) } as never)
    t.teardown(app.close)
    const vm = `vm-${adapter}`
    const report = (instance: string, hex: string): string => JSON.stringify({ hostname: vm, candidate: true, positions: { 'app.db': hex }, instance })
    for (const [instance, hex] of [['a', '0000000000000009'], ['b', '0000000000000004'], ['a', '0000000000000009'], ['b', '0000000000000004']]) {
      const body = report(instance, hex)
      t.equal((await post(app.url, body, { [PEER_HEADER]: signReport(SECRET, body) })).status, 204)
    }
    t.same(app.stats().peers?.map(p => [p.hostname, p.behind]), [[vm, '0'], [vm, '0']], 'two rows, one name')
    if (adapter === 'fastify') return
    t.equal(said.filter(o => o.code === 'LITEFS_PEER_NAME').length, 1, 'said once')
    t.match(said.find(o => o.code === 'LITEFS_PEER_NAME'), { hostname: vm })
  })

  t.test(`${adapter}: the endpoint takes only signed reports`, async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
    t.teardown(() => fake.close())
    const app = await serve(adapter, fake, { peerSecret: [SECRET, 'another-secret-16+'] })
    t.teardown(app.close)
    const report = JSON.stringify({ hostname: 'x', candidate: true, positions: { 'app.db': '0000000000000001' } })
    const unsigned = await post(app.url, report)
    t.equal(unsigned.status, 403)
    t.equal(unsigned.body.code, 'LITEFS_PEER_REFUSED')
    const wrong = await post(app.url, report, { [PEER_HEADER]: signReport('not-the-secret-at-all', report) })
    t.equal(wrong.status, 403, 'signed with another secret')
    const old = await post(app.url, report, { [PEER_HEADER]: signReport(SECRET, report, Date.now() - 60_000) })
    t.equal(old.status, 403, 'signed a minute ago: a replay')
    const garbage = '{"hostname":1}'
    const bad = await post(app.url, garbage, { [PEER_HEADER]: signReport(SECRET, garbage) })
    t.equal(bad.status, 400)
    t.equal(bad.body.code, 'LITEFS_BAD_REPORT')
    const huge = 'x'.repeat(70_000)
    t.equal((await post(app.url, huge, { [PEER_HEADER]: signReport(SECRET, huge) })).status, 400, 'past 64 KiB')
    const rotated = await post(app.url, report, { [PEER_HEADER]: signReport('another-secret-16+', report) })
    t.equal(rotated.status, 204, 'any of the secrets verifies')
    t.equal(app.stats().peers?.[0]?.hostname, 'x')
  })

  t.test(`${adapter}: refused reports are said once per sender, naming it, and again when its reports are taken (walk 5: twice a second, for ever)`, async t => {
    if (adapter === 'fastify') return t.pass('Fastify logs through its own logger: the words are the same (peer-endpoint.ts)')
    const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
    t.teardown(() => fake.close())
    const said: Array<{ code?: string, message: string }> = []
    const infos: string[] = []
    const logger = { debug () {}, error () {}, info (_o: unknown, m: string) { infos.push(m) }, warn (o: { code?: string }, m: string) { said.push({ code: o.code, message: m }) } }
    const app = await serve(adapter, fake, { peerSecret: SECRET, logger } as never)
    t.teardown(app.close)
    const name = `wrong-secret-${adapter}` // warnings are per process: a name of its own
    const report = JSON.stringify({ hostname: name, candidate: true, positions: { 'app.db': '0000000000000001' } })
    t.equal((await post(app.url, 'not json')).status, 403, 'a stranger sending no report at all')
    for (let i = 0; i < 5; i++) t.equal((await post(app.url, report, { [PEER_HEADER]: signReport('not-the-secret-at-all', report) })).status, 403)
    const refused = said.filter(o => o.code === 'LITEFS_PEER_REFUSED')
    // The stranger (no name) is said once per process: by the first adapter tested here.
    const unnamed = refused.filter(o => !o.message.includes('which says it is'))
    t.ok(unnamed.length <= 1, 'the stranger, at most once')
    if (unnamed.length === 1) strangerSaid = unnamed[0].message
    const named = refused.filter(o => o.message.includes(`which says it is ${name}`))
    t.equal(named.length, 1, 'five refused reports of one node, said once')
    t.match(named[0].message, new RegExp(`refused a peer report: bad or missing signature from 127\\.0\\.0\\.1, which says it is ${name}: is "?peerSecret"? the same on every node`))
    t.equal((await post(app.url, report, { [PEER_HEADER]: signReport(SECRET, report) })).status, 204)
    t.match(infos, [new RegExp(`the reports of ${name} at 127\\.0\\.0\\.1 are taken now`)], 'and when it is right again')
  })

  t.test(`${adapter}: without peerSecret there is no endpoint`, async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
    t.teardown(() => fake.close())
    const app = await serve(adapter, fake)
    t.teardown(app.close)
    const res = await post(app.url, '{}')
    t.equal(res.status, 404, "the app's own answer")
    t.equal(app.stats().peers, undefined)
  })
}

t.test('options', async t => {
  const o = (extra: Record<string, unknown>): unknown => resolveOptions({ db: 'app.db', ...extra }).durability
  t.same(o({}), { on: false, timeout: 5000, secrets: [], name: undefined })
  t.match(o({ durability: true, durabilityTimeout: '2s', peerSecret: SECRET, peerName: 'n1' }), { on: true, timeout: 2000, secrets: [SECRET], name: 'n1' })
  t.throws(() => o({ durability: 'yes' }), /option "durability" must be true, false, or a non-empty array/)
  t.throws(() => o({ durability: [] }), /option "durability"/)
  t.throws(() => o({ durabilityTimeout: 0 }), /option "durabilityTimeout" must be a positive duration/)
  t.throws(() => o({ peerSecret: 'short' }), /option "peerSecret" must be .* got "a string of 5 characters"/)
  t.throws(() => o({ peerSecret: ['short'] }), /got "an array of 1"/)
  t.throws(() => o({ peerSecret: 7 }), /got 7/)
  t.throws(() => o({ peerName: '' }), /option "peerName"/)
})

t.test('a stranger sending no report at all was said once, naming its address only', async t => {
  t.match(strangerSaid, /refused a peer report: bad or missing signature from 127\.0\.0\.1: is "?peerSecret"? the same/)
})

t.test("fastify: replicas' reports stay out of an info log; under a prefix the route is not theirs", async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  t.teardown(() => fake.close())
  const lines: Array<{ msg: string, url?: string }> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { const o = JSON.parse(chunk.toString()); lines.push({ msg: o.msg, url: o.req?.url }); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, peerSecret: SECRET })
  app.get('/items', async () => ({}))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await until(() => app.litefs.state.role === 'primary', 'primary')
  const body = JSON.stringify({ hostname: 'quiet', candidate: true, positions: { 'app.db': '0000000000000001' } })
  for (let i = 0; i < 3; i++) t.equal((await post(url, body, { [PEER_HEADER]: signReport(SECRET, body) })).status, 204)
  await request(`${url}/items`).then(async r => await r.body.dump())
  t.same(lines.filter(l => l.msg === 'incoming request').map(l => l.url), ['/items'], 'three reports, no line; the read, its line')
  t.equal(app.litefs.stats().peers?.[0]?.hostname, 'quiet', 'the reports were taken')

  const scopedApp = Fastify()
  await scopedApp.register(async scoped => {
    await scoped.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, peerSecret: SECRET })
  }, { prefix: '/api' })
  await scopedApp.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => scopedApp.close())
  const prefixed = await request(`http://127.0.0.1:${(scopedApp.server.address() as { port: number }).port}/api${PEER_PATH}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  t.equal(prefixed.statusCode, 404, `under a prefix: the app's route, not a report (${await prefixed.body.text()})`)
})
