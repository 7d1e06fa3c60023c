// What a new user meets in the first hour (issue 11), tested the way they meet
// it: closing an app with held requests, misconfigurations said out loud once,
// per-route settings checked, processes that exit by themselves.
import t from 'tap'
import Fastify from 'fastify'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { litefs } from '../lib/fastify.js'
import { wrap } from '../lib/http.js'
import { litefs as expressLitefs } from '../lib/express.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve } from './helpers/apps.js'

type Test = typeof t

/** Process warnings emitted while `fn` runs (Node prints them even with the app's logger off). */
async function warningsDuring (fn: () => Promise<void>): Promise<Array<{ code: string, message: string }>> {
  const seen: Array<{ code: string, message: string }> = []
  const on = (w: Error & { code?: string }): void => { if (w.name === 'LitefsProxyWarning') seen.push({ code: w.code as string, message: w.message }) }
  process.on('warning', on)
  try { await fn() } finally {
    await new Promise(resolve => setImmediate(resolve)) // warnings are emitted on the next tick
    process.off('warning', on)
  }
  return seen
}

/**
 * A logger that records what it is given but, as pino at level error, says it
 * shows no warn lines: a misconfiguration then comes as a process warning (one
 * signal; test/one-signal.test.ts has the loggers that show them).
 */
function capture (): { log: any, lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = []
  const at = (level: string) => (_o: object, msg: string) => { lines.push([level, msg]) }
  return { log: { debug () {}, info: at('info'), warn: at('warn'), error: at('error'), isLevelEnabled: (level: string) => level !== 'warn' }, lines }
}

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: close() answers held requests at once with 503 LITEFS_CLOSED, and only its own`, async t => {
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    t.teardown(async () => { await fake.close() })
    const opts = { readTimeout: 60_000, primaryRedirectTimeout: 60_000 }
    const a = await serve(adapter, fake, opts)
    const b = await serve(adapter, fake, opts) // a second app on the same mount: one shared state
    t.teardown(async () => { await b.close() })
    t.equal(a.state, b.state, 'one state per mount')
    fake.losePrimary()
    await until(() => a.state.primaryHostname === undefined)
    const read = request(`${a.url}/items`, { headers: { cookie: 'litefs-txid=00000000000000ff' } })
    const write = request(`${a.url}/items`, { method: 'POST', body: 'x' })
    const other = request(`${b.url}/items`, { headers: { cookie: 'litefs-txid=00000000000000ff' } })
    await until(() => a.state.waiterCount === 3, 'three held')
    await a.close() // forceCloseConnections is on for the test Fastify app, as in the issue
    for (const res of [await read, await write]) {
      t.equal(res.statusCode, 503)
      t.equal(res.headers['retry-after'], '1')
      t.equal((await res.body.json() as any).code, 'LITEFS_CLOSED')
    }
    t.equal(a.state.waiterCount, 1, "the other app's held read is still held")
    fake.advance(0xffn)
    t.equal((await other).statusCode, 200, 'and served when its TXID arrives')
  })
}

t.test('Fastify: close() is not delayed by held requests', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const app = Fastify()
  await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, readTimeout: 60_000 })
  app.get('/x', async () => 'x')
  await app.listen({ port: 0, host: '127.0.0.1' })
  await until(() => app.litefs.state.litefs === 'up')
  const held = request(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/x`, { headers: { cookie: 'litefs-txid=00000000000000ff' } })
  await until(() => app.litefs.state.waiterCount === 1)
  await app.close() // would wait the full readTimeout (60 s) if the held read were not answered
  const res = await held
  t.equal(res.statusCode, 503)
  t.equal((await res.body.json() as any).code, 'LITEFS_CLOSED')
})

