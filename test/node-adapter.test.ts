// What only the Express middleware and the node:http wrapper have: the cookie
// hooked on whatever sends the head, Express mounting and error conventions.
import t from 'tap'
import express from 'express'
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { wrap } from '../lib/http.js'
import { litefs } from '../lib/express.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { createNodeCore } from '../lib/core/node-adapter.js'
import { NodeState } from '../lib/core/node-state.js'

type Test = typeof t
const quiet = { debug () {}, info () {}, warn () {}, error () {} }

async function listen (t: Test, listener: RequestListener): Promise<string> {
  const server: Server = createServer(listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('the cookie survives every way a handler sends its head', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  t.teardown(() => fake.close())
  const listener = wrap((req, res) => {
    fake.advance(fake.txid + 1n, { event: false })
    switch (req.url) {
      case '/reason': res.writeHead(201, 'Made', { 'Set-Cookie': 'a=1' }).end(); break
      case '/raw-array': res.writeHead(200, ['Set-Cookie', 'a=1', 'content-type', 'text/plain']).end(); break
      case '/implicit': res.setHeader('set-cookie', 'a=1'); res.end('x'); break
      case '/plain': res.writeHead(200, { 'content-type': 'text/plain' }).end(); break
      default: res.writeHead(204).end()
    }
  }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: quiet })
  t.teardown(() => listener.close())
  const url = await listen(t, listener)
  await until(() => listener.core.state.role === 'primary')
  let txid = 1
  for (const [path, status, app] of [['/reason', 201, true], ['/raw-array', 200, true], ['/implicit', 200, true], ['/plain', 200, false], ['/bare', 204, false]] as const) {
    const res = await request(`${url}${path}`, { method: 'POST' })
    await res.body.dump()
    txid++
    const ours = `litefs-txid=${String(txid).padStart(16, '0')}; Path=/; HttpOnly; SameSite=Lax; Max-Age=300`
    t.equal(res.statusCode, status, path)
    t.same(res.headers['set-cookie'], app ? ['a=1', ours] : ours, `${path}: ${app ? "the app's cookie and ours" : 'ours'}`)
  }
})

t.test('bad adapter options throw at once', async t => {
  t.throws(() => wrap(() => {}, { db: 'app.db', forwardBodyLimit: -1 }), /"forwardBodyLimit" must be a number of bytes, got -1/)
  t.throws(() => wrap(() => {}, { db: 'app.db', bodyLimit: 1 } as any), /unknown option "bodyLimit"/)
  t.throws(() => litefs({ db: 'app.db', trustProxy: 'yes' as unknown as boolean }), { code: 'LITEFS_BAD_OPTION', message: /^litefs-proxy: option "trustProxy" must be true or false, got "yes"$/ })
  // A string or an array where the options go: said as that, not as options "0", "1", ….
  for (const [given, got] of [['app.db', '"app.db"'], [['app.db'], '\\["app.db"\\]'], [null, 'null'], [5, '5']] as const) {
    t.throws(() => wrap(() => {}, given as never), { code: 'LITEFS_BAD_OPTION', message: new RegExp(`^litefs-proxy: option "options" must be an object, got ${got}$`) }, `wrap(h, ${JSON.stringify(given)})`)
    t.throws(() => litefs(given as never), { code: 'LITEFS_BAD_OPTION', message: /option "options" must be an object/ }, `litefs(${JSON.stringify(given)})`)
  }
  t.throws(() => litefs({ db: 'app.db', mount: '' }), /"mount"/)
  for (const logger of [{}, null, 'console', { ...console, debug: undefined }]) {
    t.throws(() => wrap(() => {}, { db: 'app.db', logger } as any), { code: 'LITEFS_BAD_OPTION', message: /option "logger" must have the methods debug, info, warn, error \(pino and console do\); it lacks / }, `logger ${JSON.stringify(logger)}`)
  }
  t.throws(() => litefs({ db: 'app.db', logger: { info () {}, warn () {}, error () {} } as any }), { message: /it lacks debug$/ })
})

