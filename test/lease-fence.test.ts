// The lease fence (issue 19): with a Consul lease, a primary serves a write only
// while Consul has confirmed, within lock-delay less a margin, that the lease is
// its own. Through real sockets: a fake Consul (the KV shape LiteFS's lease
// uses) and a fake LiteFS primary, in every adapter.
import t from 'tap'
import { request, Agent } from 'undici'
import { LeaseFence, MARGIN, consulTarget, leaseHolder, hostnameFromInfo } from '../lib/core/lease-fence.js'
import { resolveOptions } from '../lib/core/options.js'
import { silentLogger } from '../lib/core/logger.js'
import { FakeConsul } from './helpers/fake-consul.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve } from './helpers/apps.js'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serveOptions } from '../lib/sidecar/settings.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'

const value = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64')

t.test('where the lease is: LiteFS\'s key prefix and token from the URL', async t => {
  t.same(consulTarget({ url: 'http://consul:8500', key: 'litefs/app', lockDelay: 1000 }), { origin: 'http://consul:8500', path: '/v1/kv/litefs/app?consistent', token: undefined })
  t.same(consulTarget({ url: 'https://:s%3Acret@consul.example/team-a/', key: '/app lease/', lockDelay: 1000 }), { origin: 'https://consul.example', path: '/v1/kv/team-a/app%20lease?consistent', token: 's:cret' }, 'path prefix joined as path.Join does; password is the ACL token')
})

t.test('whose the lease is, from one KV answer', async t => {
  t.same(leaseHolder(404, ''), { holder: undefined }, 'no key: nobody')
  t.same(leaseHolder(200, JSON.stringify([{ Key: 'k', Value: value({ hostname: 'node-1' }), Session: '' }])), { holder: undefined }, 'a key no session holds: nobody')
  t.same(leaseHolder(200, JSON.stringify([{ Key: 'k', Value: value({ hostname: 'node-2', 'advertise-url': 'http://node-2:20202' }), Session: 's' }])), { holder: 'node-2' })
  for (const [status, body, why] of [
    [500, 'oops', 'an error status'],
    [200, 'not json', 'not JSON'],
    [200, '[]', 'no entry'],
    [200, '{}', 'not a list'],
    [200, '[null]', 'a null entry'],
    [200, JSON.stringify([{ Session: 's' }]), 'no value'],
    [200, JSON.stringify([{ Session: 's', Value: 'bm90IGpzb24=' }]), 'a value that is not JSON'],
    [200, JSON.stringify([{ Session: 's', Value: value(null) }]), 'a null value'],
    [200, JSON.stringify([{ Session: 's', Value: value({ hostname: '' }) }]), 'an empty hostname']
  ] as const) t.equal(leaseHolder(status, body), undefined, `unusable: ${why}`)
})

t.test('the fence', async t => {
  const consul = await FakeConsul.start('node-a')
  const agent = new Agent()
  let changes: boolean[] = []
  let self: string | undefined = 'node-a'
  const fence = new LeaseFence({ url: consul.url, key: 'litefs/app', lockDelay: 1000 }, async () => self, agent, silentLogger, open => changes.push(open))
  t.teardown(async () => { fence.close(); await agent.close(); await consul.close() })
  t.equal(fence.window, 1000 - MARGIN, 'a confirmation counts for lock-delay less the margin')
  t.notOk(fence.isOpen(), 'closed until Consul says so')

  t.equal(await fence.confirm(), true, 'Consul names this node')
  t.ok(fence.isOpen())
  t.equal(fence.view, 'mine')
  t.same(changes, [true], 'opening is told')
  t.equal(consul.asked[0].path, '/v1/kv/litefs/app?consistent', 'a consistent read of the lease key')

  consul.holder = 'node-b'
  t.equal(await fence.confirm(), false)
  t.notOk(fence.isOpen(), 'another holder closes it at once')
  t.equal(fence.view, 'other')
  t.equal(fence.holder, 'node-b')
  consul.holder = undefined
  t.equal(await fence.confirm(), false)
  t.equal(fence.view, 'none')
  consul.broken = { status: 500, body: 'rpc error' }
  t.equal(await fence.confirm(), false)
  t.equal(fence.view, 'unknown', 'an answer that is no lease says nothing')
  consul.broken = undefined
  consul.holder = 'node-a'
  self = undefined
  t.equal(await fence.confirm(), false, 'while this node does not know its own hostname, nothing is confirmed')
  self = 'node-a'

  // Coalescing: questions asked while one is in flight share the next one.
  changes = []
  let release!: () => void
  consul.gate = new Promise(resolve => { release = resolve })
  const before = consul.asked.length
  const first = fence.confirm()
  await until(() => consul.asked.length === before + 1, 'the first question reaches Consul')
  const later = Array.from({ length: 20 }, () => fence.confirm())
  release()
  consul.gate = undefined
  t.same(await Promise.all([first, ...later]), Array(21).fill(true))
  t.equal(consul.asked.length, before + 2, '21 confirmations, 2 questions: one in flight, one after it for all who came later')
  t.same(changes, [true])
})