t.test('misconfiguration is said once per cause (a process warning where the logger hides warn lines); a cleared cause is said once too', async t => {
  await t.test('a mount that does not exist, then a directory that is not a LiteFS mount', async t => {
    const { log, lines } = capture()
    const dir = mkdtempSync(join(tmpdir(), 'not-a-mount-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const warnings = await warningsDuring(async () => {
      const missing = wrap(() => {}, { db: 'app.db', mount: join(dir, 'nowhere'), api: false, logger: log })
      missing.core.state.refresh()
      missing.core.state.refresh() // asked again: not said again
      await missing.close()
      const plain = wrap(() => {}, { db: 'app.db', mount: dir, api: false, role: 'primary', logger: log }) // a role: only the mount is at fault here
      writeFileSync(join(dir, '.lag'), '+000000000\n') // LiteFS arrives
      plain.core.state.refresh()
      await plain.close()
    })
    t.same(warnings.map(w => w.code), ['LITEFS_MOUNT', 'LITEFS_MOUNT'])
    t.match(warnings[0].message, /the mount .*nowhere does not exist: is "mount" LiteFS's fuse\.dir/)
    t.match(warnings[1].message, /is not a live LiteFS mount \(no \.lag in it\)/)
    t.same(lines.map(l => l[0]), ['warn', 'warn', 'info'])
    t.match(lines[2][1], /is a live LiteFS mount again/)
  })

  await t.test("LiteFS's API answers, but the mount option is not its mount", async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
    const dir = mkdtempSync(join(tmpdir(), 'wrong-mount-'))
    t.teardown(async () => { await fake.close(); rmSync(dir, { recursive: true, force: true }) })
    let l: ReturnType<typeof wrap> | undefined
    const warnings = await warningsDuring(async () => {
      l = wrap(() => {}, { db: 'app.db', mount: dir, api: fake.apiUrl, logger: capture().log })
      // Subscribed, but LiteFS is not up for this app: no role, nothing written here (mount-not-litefs.test.ts).
      await until(() => fake.subscribers === 1 && l?.core.state.litefs === 'down')
    })
    await l?.close()
    t.same(warnings.map(w => w.code), ['LITEFS_MOUNT'], 'once')
    t.match(warnings[0].message, /LiteFS's API answers but .* is not its mount \(no \.lag in it\): set "mount" to LiteFS's fuse\.dir/)
  })

  await t.test("LiteFS's API unreachable: once, however many reconnects; said when back", async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
    t.teardown(async () => { await fake.close() })
    const { log, lines } = capture()
    let l: ReturnType<typeof wrap> | undefined
    const warnings = await warningsDuring(async () => {
      l = wrap(() => {}, { db: 'app.db', mount: fake.mount, api: 'http://127.0.0.1:9', logger: log })
      await new Promise(resolve => setTimeout(resolve, 400)) // reconnects at 50, 100, 200 ms (not a timing assertion)
    })
    await l?.close()
    t.same(warnings.map(w => w.code), ['LITEFS_API_UNREACHABLE'])
    t.match(warnings[0].message, /event stream at http:\/\/127\.0\.0\.1:9 is unavailable \(ECONNREFUSED\)/)
    t.equal(lines.filter(x => x[0] === 'warn').length, 1)

    const { log: log2, lines: lines2 } = capture()
    const app = wrap(() => {}, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: log2 })
    t.teardown(async () => { await app.close() })
    await until(() => app.core.state.role === 'primary')
    // LiteFS ran here with these settings: its stream ending is LiteFS stopping, said as that.
    const stopping = await warningsDuring(async () => {
      await fake.stopApi()
      await until(() => lines2.length === 1)
    })
    t.same(stopping.map(w => w.code), ['LITEFS_STOPPED'])
    t.match(lines2[0][1], /LiteFS on this node stopped or is restarting \(LiteFS's event stream ended\)/)
    t.notMatch(lines2[0][1], /is "api"|http\.addr|fuse\.dir|EOF/, 'no configuration hint, no parser jargon')
    await fake.startApi()
    await until(() => lines2.length === 2)
    t.same(lines2.map(x => x[0]), ['warn', 'info'])
    t.match(lines2[1][1], /LiteFS on this node is back/)
  })

  await t.test('LiteFS stopping with its mount: one signal, its real cause, for the stream and the mount alike', async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
    t.teardown(async () => { await fake.close() })
    const { log, lines } = capture()
    const app = wrap(() => {}, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: log })
    t.teardown(async () => { await app.close() })
    await until(() => app.core.state.role === 'primary')
    const warnings = await warningsDuring(async () => {
      await fake.stop() // the API goes and the mount is gone
      await until(() => app.core.state.litefs === 'down', 'the mount is seen gone')
      app.core.state.refresh()
      app.core.health()
    })
    t.same(warnings.map(w => w.code), ['LITEFS_STOPPED'], 'said once')
    t.same(lines.filter(l => l[0] === 'warn').length, 1)
    t.notMatch(lines[0][1], /is "mount"|fuse\.dir|is "db"/)
    await fake.restart()
    await until(() => app.core.state.role === 'primary', 'LiteFS back')
    t.match(lines.at(-1)?.[1], /LiteFS on this node is back/)
  })

  await t.test('files only (api: false) on a primary without role: said once at start, by every adapter; writes 503 LITEFS_ROLE_UNKNOWN', async t => {
    // Fastify with its logger off (through the shared test apps), Express and node:http with a logger that hides warn lines.
    const adapters: Array<[string, (fake: FakeLitefs) => Promise<{ url: string, close: () => Promise<void> }>]> = [
      ['fastify', async fake => await serve('fastify', fake, { api: false, primaryRedirectTimeout: 20 })],
      ['express', async fake => {
        const proxy = expressLitefs({ db: 'app.db', mount: fake.mount, api: false, primaryRedirectTimeout: 20, logger: capture().log })
        const errors = expressLitefs.errorHandler()
        const server = createServer((req, res) => { proxy(req as any, res as any, (err?: unknown) => { if (err === undefined) res.end('app'); else errors(err, req as any, res as any, () => { res.destroy() }) }) })
        await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
        return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: async () => { await proxy.close(); await new Promise(resolve => server.close(resolve)) } }
      }],
      ['http', async fake => {
        const listener = wrap((_req, res) => { res.end('app') }, { db: 'app.db', mount: fake.mount, api: false, primaryRedirectTimeout: 20, logger: capture().log })
        const server = createServer(listener)
        await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
        return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: async () => { await listener.close(); await new Promise(resolve => server.close(resolve)) } }
      }]
    ]
    for (const [adapter, start] of adapters) {
      const fake = await FakeLitefs.start({ role: 'primary', txid: 3n, api: false })
      t.teardown(async () => { await fake.close() })
      const warnings = await warningsDuring(async () => {
        const app = await start(fake)
        const health = await request(`${app.url}/litefs/health`)
        t.equal(health.statusCode, 503, `${adapter}: health is not ok`)
        t.match(await health.body.json(), { status: 'role-unknown', role: 'unknown' })
        const write = await request(`${app.url}/items`, { method: 'POST', body: 'x' })
        t.equal(write.statusCode, 503)
        t.match(await write.body.json(), { code: 'LITEFS_ROLE_UNKNOWN', error: /no "role" option says which/ })
        await app.close()
      })
      t.same(warnings.map(w => w.code), ['LITEFS_ROLE'], `${adapter}: said once`)
      t.match(warnings[0]?.message, /api: false and no "role" option: .*Set "role" to "primary" on the primary/)
    }
  })

  await t.test('files only (api: false): a mount that answered, then died, is LiteFS stopping', async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 3n, api: false })
    t.teardown(async () => { await fake.close() })
    const { log, lines } = capture()
    const app = wrap(() => {}, { db: 'app.db', mount: fake.mount, api: false, role: 'primary', logger: log })
    t.teardown(async () => { await app.close() })
    app.core.state.refresh()
    t.equal(app.core.state.litefs, 'up')
    const warnings = await warningsDuring(async () => {
      await fake.stop()
      app.core.state.refresh()
      app.core.state.refresh()
    })
    t.same(warnings.map(w => w.code), ['LITEFS_STOPPED'])
    t.match(lines[0][1], /its mount .* does not answer/)
    await fake.restart()
    app.core.state.refresh()
    t.match(lines.at(-1)?.[1], /LiteFS on this node is back/)
  })

  await t.test('a wrong db on the primary: said at start when LiteFS has other databases, else at the first write', async t => {
    for (const txid of [3n, 0n]) { // with app.db in the mount, and with no database yet
      const fake = await FakeLitefs.start({ role: 'primary', txid })
      t.teardown(async () => { await fake.close() })
      const warnings = await warningsDuring(async () => {
        const app = Fastify({ forceCloseConnections: true }) // its logger is off: only process warnings speak
        await app.register(litefs, { db: 'typo.db', mount: fake.mount, api: fake.apiUrl })
        app.post('/w', async () => { fake.advance(fake.txid + 1n, { event: false }); return 'ok' }) // the app writes app.db
        await app.listen({ port: 0, host: '127.0.0.1' })
        await until(() => app.litefs.state.role === 'primary')
        const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
        for (let i = 0; i < 2; i++) {
          const res = await request(`${url}/w`, { method: 'POST' })
          t.equal(res.headers['set-cookie'], undefined, 'no cookie: read-your-writes is off…')
          await res.body.dump()
        }
        await app.close()
      })
      t.same(warnings.map(w => w.code), ['LITEFS_DB'], '…and said, once')
      t.match(warnings[0].message, txid > 0n
        ? /no database "typo\.db" under .*, where LiteFS has "app\.db": is "db" the file name your app opens\?/
        : /a write was served here as primary, but .*typo\.db-pos does not exist, so its answer has no cookie/)
    }
  })

  await t.test('a fresh cluster: the database does not exist yet, said as that; cleared once it appears', async t => {
    const fake = await FakeLitefs.start({ role: 'primary' }) // no database yet
    t.teardown(async () => { await fake.close() })
    const { log, lines } = capture()
    const l = wrap((_req, res) => { res.end('ok') }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: log })
    t.teardown(async () => { await l.close() })
    const { createServer } = await import('node:http')
    const server = createServer(l).listen(0, '127.0.0.1')
    t.teardown(() => { server.close() })
    await until(() => l.core.state.role === 'primary' && server.listening)
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    await (await request(`${url}/`, { method: 'POST' })).body.dump()
    fake.advance(1n, { event: false })
    const res = await request(`${url}/`, { method: 'POST' })
    await res.body.dump()
    t.match(String(res.headers['set-cookie']), /litefs-txid=0000000000000001/)
    t.same(lines.map(x => x[0]), ['warn', 'info'])
    t.match(lines[0][1], /the database .*\/app\.db does not exist yet \(LiteFS has no database\).*create it, and its schema, on the primary/)
    t.notMatch(lines[0][1], /is "db" the file name/, 'not a hint that points the wrong way')
    t.match(lines[1][1], /app\.db-pos exists now/)
  })
})

