// The edges of replica reports and durability that the socket tests
// (peer-wiring.test.ts, durability.test.ts) do not reach by themselves:
// PeerLink without LiteFS's API, with an /info that does not say candidacy at
// first, across LiteFS going and coming back; its view of peers ahead and
// without the database; which writes wait (durableFor); the wait's answers for
// an acknowledgement already replaced, a write without TXID, and a table
// closing; a peer leaving mid-report.
import t from 'tap'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { NodeState } from '../lib/core/node-state.js'
import { resolveOptions } from '../lib/core/options.js'
import { PeerLink } from '../lib/core/peer-link.js'
import { durableFor, PEER_PATH } from '../lib/core/durability-options.js'
import { acknowledgeDurably, awaitCandidates } from '../lib/core/durability.js'
import { EXACT } from '../lib/core/path-match.js'
import { LitefsCore } from '../lib/core/proxy.js'
import { silentLogger } from '../lib/core/logger.js'
import { warnings } from '../lib/core/warnings.js'
import type { CoreContext } from '../lib/core/context.js'
import type { LitefsInfo } from '../lib/core/request.js'
import { until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve } from './helpers/apps.js'
import { FakeLitefs } from './helpers/fake-litefs.js'

const SECRET = 'a-peer-secret-of-some-length'
const driver = { readPosition: () => 5n, readLag: () => 0 }

t.test('PeerLink: without the API nothing is reported, said once; the view of peers ahead and without the database', async t => {
  const state = new NodeState(driver)
  state.setPosition('app.db', 5n)
  const said: string[] = []
  const log = { ...silentLogger, warn: (_o: object, msg: string) => { said.push(msg) } }
  const options = resolveOptions({ db: 'app.db', api: false, role: 'replica', peerSecret: SECRET })
  const link = new PeerLink(options, state, () => 0, log, warnings(log))
  const again = new PeerLink(options, state, () => 0, log, warnings(log))
  await again.close()
  t.same(said, ['litefs-proxy: this node cannot learn whether it is a candidate (no LiteFS API: api: false): it sends no reports, so a primary with durability on never counts it'], 'once, naming the cause')
  link.table.report({ hostname: 'ahead', candidate: true, positions: { 'app.db': '0000000000000009' } })
  link.table.report({ hostname: 'other-db', candidate: false, positions: { 'other.db': '0000000000000001' } })
  t.match(link.view('app.db'), [{ hostname: 'ahead', behind: '0', connected: true }, { hostname: 'other-db', behind: null, candidate: false }])
  await link.close()
})

t.test("PeerLink: /info without candidacy is asked again; LiteFS coming back asks again", async t => {
  let answers = 0
  const info = createServer((_req, res) => {
    answers++
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(answers === 1 ? { isPrimary: false } : { isPrimary: false, candidate: true }))
  })
  await new Promise<void>(resolve => info.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { info.close() })
  const api = `http://127.0.0.1:${(info.address() as AddressInfo).port}`
  const state = new NodeState(driver)
  state.setRole('replica', 'unknown-host')
  const urls: string[] = []
  const link = new PeerLink(resolveOptions({ db: 'app.db', api, peerSecret: SECRET, peerName: 'me', primaryUrl: (host: string) => { urls.push(host); throw new Error(`no URL for ${host}`) } }), state, () => 8080, silentLogger, warnings(silentLogger))
  await until(() => answers >= 2, '/info asked again')
  await until(() => urls.length > 0, 'a report tried: primaryUrl knows no URL for the primary, and nothing is sent')
  state.setLitefs('down')
  state.setLitefs('up')
  await until(() => answers >= 3, '/info asked when LiteFS is back')
  await link.close()
  state.setLitefs('down')
  state.setLitefs('up') // closed: asks nothing more
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(answers, 3)
})

t.test('PeerLink: a closed link stops asking /info', async t => {
  // Nothing listens there: the first ask fails after the link closed, and its retry finds it closed.
  const state = new NodeState(driver)
  const link = new PeerLink(resolveOptions({ db: 'app.db', api: 'http://127.0.0.1:9', peerSecret: SECRET, consul: { url: 'http://127.0.0.1:8500', key: 'k', hostname: 'lease-name' } }), state, () => 0, silentLogger, warnings(silentLogger))
  t.equal(link.name, 'lease-name', "the lease's hostname by default")
  await link.close()
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.pass('closed')
})