t.test('the ACL token from the URL; a fence closed while it asks stays closed', async t => {
  const consul = await FakeConsul.start('node-a')
  const agent = new Agent()
  const fence = new LeaseFence({ url: consul.url.replace('http://', 'http://:tok3n@'), key: 'k', lockDelay: 1000 }, async () => 'node-a', agent, silentLogger, () => {})
  t.teardown(async () => { await agent.close(); await consul.close() })
  t.equal(await fence.confirm(), true)
  t.equal(consul.asked[0].token, 'tok3n', 'sent as X-Consul-Token')
  let release!: () => void
  consul.gate = new Promise(resolve => { release = resolve })
  const asking = fence.confirm()
  await until(() => consul.asked.length === 2, 'asked')
  fence.close()
  release()
  t.equal(await asking, false, 'the answer of a closed fence counts for nothing')
  t.notOk(fence.isOpen())
})

t.test('a Consul that does not answer within the window: the fence fails closed', async t => {
  const consul = await FakeConsul.start('node-a')
  const agent = new Agent()
  const fence = new LeaseFence({ url: consul.url, key: 'k', lockDelay: 400 }, async () => 'node-a', agent, silentLogger, () => {})
  t.teardown(async () => { fence.close(); await agent.close(); await consul.close() })
  consul.gate = new Promise(() => {}) // partitioned: never answers
  t.equal(await fence.confirm(), false)
  t.equal(fence.view, 'unknown')
  t.notOk(fence.isOpen())
})

t.test('a Consul that is not there at all: closed, and said in the debug log', async t => {
  const agent = new Agent()
  const lines: string[] = []
  const fence = new LeaseFence({ url: 'http://127.0.0.1:1', key: 'k', lockDelay: 1000 }, async () => 'node-a', agent, { ...silentLogger, debug: (_o, m) => lines.push(m) }, () => {})
  t.teardown(async () => { fence.close(); await agent.close() })
  t.equal(await fence.confirm(), false)
  t.match(lines, [/could not ask Consul/])
})