t.test('Fastify: a route whose config.litefs is wrong fails when it is added, naming the route and the key', async t => {
  for (const [setting, re] of [
    ['off', /route GET \/r: config\.litefs must be false or \{ alwaysForward\?: true\|false, durability\?: true\|false \}, got "off"/],
    [true, /got true/],
    [[], /got \[\]/],
    [{ alwaysFoward: true }, /route GET \/r: unknown key config\.litefs\.alwaysFoward \(the keys are alwaysForward and durability\)/],
    [{ alwaysForward: 'yes' }, /config\.litefs\.alwaysForward must be true or false, got "yes"/],
    [{ durability: 1 }, /config\.litefs\.durability must be true or false, got 1/]
  ] as const) {
    const app = Fastify()
    await app.register(litefs, { db: 'app.db', mount: '/nonexistent', api: false })
    t.throws(() => app.get('/r', { config: { litefs: setting as any } }, async () => 'r'), re)
    await app.close()
  }
  const app = Fastify()
  await app.register(litefs, { db: 'app.db', mount: '/nonexistent', api: false })
  app.get('/a', { config: { litefs: false } }, async () => 'a')
  app.get('/b', { config: { litefs: { alwaysForward: true } } }, async () => 'b')
  app.get('/c', { config: {} }, async () => 'c')
  await app.ready()
  t.pass('valid settings are accepted')
  await app.close()
})