t.test('durableFor', async t => {
  const on = (durability: unknown): ReturnType<typeof resolveOptions>['durability'] => resolveOptions({ db: 'app.db', durability }).durability
  t.equal(durableFor(on(true), false, '/a', EXACT, undefined), false, "the route's own word wins")
  t.equal(durableFor(on(false), true, '/a', EXACT, undefined), true)
  t.equal(durableFor(on(['/orders/*']), undefined, '/orders/1', EXACT, undefined), true)
  t.equal(durableFor(on(['/orders/:id']), undefined, '/orders/1', EXACT, '/orders/:id'), true, 'the route pattern matched')
  t.equal(durableFor(on(['/orders/*']), undefined, '/cart', EXACT, '/cart'), false)
  t.equal(durableFor(on([/^\/pay/]), undefined, '/pay/1', EXACT, undefined), true, 'a RegExp')
  t.throws(() => on(['orders']), /option "durability"/)
})

t.test('awaitCandidates: nothing to wait for, and a table that closes', async t => {
  const core = new LitefsCore({ db: 'app.db', state: new NodeState(driver), peerSecret: SECRET, durability: true }, {
    req: () => ({}) as any,
    res: () => ({}) as any,
    url: () => '/w',
    route: () => undefined,
    log: () => silentLogger,
    secure: () => false,
    view: () => ({ proto: 'http', host: 'x', client: '127.0.0.1' }),
    pathRules: () => EXACT,
    routeUrl: () => undefined,
    takeOver: () => {},
    attach: () => {}
  })
  const ctx = (core as unknown as { ctx: CoreContext<unknown> }).ctx
  const info: LitefsInfo = { kind: 'write', role: 'primary', local: true }
  const replaced = { replace: { statusCode: 500, headers: {}, body: '' } }
  t.equal(awaitCandidates(ctx, info, undefined, replaced), replaced, 'an answer already replaced')
  const asIs = { headers: [] }
  t.equal(awaitCandidates(ctx, info, undefined, asIs), asIs, 'no TXID: nothing to wait for')
  info.setTxid = '0000000000000006'
  const waiting = awaitCandidates(ctx, info, undefined, asIs)
  await core.close()
  const a = await waiting
  t.equal(a.replace?.statusCode, 500)
  t.match(a.replace?.body, /the app is closing/)
  core.listening('/tmp/a-unix-socket') // a server on a unix socket has no port
  t.equal(ctx.probePort, 0)
})

t.test('acknowledgeDurably: durability off, a route that turns it on, a position read at once', async t => {
  let route: any
  const hooks = {
    req: () => ({}) as any,
    res: () => ({ statusCode: 200 }) as any,
    url: () => '/w',
    route: () => route,
    log: () => silentLogger,
    secure: () => false,
    view: () => ({ proto: 'http', host: 'x', client: '127.0.0.1' }),
    pathRules: () => EXACT,
    routeUrl: () => undefined,
    takeOver: () => {},
    attach: () => {}
  }
  // A driver without an asynchronous read: the position, and so the acknowledgement, come at once.
  const state = new NodeState(driver)
  state.setRole('primary') // a primary's success: only that is acknowledged (commit-check.ts)
  const core = new LitefsCore({ db: 'app.db', state, peerSecret: SECRET, durabilityTimeout: 50 }, hooks)
  t.teardown(() => core.close())
  const ctx = (core as unknown as { ctx: CoreContext<unknown> }).ctx
  const info = (): LitefsInfo => ({ kind: 'write', role: 'primary', local: true })
  for (route of [false, undefined, { alwaysForward: true }]) {
    const a = acknowledgeDurably(ctx, info(), undefined)
    t.notOk(a instanceof Promise, `route ${JSON.stringify(route)}: the cookie at once, no wait`)
  }
  route = { durability: true }
  const held = acknowledgeDurably(ctx, info(), undefined)
  t.ok(held instanceof Promise, 'the route turns it on: waited for')
  t.equal((await held).replace?.statusCode, 500, 'no candidate: not replicated')
})

t.test('Express: litefs.durable() marks its paths on, durable(false) off', async t => {
  const { default: expressLitefs } = await import('../lib/express.js')
  const marks: unknown[] = []
  for (const mw of [expressLitefs.durable(), expressLitefs.durable(false)]) {
    const req: any = {}
    mw(req, {} as any, () => { marks.push(req[Object.getOwnPropertySymbols(req)[0]]) })
  }
  t.same(marks, [{ durability: true }, { durability: false }])
})

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: a peer leaving mid-report is answered nothing`, async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
    t.teardown(() => fake.close())
    const app = await serve(adapter, fake, { peerSecret: SECRET })
    t.teardown(app.close)
    const url = new URL(app.url)
    await new Promise<void>(resolve => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: PEER_PATH, method: 'POST', headers: { 'content-length': '1000' } })
      req.on('error', () => resolve())
      req.write('{"hostname":')
      setTimeout(() => { req.destroy(); resolve() }, 50)
    })
    await new Promise(resolve => setTimeout(resolve, 50))
    t.equal(app.stats().peers?.length, 0, 'nothing taken')
  })
}