t.test('misconfigurations said once, naming the cause (walk 5), and once more when they clear', async t => {
  const consul = await FakeConsul.start(undefined) // LiteFS's key is elsewhere: this one is held by nobody
  const agent = new Agent()
  const warned: Array<{ code?: string, message: string }> = []
  const infos: string[] = []
  const log = { ...silentLogger, warn: (o: { code?: string }, m: string) => warned.push({ code: o.code, message: m }), info: (_o: unknown, m: string) => infos.push(m) }
  const fence = new LeaseFence({ url: consul.url, key: 'litefs/wrong', lockDelay: 1000 }, async () => 'node-a', agent, log, () => {})
  const down = new LeaseFence({ url: 'http://127.0.0.1:1', key: 'k-said-once', lockDelay: 1000 }, async () => 'node-a', agent, log, () => {})
  const odd = new LeaseFence({ url: consul.url, key: 'odd', lockDelay: 1000 }, async () => 'node-a', agent, log, () => {})
  t.teardown(async () => { fence.close(); down.close(); odd.close(); await agent.close(); await consul.close() })
  for (let i = 0; i < 3; i++) t.equal(await fence.confirm(), false)
  t.same(warned.map(w => w.code), ['LITEFS_CONSUL'], 'said once, however often asked')
  t.match(warned[0].message, /Consul at http:\/\/127\.0\.0\.1:\d+ says nobody holds \/v1\/kv\/litefs\/wrong, while LiteFS says this node \(node-a\) is the primary: .*"consul\.key" is not LiteFS's lease\.consul\.key/)
  consul.holder = 'node-b'
  t.equal(await fence.confirm(), false)
  t.equal(warned.length, 1, 'another node holds it: the fence at work (a failover, a partition), not a misconfiguration')
  consul.holder = 'node-a'
  t.equal(await fence.confirm(), true)
  t.match(infos, [/Consul at http:\/\/127\.0\.0\.1:\d+ confirms this node's lease now/], 'and its end')

  for (let i = 0; i < 2; i++) t.equal(await down.confirm(), false)
  t.equal(warned.length, 2, 'a Consul that does not answer: said once')
  t.match(warned[1].message, /asking Consul at http:\/\/127\.0\.0\.1:1\/v1\/kv\/k-said-once whose the lease is failed \(ECONNREFUSED\): is "consul\.url" the Consul LiteFS uses/)

  const noInfo = new LeaseFence({ url: consul.url, key: 'no-info', lockDelay: 1000 }, async () => { throw new Error('LiteFS /info: not JSON') }, agent, log, () => {})
  t.teardown(() => { noInfo.close() })
  t.equal(await noInfo.confirm(), false)
  t.match(warned[2]?.message, /failed \(LiteFS \/info: not JSON\)/, 'an error without a code: its message')
  consul.broken = { status: 500, body: 'oops' }
  t.equal(await odd.confirm(), false)
  t.match(warned[3]?.message, /failed \(it answered 500 with something else than a lease\)/, 'an answer that is no lease: said, with its status')
})

t.test('touch: writes keep the fence confirmed in the background; idle, nothing is asked', async t => {
  const consul = await FakeConsul.start('node-a')
  const agent = new Agent()
  const fence = new LeaseFence({ url: consul.url, key: 'k', lockDelay: 300 }, async () => 'node-a', agent, silentLogger, () => {})
  t.teardown(async () => { fence.close(); await agent.close(); await consul.close() })
  fence.touch()
  await until(() => consul.asked.length >= 1 && fence.isOpen(), 'a touched fence asks and opens')
  // Keep touching: it must ask again before its window runs out.
  for (let i = 0; consul.asked.length < 3 && i < 2000; i++) {
    fence.touch()
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  t.ok(consul.asked.length >= 3, `asked again while touched (${consul.asked.length} questions)`)
  // Stop touching: the questions stop once writes have stopped for a second.
  await new Promise(resolve => setTimeout(resolve, 1500))
  const quiet = consul.asked.length
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.equal(consul.asked.length, quiet, 'no question while no write comes')
  fence.close()
  t.equal(await fence.confirm(), false, 'a closed fence confirms nothing')
  fence.touch() // and schedules nothing
})

t.test('touch while closed retries, not in a tight loop', async t => {
  const consul = await FakeConsul.start('node-b')
  const agent = new Agent()
  const fence = new LeaseFence({ url: consul.url, key: 'k', lockDelay: 1000 }, async () => 'node-a', agent, silentLogger, () => {})
  t.teardown(async () => { fence.close(); await agent.close(); await consul.close() })
  fence.touch()
  await until(() => consul.asked.length >= 3, 'it keeps asking while writes want it')
  t.equal(fence.view, 'other')
  t.notOk(fence.isOpen())
  const asked = consul.asked.length
  consul.holder = 'node-a'
  await until(() => fence.isOpen(), 'and opens once Consul names this node')
  t.ok(consul.asked.length > asked, 'a later question opened it')
})

t.test('this node\'s hostname from LiteFS\'s /info, remembered', async t => {
  const fake = await FakeLitefs.start({ role: 'replica' })
  const agent = new Agent()
  t.teardown(async () => { await agent.close(); await fake.close() })
  const self = hostnameFromInfo(fake.apiUrl, agent)
  t.equal(await self(), undefined, 'a replica: /info names the primary, not itself')
  fake.becomePrimary()
  t.equal(await self(), 'node-a')
  fake.becomeReplica('node-b')
  t.equal(await self(), 'node-a', 'remembered')
})

t.test('options', async t => {
  const o = resolveOptions({ db: 'app.db', consul: { url: 'http://consul:8500', key: 'litefs/app' } })
  t.same(o.consul, { url: 'http://consul:8500', key: 'litefs/app', lockDelay: 1000 }, "LiteFS's default lock-delay")
  t.same(resolveOptions({ db: 'a', api: false, consul: { url: 'http://c:8500', key: 'k', lockDelay: '2s', hostname: 'node-1' } }).consul, { url: 'http://c:8500', key: 'k', lockDelay: 2000, hostname: 'node-1' })
  t.equal(resolveOptions({ db: 'a' }).consul, undefined)
  const bad: Array<[unknown, RegExp]> = [
    ['http://c', /"consul" must be an object/],
    [{ url: 'http://c', key: 'k', ttl: '10s' }, /unknown option "consul.ttl"/],
    [{ url: 'consul:8500', key: 'k' }, /"consul.url" must be Consul's http\(s\) URL/],
    [{ url: 'http://c', key: '/' }, /"consul.key" must be the lease key/],
    [{ url: 'http://c', key: 'k', lockDelay: '100ms' }, /"consul.lockDelay" must be .*at least 300ms/],
    [{ url: 'http://c', key: 'k', hostname: '' }, /"consul.hostname" must be/]
  ]
  for (const [consul, message] of bad) t.throws(() => resolveOptions({ db: 'a', consul }), { message, code: 'LITEFS_BAD_OPTION' })
  t.throws(() => resolveOptions({ db: 'a', api: false, consul: { url: 'http://c', key: 'k' } }), /"consul.hostname" is needed with api: false/)
  t.throws(() => resolveOptions({ db: 'a', state: { waitForPosition () {} }, consul: { url: 'http://c', key: 'k' } }), /applies to a LiteFS mount/)
})

async function call (url: string, method = 'GET'): Promise<{ status: number, body: any, headers: Record<string, unknown> }> {
  const res = await request(url, { method, body: method === 'POST' ? 'x' : undefined })
  const text = await res.body.text()
  let body: any = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.statusCode, body, headers: res.headers }
}

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: a primary writes only while Consul confirms its lease`, async t => {
    const consul = await FakeConsul.start('node-a')
    const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
    const served = await serve(adapter, fake, { consul: { url: consul.url, key: 'litefs/app', lockDelay: '400ms' }, primaryRedirectTimeout: 600 })
    t.teardown(async () => { await served.close(); await fake.close(); await consul.close() })

    const ok = await call(`${served.url}/items`, 'POST')
    t.equal(ok.status, 200, 'Consul names this node: served here')
    t.equal(served.writes, 1)
    t.match(ok.headers['set-cookie'], /litefs-txid=0000000000000004/)
    const health = await call(`${served.url}/litefs/health`)
    t.match(health, { status: 200, body: { status: 'ok', role: 'primary', lease: 'mine' } })

    // Another node took the lease (a partition LiteFS did not notice): fenced.
    consul.holder = 'node-b'
    await until(() => !served.state.writable || served.state.fence?.view === 'other', 'the fence learns it') // within a window
    for (let i = 0; served.state.writable && i < 500; i++) await new Promise(resolve => setTimeout(resolve, 5))
    const fenced = await call(`${served.url}/items`, 'POST')
    t.equal(fenced.status, 503, 'held, then refused')
    t.equal(fenced.body.code, 'LITEFS_LEASE_UNCONFIRMED')
    t.match(fenced.body.error, /Consul did not confirm its lease within 600 ms \(it names node-b\); nothing was applied/)
    t.equal(fenced.headers['retry-after'], '1')
    t.equal(fenced.headers['set-cookie'], undefined)
    t.equal(served.writes, 1, 'the handler never ran')
    t.match(await call(`${served.url}/litefs/health`), { status: 503, body: { status: 'fenced', role: 'primary', lease: { holder: 'node-b' } } })
    consul.holder = undefined
    t.match((await call(`${served.url}/items`, 'POST')).body, { code: 'LITEFS_LEASE_UNCONFIRMED', error: /no node holds it/ })
    t.match(await call(`${served.url}/litefs/health`), { status: 503, body: { status: 'fenced', lease: 'none' } })

    // Consul unreachable: fails closed.
    consul.gate = new Promise(() => {})
    t.equal((await call(`${served.url}/items`, 'POST')).body.code, 'LITEFS_LEASE_UNCONFIRMED')
    await until(() => served.state.fence?.view === 'unknown', 'a question goes unanswered')
    t.match((await call(`${served.url}/items`, 'POST')).body, { code: 'LITEFS_LEASE_UNCONFIRMED', error: /Consul did not answer/ })
    t.match(await call(`${served.url}/litefs/health`), { status: 503, body: { status: 'fenced', lease: 'unknown' } })
    consul.gate = undefined
    t.equal(served.writes, 1, 'still nothing applied')

    // The lease comes back: a held write is released and served.
    consul.holder = 'node-b'
    const held = call(`${served.url}/items`, 'POST')
    await until(() => served.state.waiterCount === 1, 'the write is held')
    consul.holder = 'node-a'
    const released = await held
    t.equal(released.status, 200, 'served once Consul confirms')
    t.equal(served.writes, 2)
    t.ok(released.headers['set-cookie'])
  })
}

t.test('serve: the fence from flags, or from a consul lease in --config', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'fence-yml-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const yml = join(dir, 'litefs.yml')
  writeFileSync(yml, 'fuse: { dir: /litefs }\nlease:\n  type: consul\n  hostname: ${NODE}\n  consul: { url: "http://consul:8500", key: litefs/app, lock-delay: 2s }\n')
  const base = ['--addr', ':8080', '--target', 'localhost:8000', '--db', 'app.db']
  const opts = (argv: string[], env: Record<string, string> = {}): unknown => serveOptions([...base, ...argv], env, () => {})
  t.match(opts(['--config', yml], { NODE: 'node-2' }), { consul: { url: 'http://consul:8500', key: 'litefs/app', lockDelay: 2000, hostname: 'node-2' } }, "litefs.yml's lease, its hostname expanded")
  t.match(opts(['--config', yml, '--consul-lock-delay', '1500ms', '--consul-key', 'other']), { consul: { url: 'http://consul:8500', key: 'other', lockDelay: 1500 } }, 'flags win')
  t.equal((opts(['--config', yml, '--consul-url', 'false']) as { consul?: unknown }).consul, undefined, '--consul-url false: no fence')
  t.same((opts(['--consul-url', 'http://c:8500', '--consul-key', 'k']) as { consul?: unknown }).consul, { url: 'http://c:8500', key: 'k' }, 'flags alone')
  t.equal((opts([]) as { consul?: unknown }).consul, undefined, 'no lease given: no fence')
  writeFileSync(yml, 'lease:\n  type: static\n  hostname: node-1\n')
  t.equal((opts(['--config', yml]) as { consul?: unknown }).consul, undefined, 'a static lease: no fence')
  writeFileSync(yml, 'lease:\n  type: consul\n')
  t.throws(() => opts(['--config', yml]), { message: /needs both --consul-url and --consul-key/ }, 'a consul lease without its settings')
  t.throws(() => opts(['--consul-url', 'http://c:8500']), { message: /got only the URL/ })
  t.throws(() => opts(['--consul-key', 'k']), { message: /got only the key/ })
  t.throws(() => opts(['--consul-url', 'http://c:8500', '--consul-key', 'k', '--consul-lock-delay', 'soon']), { message: /--consul-lock-delay: expected a duration/ })
})

t.test('the lease hostname given (api: false, or to spare LiteFS\'s /info): no /info asked', async t => {
  const consul = await FakeConsul.start('node-7')
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  const served = await serve('http', fake, { consul: { url: consul.url, key: 'k', hostname: 'node-7' } })
  t.teardown(async () => { await served.close(); await fake.close(); await consul.close() })
  const before = fake.requests
  const ok = await call(`${served.url}/items`, 'POST')
  t.equal(ok.status, 200, 'Consul names node-7, which this node is')
  t.equal(fake.requests, before, 'LiteFS was not asked who this node is')
})

t.test('serve: a primary sidecar fenced by Consul', async t => {
  const consul = await FakeConsul.start('node-b')
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  let hits = 0
  const app = createServer((req, res) => { hits++; req.resume(); req.on('end', () => res.writeHead(201).end('ok')) })
  await new Promise<void>(resolve => app.listen(0, '127.0.0.1', resolve))
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(app.address() as AddressInfo).port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: silentLogger, consul: { url: consul.url, key: 'k', lockDelay: 400 }, primaryRedirectTimeout: 300 })
  await s.listen()
  t.teardown(async () => { await s.close(); app.closeAllConnections(); await new Promise(resolve => app.close(resolve)); await fake.close(); await consul.close() })
  await until(() => s.core.state.role === 'primary', 'the sidecar follows LiteFS')
  const fenced = await call(`${s.url}/items`, 'POST')
  t.equal(fenced.status, 503)
  t.equal(fenced.body.code, 'LITEFS_LEASE_UNCONFIRMED')
  t.equal(hits, 0, 'the app never saw the write')
  consul.holder = 'node-a'
  const ok = await call(`${s.url}/items`, 'POST')
  t.equal(ok.status, 201)
  t.equal(hits, 1)
  t.match(ok.headers['set-cookie'], /__txid=/)
})