t.test('Express and node:http apps exit once their server closes, without close(): the event stream never holds a process', async t => {
  const code = await new Promise<number | null>(resolve => {
    const child = spawn(process.execPath, [...process.execArgv, new URL('./helpers/exits-without-close.ts', import.meta.url).pathname], { stdio: 'inherit' })
    child.on('exit', resolve)
  })
  t.equal(code, 0)
})

void expressLitefs
void ({} as Test)

t.test('close() during a refused-connection retry loop: 503 LITEFS_CLOSED, no further attempt', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  let attempts = 0
  const a = await serve('http', fake, { primaryUrl: () => { attempts++; return 'http://127.0.0.1:9' }, primaryRedirectTimeout: 60_000 })
  const write = request(`${a.url}/items`, { method: 'POST', body: 'x' })
  await until(() => attempts >= 2, 'refused, retried')
  await a.close()
  const seen = attempts
  const res = await write
  t.equal(res.statusCode, 503)
  t.equal((await res.body.json() as any).code, 'LITEFS_CLOSED')
  await new Promise(resolve => setTimeout(resolve, 150))
  t.equal(attempts, seen, 'no attempt after close()')
})

t.test('a primary whose host name does not resolve is said once, by name; a primary that answers clears it', async t => {
  // LiteFS names the primary by its lease hostname: without a primaryUrl that
  // maps it, this node cannot resolve it. Each write waits and fails; said once.
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-1', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const { log, lines } = capture()
  let target = 'http://node-1.invalid:1'
  const listener = wrap((_req, res) => { res.end('ok') }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, primaryRedirectTimeout: 300, primaryUrl: () => target, logger: log })
  const { createServer } = await import('node:http')
  const server = createServer(listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await listener.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  await until(() => listener.core.state.primaryHostname === 'node-1')
  const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/x`
  const seen = await warningsDuring(async () => {
    for (let i = 0; i < 2; i++) {
      const res = await request(url, { method: 'POST', body: 'x' })
      t.equal(res.statusCode, 503, 'the write is answered: no primary reachable')
      t.match(await res.body.json(), { code: 'LITEFS_NO_PRIMARY', error: /ENOTFOUND/ })
    }
  })
  t.same(seen.map(w => w.code), ['LITEFS_PRIMARY_UNRESOLVED'], 'one warning for two writes')
  t.match(seen[0].message, /node-1\.invalid:1 does not resolve.*primaryUrl/)
  // primaryUrl fixed (here: the function now answers another URL, as a fixed deploy would).
  const primary = createServer((_req, res) => { res.writeHead(201).end() })
  await new Promise<void>(resolve => primary.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { primary.close() })
  target = `http://127.0.0.1:${(primary.address() as import('node:net').AddressInfo).port}`
  t.equal((await request(url, { method: 'POST', body: 'x' })).statusCode, 201, 'forwarded once it resolves')
  t.equal(lines.filter(([, m]) => /reaches the primary again/.test(m)).length, 1, 'the cleared cause is said once')
  target = 'http://node-1.invalid:1'
  const again = await warningsDuring(async () => { await (await request(url, { method: 'POST', body: 'x' })).body.dump() })
  t.same(again.map(w => w.code), ['LITEFS_PRIMARY_UNRESOLVED'], 'back again after it cleared: said again, once')
  t.equal(lines.filter(([, m]) => /does not resolve/.test(m)).length, 2, 'two warnings in the log: before and after the clear')
})