t.test('a decision that fails (thrown at once, or rejected later): 500 LITEFS_INTERNAL as one JSON line, logged, never a hang or a crash', async t => {
  // A state of the app's whose driver fails: refresh throws on the call chosen.
  const { NodeState } = await import('../lib/core/node-state.js')
  const failing = (failOn: number, thrown: (calls: number) => unknown = calls => new Error(`driver broke on call ${calls}`)): InstanceType<typeof NodeState> => {
    let calls = 0
    const state = new NodeState({ readPosition: () => 1n, readLag: () => 0, refresh: () => { if (++calls >= failOn) throw thrown(calls) } })
    state.setLitefs('up')
    state.setRole('replica', undefined) // no primary known: the write path refreshes again once waiting (asynchronously)
    return state
  }
  const errors: Array<{ o: Record<string, unknown>, m: string }> = []
  const logger = { ...quiet, error: (o: Record<string, unknown>, m: string) => { errors.push({ o, m }) } }
  for (const [when, failOn] of [['at once', 1], ['later', 2]] as const) {
    const listener = wrap(() => {}, { db: 'app.db', state: failing(failOn), logger, primaryRedirectTimeout: 200 })
    const proxy = litefs({ db: 'app.db', state: failing(failOn), logger, primaryRedirectTimeout: 200 })
    t.teardown(async () => { await listener.close(); await proxy.close() })
    const app = express()
    app.use(proxy)
    app.use(litefs.errorHandler())
    const httpUrl = await listen(t, listener)
    const expressUrl = await listen(t, app)
    for (const [name, url] of [['http', httpUrl], ['express', expressUrl]]) {
      errors.length = 0
      const res = await request(`${url}/w`, { method: 'POST' })
      const text = await res.body.text()
      t.equal(res.statusCode, 500, `${name}, ${when}`)
      t.equal(res.headers['content-type'], 'application/json; charset=utf-8', `${name}, ${when}: the table's JSON, also through Express's errorHandler`)
      t.same(JSON.parse(text), { error: `driver broke on call ${failOn}`, code: 'LITEFS_INTERNAL' })
      t.equal(errors.length, 1, `${name}, ${when}: one error line`)
      t.match(errors[0], { o: { code: 'LITEFS_INTERNAL', method: 'POST', path: '/w' }, m: `litefs-proxy: deciding this request failed: driver broke on call ${failOn}` })
    }
  }
  // serve, and something thrown that is not an Error (a string): said as it is.
  const { createSidecar } = await import('../lib/sidecar/sidecar.js')
  const sidecar = createSidecar({ addr: '127.0.0.1:0', target: '127.0.0.1:9', db: 'app.db', state: failing(1, () => 'a string, thrown'), logger } as never)
  await sidecar.listen()
  t.teardown(async () => { await sidecar.close() })
  errors.length = 0
  const res = await request(`${sidecar.url}/w`, { method: 'POST' })
  t.equal(res.statusCode, 500)
  t.same(await res.body.json(), { error: 'a string, thrown', code: 'LITEFS_INTERNAL' })
  t.match(errors, [{ m: 'litefs-proxy: deciding this request failed: a string, thrown' }])
})

