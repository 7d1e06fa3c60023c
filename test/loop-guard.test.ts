// The loop guard (loop-guard.ts, DESIGN §3.8) against a `primaryUrl` that
// leads back to the node itself — a stale DNS name, two names swapped in a
// map, `localhost` — and against a read forwarded round (readTimeoutAction
// 'primary'). In every adapter and behind serve, through real sockets: what
// the client gets, what reached an app, what is said, what health says.
import t from 'tap'
import { hostname } from 'node:os'
import { request } from 'undici'
import { FLAVOURS, pair, type Flavour, type PairNode } from './helpers/pairs.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve } from './helpers/apps.js'
import { cameBack, forwardedSince, forwarders, loopAnswer, markerName, mayForward } from '../lib/core/loop-guard.js'
import type { IncomingMessage } from 'node:http'

const routes = (): Record<string, (req: any, res: any) => void> => ({
  'POST /items': (req, res) => { req.resume(); res.writeHead(201, { 'content-type': 'application/json' }).end('{}') },
  'GET /page': (_req, res) => { res.writeHead(200).end('page') }
})

/** The warnings said on `node` as LITEFS_FORWARD_LOOP (not its "cleared" line): serve's log lines, else the adapters' logger or process warnings. */
function said (flavour: Flavour, node: PairNode, logged: Array<[string, string]>, warned: Array<{ code: string, message: string }>): string[] {
  if (flavour === 'serve') return node.lines.filter(l => /"code":"LITEFS_FORWARD_LOOP"/.test(l) && /primary-?url/i.test(l))
  return [...logged.filter(([code, m]) => code === 'LITEFS_FORWARD_LOOP' && /primaryUrl/.test(m)).map(([, m]) => m), ...warned.filter(w => w.code === 'LITEFS_FORWARD_LOOP').map(w => w.message)]
}

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a primaryUrl that leads back to this node: writes 508 LITEFS_FORWARD_LOOP at once, said once, health unreachable; fixed, all clears`, async t => {
    const logged: Array<[string, string]> = []
    const warned: Array<{ code: string, message: string }> = []
    const onWarning = (w: Error & { code?: string }): void => { if (w.name === 'LitefsProxyWarning') warned.push({ code: w.code as string, message: w.message }) }
    process.on('warning', onWarning)
    t.teardown(() => { process.off('warning', onWarning) })
    const record = (level: string) => (o: { code?: string }, msg: string) => { logged.push([o?.code ?? level, msg]) }
    let target = ''
    const { primary, replica } = await pair(t, flavour, {
      routes,
      // A hold as long as this test may take: the answer must not come from it.
      replica: { primaryUrl: () => target, primaryRedirectTimeout: 600_000 },
      framework: { logger: { debug () {}, info: record('info'), warn: record('warn'), error: record('error') } as any },
      primaryFramework: { logger: undefined }
    })
    target = replica.url // the mistake: the primary's hostname mapped to this very node
    for (let i = 0; i < 2; i++) {
      const res = await request(`${replica.url}/items`, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } })
      const body = await res.body.json() as { code: string, error: string }
      t.equal(res.statusCode, 508, `write ${i + 1}: 508 Loop Detected`)
      t.equal(body.code, 'LITEFS_FORWARD_LOOP')
      t.match(body.error, /"primaryUrl" maps the primary node-a to an address that reaches this node itself; nothing was applied/)
      t.equal(res.headers['retry-after'], undefined, 'no Retry-After: a retry meets the same mistake')
    }
    t.notOk(replica.hits.includes('POST /items') || primary.hits.includes('POST /items'), 'nothing reached an app')
    await until(() => said(flavour, replica, logged, warned).length > 0, 'the misconfiguration is said')
    const lines = said(flavour, replica, logged, warned)
    t.equal(lines.length, 1, 'said once for two writes')
    t.match(lines[0], /maps the primary node-a to an address that reaches this node itself.*Is \W{0,2}(primaryUrl|--primary-url)\W{0,2} right/)
    // Health: the node asks the primary's health, reaches itself, and says so.
    const health = await request(`${replica.url}/litefs/health`)
    const view = await health.body.json() as { status: string, unreachable?: { origin: string, error: string } }
    t.equal(health.statusCode, 503)
    t.equal(view.status, 'unreachable', 'taken out of the balancer: its writes cannot succeed')
    t.equal(view.unreachable?.origin, replica.url)
    t.match(view.unreachable?.error, /is this node itself, not the primary/)
    // Fixed (a deploy with the right map): writes reach the primary, and that is said once.
    target = primary.url
    const fixed = await request(`${replica.url}/items`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    await fixed.body.dump()
    t.equal(fixed.statusCode, 201, 'forwarded to the primary')
    t.ok(primary.hits.includes('POST /items'))
    // Fastify's logger is off here: its info line goes nowhere, the others' is seen.
    const cleared = flavour === 'serve'
      ? replica.lines.filter(l => /forwarding reaches the primary \(/.test(l))
      : logged.filter(([, m]) => /forwarding reaches the primary \(/.test(m))
    t.equal(cleared.length, flavour === 'fastify' ? 0 : 1, 'the cleared cause is said once')
    let status = ''
    for (let i = 0; i < 50 && status !== 'ok'; i++) {
      status = (await (await request(`${replica.url}/litefs/health`)).body.json() as { status: string }).status
      if (status !== 'ok') await new Promise(resolve => setTimeout(resolve, 100))
    }
    t.equal(status, 'ok', 'health ok again once a forward got through')
    // Broken again: said again, once — so it was cleared (in every flavour).
    target = replica.url
    t.equal((await request(`${replica.url}/items`, { method: 'POST', body: '{}' })).statusCode, 508)
    await until(() => said(flavour, replica, logged, warned).length > 1, 'said again after it cleared')
    t.equal(said(flavour, replica, logged, warned).length, 2)
    target = primary.url // leaves the cause cleared for the next test
    t.equal((await request(`${replica.url}/items`, { method: 'POST', body: '{}' })).statusCode, 201)
  })

  t.test(`${flavour}: a read forwarded on its timeout (readTimeoutAction 'primary') that comes back is answered 508, not sent round again`, async t => {
    let target = ''
    const { primary, replica } = await pair(t, flavour, {
      routes,
      replica: { primaryUrl: () => target, readTimeout: 150, readTimeoutAction: 'primary' }
    })
    target = replica.url
    // Ahead of this replica (5), not of the primary (10): held to its timeout, then sent "to the primary".
    // The token as a header: serve's cookie is LiteFS's `__txid`, the adapters' `litefs-txid`.
    const res = await request(`${replica.url}/page`, { headers: { 'litefs-txid': '0000000000000009' } })
    const body = await res.body.json() as { code: string }
    t.equal(res.statusCode, 508)
    t.equal(body.code, 'LITEFS_FORWARD_LOOP')
    t.notOk(replica.hits.includes('GET /page') || primary.hits.includes('GET /page'), 'served by no app')
    t.equal(replica.stats().forwards, 1, 'forwarded once: it came back, and went no further')
    // Misconfigurations are said once per process while they last: a forward that gets through clears this one.
    target = primary.url
    t.equal((await request(`${replica.url}/items`, { method: 'POST', body: '{}' })).statusCode, 201)
  })

  t.test(`${flavour}: a read another node forwarded goes on to the primary once; one forwarded by two nodes gets its 504`, async t => {
    const { primary, replica } = await pair(t, flavour, {
      routes,
      replica: { readTimeout: 150, readTimeoutAction: 'primary' }
    })
    const token = '0000000000000009'
    const once = await request(`${replica.url}/page`, { headers: { 'litefs-txid': token, 'litefs-forwarded': 'node-x/00000001' } })
    t.equal(once.statusCode, 200, 'one node before this one: forwarded on')
    t.equal(await once.body.text(), 'page')
    t.ok(primary.hits.includes('GET /page'), 'the primary served it')
    const twice = await request(`${replica.url}/page`, { headers: { 'litefs-txid': token, 'litefs-forwarded': 'node-x/00000001, node-y/00000002' } })
    const body = await twice.body.json() as { code: string }
    t.equal(twice.statusCode, 504, 'two nodes before this one: not forwarded again')
    t.equal(body.code, 'LITEFS_READ_TIMEOUT')
    t.equal(primary.hits.filter(h => h === 'GET /page').length, 1, 'the primary saw only the first')
    t.equal(replica.stats().readTimeouts.error, 1, 'counted as a timeout answered here')
  })
}

t.test('the marker: one entry per node, this core\'s own told apart from another on the same host', async t => {
  const a = markerName()
  const b = markerName()
  t.match(a, new RegExp(`^${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f]{8}$`), '<host name>/<8 hex digits>')
  t.not(a, b, 'two cores on one host: two names')
  t.equal(forwarders(`${a}`), 1)
  t.equal(forwarders(`${b}, ${a}`), 2)
  t.equal(forwarders(['x', 'y, z']), 3, 'the header sent twice: every entry counts')
  t.equal(forwarders(' , '), 0, 'empty entries are none')
  t.ok(cameBack(a, a), 'sent by this node')
  t.ok(cameBack(`${b}, ${a}`, a), 'sent by this node last')
  t.notOk(cameBack(`${a}, ${b}`, a), 'sent on by another node after this one: the hop limit\'s case, not a loop')
  t.notOk(cameBack(b, a))
  t.ok(cameBack([b, a], a), 'the header sent twice, this node\'s last')
  const req = (via?: string): IncomingMessage => ({ headers: via === undefined ? {} : { 'litefs-forwarded': via } }) as IncomingMessage
  t.same(forwardedSince(`${a}, ${b}`, a), [b], 'the nodes after this one')
  t.same(forwardedSince(`${b}, ${a}`, a), [], 'none: it came straight back')
  t.equal(forwardedSince(b, a), undefined, 'never through this node')
  t.ok(mayForward(req(), a), 'not forwarded yet')
  t.ok(mayForward(req(b), a), 'one node before')
  t.notOk(mayForward(req(`${b}, ${b}`), a), 'two nodes before')
  t.notOk(mayForward(req(a), a), 'back from this node')
})

t.test('a request back while no primary is known (a failover began on its way): the same answer, naming no primary', async t => {
  const said: string[] = []
  const core = {
    state: { primaryHostname: undefined },
    hooks: { log: () => ({ debug () {}, info () {}, warn () {}, error () {} }), url: () => '/items' },
    warn: { say: (_code: string, _scope: string, message: string) => { said.push(message) }, clear () {} },
    loopSaid: false
  }
  const info = loopAnswer(core as any, {}, { kind: 'write', role: 'replica', local: false })
  t.equal(info.answer?.statusCode, 508)
  t.match(JSON.parse(info.answer?.body as string), { error: '"primaryUrl" led a request this node forwarded back to this node; nothing was applied', code: 'LITEFS_FORWARD_LOOP' })
  t.match(said, [/led a request this node forwarded back to this node, not the primary/])
  t.ok(core.loopSaid, 'cleared by the next forward that gets through')
})

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: two replicas whose primaryUrl leads to each other (A → B → A): held as a failover would be, then 508 naming the other node, said once; nothing applied`, async t => {
    const fakeA = await FakeLitefs.start({ role: 'replica', primary: 'node-p', txid: 5n })
    const fakeB = await FakeLitefs.start({ role: 'replica', primary: 'node-p', txid: 5n })
    t.teardown(async () => { await fakeA.close(); await fakeB.close() })
    const urls: Record<string, string> = {}
    const said: string[] = []
    const logger = { debug () {}, info () {}, warn: (o: { code?: string }, msg: string) => { if (o?.code === 'LITEFS_FORWARD_LOOP') said.push(msg) }, error () {} }
    const logged = adapter === 'fastify' ? {} : { logger } // Fastify logs through its own logger (off here)
    const a = await serve(adapter, fakeA, { primaryUrl: () => urls.b, primaryRedirectTimeout: 150, ...logged } as any)
    const b = await serve(adapter, fakeB, { primaryUrl: () => urls.a, primaryRedirectTimeout: 150, ...logged } as any)
    t.teardown(async () => { await a.close(); await b.close() })
    urls.a = a.url
    urls.b = b.url
    await until(() => a.state.primaryHostname === 'node-p' && b.state.primaryHostname === 'node-p')
    for (let i = 0; i < 2; i++) {
      const res = await request(`${a.url}/items`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
      const body = await res.body.json() as { code: string, error: string }
      t.equal(res.statusCode, 508, `write ${i + 1}: relayed back to the client`)
      t.equal(body.code, 'LITEFS_FORWARD_LOOP')
      t.match(body.error, new RegExp(`towards the primary node-p came back through ${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f]{8}: "primaryUrl" here or there leads to a replica; nothing was applied`))
    }
    t.equal(a.writes + b.writes, 0, 'nothing applied')
    // Fastify's own logger is off (process warnings then); the others log through `logger`.
    if (adapter !== 'fastify') t.equal(said.length, 1, 'said once for two writes')
    if (adapter !== 'fastify') t.match(said[0], /came back through .*leads to a replica, not the primary/)
    // Fixed: A reaches the primary, which clears the cause for the next test.
    const primaryFake = await FakeLitefs.start({ role: 'primary', txid: 9n })
    const primary = await serve(adapter, primaryFake)
    t.teardown(async () => { await primary.close(); await primaryFake.close() })
    urls.b = primary.url
    const fixed = await request(`${a.url}/items`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    await fixed.body.dump()
    t.equal(fixed.statusCode, 200, 'forwarded to the primary')
    t.equal(primary.writes, 1)
  })
}