t.test('Express: a body parser before the middleware is said on the primary too, once — a one-node test shows it (issue 23)', async t => {
  const express = (await import('express')).default
  const { createServer } = await import('node:http')
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  t.teardown(async () => { await fake.close() })
  for (const [order, said] of [['parser first', 1], ['proxy first', 0]] as const) {
    const errors: string[] = []
    const logger = { debug () {}, info () {}, warn () {}, error: (_o: object, msg: string) => { errors.push(msg) } }
    const proxy = expressLitefs({ db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger })
    const app = express()
    if (order === 'parser first') app.use(express.json()).use(proxy)
    else app.use(proxy).use(express.json())
    app.post('/notes', (req, res) => { fake.advance(fake.txid + 1n, { event: false }); res.status(201).json({ text: req.body?.text }) })
    const server = createServer(app).listen(0, '127.0.0.1')
    t.teardown(async () => { await proxy.close(); server.close() })
    await until(() => proxy.core.state.role === 'primary' && server.listening)
    const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/notes`
    for (let i = 0; i < 2; i++) {
      const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' })
      t.equal(res.statusCode, 201, `${order}: the primary serves the write`)
      t.match(String(res.headers['set-cookie']), /^litefs-txid=/)
      t.same(await res.body.json(), { text: 'hi' })
    }
    const bodiless = await request(url, { method: 'POST' })
    await bodiless.body.dump()
    t.equal(errors.length, said, `${order}: ${said === 1 ? 'said once, though no replica was involved' : 'nothing to say'}`)
    if (said === 1) t.match(errors[0], /a body parser \(or other body reader\) runs before litefs-proxy: writes landing on replicas cannot be forwarded.*Mount litefs-proxy first/)
  }
})
