// What only the Fastify plugin has: its registration, decorators, types and
// Fastify neighbours. Shared behaviour: behaviour.test.ts, for every adapter.
import t from 'tap'
import { request } from 'undici'
import { spawn } from 'node:child_process'
import cookiePlugin from '@fastify/cookie'
import Fastify from 'fastify'
import { litefs } from '../lib/fastify.js'
import { NodeState } from '../lib/core/node-state.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'

t.test('works beside @fastify/cookie: both cookies are set', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
  const app = Fastify()
  await app.register(cookiePlugin)
  await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl })
  app.post('/with-cookie', async (_req, reply) => {
    fake.advance(fake.txid + 1n, { event: false })
    void reply.setCookie('session', 'abc', { path: '/' })
    return 'ok'
  })
  t.teardown(async () => { await app.close(); await fake.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await until(() => app.litefs.state.role === 'primary')
  const res = await request(`http://127.0.0.1:${(app.server.address() as any).port}/with-cookie`, { method: 'POST' })
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
  t.equal(app.litefs.state, state, 'the core is decorated on the instance')
})

t.test('request.litefs is null outside the plugin\'s reach, and set within', async t => {
  const app = Fastify()
  app.get('/before', async request => ({ litefs: request.litefs }))
  const state = new NodeState({ readPosition: () => 1n, readLag: () => 0 })
  await app.register(async scoped => {
    await scoped.register(litefs, { db: 'app.db', state })
    scoped.get('/inside', async request => ({ kind: request.litefs?.kind }))
  })
  t.teardown(() => app.close())
  t.same((await app.inject('/before')).json(), {}, 'routes outside the plugin\'s scope are not touched')
  t.same((await app.inject('/inside')).json(), { kind: 'read' })
})

t.test('bad options fail registration, naming the option', async t => {
  for (const [opts, re] of [
    [{ db: 'app.db', readTimeout: 'soon' }, /"readTimeout" must be a positive duration/],
    [{}, /"db" is missing/],
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

t.test('under a prefix: the health route gets it, path globs are whole paths (as the README says)', async t => {
  const state = new NodeState({ readPosition: () => 1n, readLag: () => 0 })
  state.setRole('primary')
  const app = Fastify()
  await app.register(async scoped => {
    await scoped.register(litefs, { db: 'app.db', state, passthrough: ['/api/static/*'] })
    scoped.get('/static/x', async request => ({ kind: request.litefs?.kind }))
  }, { prefix: '/api' })
  t.teardown(() => app.close())
  const health = await app.inject('/api/litefs/health')
  t.equal(health.statusCode, 200)
  t.match(health.json(), { status: 'ok', role: 'primary' })
  t.equal((await app.inject('/litefs/health')).statusCode, 404, 'not at the bare path')
  t.same((await app.inject('/api/static/x')).json(), { kind: 'passthrough' }, 'the glob names the whole path')
})