t.test('serve, from its flags: the 508 names --primary-url, as its log does', async t => {
  const { createServer } = await import('node:net')
  const { createSidecar } = await import('../lib/sidecar/sidecar.js')
  const { serveOptions } = await import('../lib/sidecar/settings.js')
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const port = await new Promise<number>(resolve => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)) }) })
  const lines: string[] = []
  // What `litefs-proxy serve` is given: its own address as the primary's (the mistake).
  const options = serveOptions(['--addr', `127.0.0.1:${port}`, '--target', '127.0.0.1:9', '--db', 'app.db', '--mount', fake.mount, '--api', fake.apiUrl, '--primary-url', `http://127.0.0.1:${port}`, '--log-format', 'json'], {}, l => { lines.push(l) })
  const sidecar = createSidecar(options as any)
  await sidecar.listen()
  t.teardown(async () => { await sidecar.close() })
  await until(() => sidecar.core.state.primaryHostname === 'node-a')
  const res = await request(`${sidecar.url}/items`, { method: 'POST', body: '{}' })
  const body = await res.body.json() as { code: string, error: string }
  t.equal(res.statusCode, 508)
  t.match(body, { code: 'LITEFS_FORWARD_LOOP', error: /^--primary-url maps the primary node-a to an address that reaches this node itself; nothing was applied$/ })
  t.ok(lines.some(l => /--primary-url maps the primary node-a.*Is --primary-url right\?/.test(l)), 'the warning in flag terms')
})