t.test('Express: mounted under a path, globs see the whole path and forwarding keeps it', async t => {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  const rfake = await FakeLitefs.start({ role: 'replica', txid: 3n })
  t.teardown(async () => { await pfake.close(); await rfake.close() })
  const seen: string[] = []
  const primaryApp = express()
  const primaryProxy = litefs({ db: 'app.db', mount: pfake.mount, api: pfake.apiUrl, logger: quiet })
  primaryApp.use('/api', primaryProxy, (req, res) => { seen.push(req.originalUrl); res.json({ ok: true }) })
  const primaryUrl = await listen(t, primaryApp)
  const replicaProxy = litefs({ db: 'app.db', mount: rfake.mount, api: rfake.apiUrl, logger: quiet, primaryUrl: () => primaryUrl, passthrough: ['/api/public/*'] })
  t.teardown(async () => { await primaryProxy.close(); await replicaProxy.close() })
  const replicaApp = express()
  replicaApp.use('/api', replicaProxy, (req, res) => { res.json({ kind: req.litefs?.kind }) })
  replicaApp.use(litefs.errorHandler())
  const replicaUrl = await listen(t, replicaApp)
  await until(() => replicaProxy.core.state.primaryHostname === 'node-a' && primaryProxy.core.state.role === 'primary')
  const pub = await request(`${replicaUrl}/api/public/x`)
  t.same(await pub.body.json(), { kind: 'passthrough' }, 'the glob names the whole path')
  const w = await request(`${replicaUrl}/api/items?x=1`, { method: 'POST' })
  await w.body.dump()
  t.equal(w.statusCode, 200)
  t.same(seen, ['/api/items?x=1'], 'the primary got the whole path and query')
  // healthPath is a whole path too: the default never reaches a proxy mounted under /api.
  const defaultHealth = await request(`${replicaUrl}/api/litefs/health`)
  t.same(await defaultHealth.body.json(), { kind: 'read' }, 'the default /litefs/health: under /api it is an ordinary read')
  const mounted = litefs({ db: 'app.db', mount: rfake.mount, api: rfake.apiUrl, logger: quiet, healthPath: '/api/litefs/health', primaryUrl: () => primaryUrl })
  t.teardown(async () => { await mounted.close() })
  const mountedApp = express()
  mountedApp.use('/api', mounted, (_req, res) => { res.json({ app: true }) })
  const mountedUrl = await listen(t, mountedApp)
  await until(() => mounted.core.state.primaryHostname === 'node-a')
  const health = await request(`${mountedUrl}/api/litefs/health`)
  t.match(await health.body.json(), { role: 'replica' }, "healthPath: '/api/litefs/health' (the README's advice) answers there")
})

t.test('Express errorHandler leaves other errors and sent responses alone', async t => {
  const handler = litefs.errorHandler()
  const passed: unknown[] = []
  const res = { headersSent: false } as any
  handler(new Error('app'), {} as any, res, err => passed.push(err))
  const { LitefsHttpError } = await import('../lib/core/errors.js')
  const late = new LitefsHttpError(504, 'LITEFS_READ_TIMEOUT', 'late')
  handler(late, {} as any, { headersSent: true } as any, err => passed.push(err))
  t.equal(passed.length, 2)
  t.equal(passed[1], late)
})

t.test('defaults: warnings go to the console; HTTPS sockets get Secure cookies', async t => {
  const { createNodeCore } = await import('../lib/core/node-adapter.js')
  const { NodeState } = await import('../lib/core/node-state.js')
  t.throws(() => createNodeCore(undefined as any), /"db"/, 'no options: says what is missing')
  const state = new NodeState({ readPosition: () => 7n, readLag: () => 0 })
  state.setRole('primary') // a write served here: only a primary's success is cookied (commit-check.ts)
  const core = createNodeCore({ db: 'app.db', state, readTimeout: 1 })
  const warned = t.capture(console, 'warn')
  const errored = t.capture(console, 'error')
  const hooks = (core as any).ctx.hooks
  hooks.log().warn({ x: 1 }, 'w')
  hooks.log().error({ y: 2 }, 'e')
  t.same(warned().map((c: any) => c.args), [['w', { x: 1 }]])
  t.same(errored().map((c: any) => c.args), [['e', { y: 2 }]])
  const res = { statusCode: 200, req: { headers: {}, socket: { encrypted: true } } } as any
  const ack = await core.acknowledge({ kind: 'write', role: 'primary', local: true }, res)
  t.match(ack.headers?.[0], ['set-cookie', /; Secure$/])
  await core.close()
})

t.test('node:http without a Host header: forwarded with none', async t => {
  const core = createNodeCore({ db: 'app.db', state: new NodeState({ readPosition: () => 1n, readLag: () => 0 }) })
  const res = { req: { headers: {}, socket: { remoteAddress: '10.0.0.1' } } } as any
  t.same((core as any).ctx.hooks.view(res), { proto: 'http', host: undefined, client: '10.0.0.1' })
  await core.close()
})
