// Several databases (issue 22.1), the edges: the token outside HTTP
// (tokenAfterWrite, waitForToken), a write whose databases have no position
// or only 0, a write whose commit this node can no longer vouch for, a
// single-database app given a token naming others, '*' on a given state (no
// mount to list: what the state reports, more than 16 databases), and
// `serve --db a,b`. Through real sockets where a request is involved.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type Served } from './helpers/apps.js'
import type { LitefsOptions } from '../lib/core/options.js'
import { NodeState, type StateDriver } from '../lib/core/node-state.js'
import { wrap } from '../lib/http.js'
import { serveOptions } from '../lib/sidecar/settings.js'

type Test = typeof t
const hex = (n: bigint): string => n.toString(16).padStart(16, '0')
const TWO = { db: ['app.db', 'cache.db'] }

interface Line { level: string, obj: Record<string, unknown>, msg: string }
function recorder (): { lines: Line[], logger: any } {
  const lines: Line[] = []
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => { lines.push({ level, obj, msg }) }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

async function node (t: Test, fakeOpts: Parameters<typeof FakeLitefs.start>[0], opts: Partial<LitefsOptions> = {}): Promise<{ fake: FakeLitefs, served: Served }> {
  const fake = await FakeLitefs.start(fakeOpts)
  const served = await serve('http', fake, opts)
  t.teardown(async () => { await served.close(); await fake.close() })
  return { fake, served }
}

async function rejection (p: Promise<unknown>): Promise<any> {
  try { await p } catch (err) { return err }
  throw new Error('resolved')
}

t.test('outside HTTP: tokenAfterWrite names every tracked database; waitForToken waits for each', async t => {
  const { fake: pfake, served: primary } = await node(t, { role: 'primary', txid: 5n }, TWO)
  const { fake: rfake, served: replica } = await node(t, { role: 'replica', txid: 5n }, { ...TWO, readTimeout: 5000 })
  pfake.advanceDb('cache.db', 3n, { event: false }) // the job's commit, to cache.db
  const token = await primary.core.tokenAfterWrite()
  t.equal(token, `app.db:${hex(5n)}|cache.db:${hex(3n)}`)
  const waiting = replica.core.waitForToken(token)
  await until(() => replica.state.awaits('cache.db'), 'held for cache.db (app.db is there)')
  rfake.advanceDb('cache.db', 3n)
  t.same(await waiting, { txid: hex(3n), waitedMs: (await waiting).waitedMs })
  t.same(await replica.core.waitForToken(`other.db:${hex(9n)}`), { waitedMs: 0 }, 'a database not tracked here: nothing to wait for')
  const onPrimary = await primary.core.waitForToken(`cache.db:${hex(99n)}`)
  t.equal(onPrimary.txid, hex(99n), 'on the primary: at once')
})

t.test('outside HTTP: a wait for the second database times out as a held read, stale or 504', async t => {
  const { served: stale } = await node(t, { role: 'replica', txid: 5n }, { ...TWO, readTimeout: 20, readTimeoutAction: 'stale' })
  const done = await stale.core.waitForToken(`app.db:${hex(5n)}|cache.db:${hex(2n)}`)
  t.match(done, { txid: hex(2n), stale: true })
  const { served: strict } = await node(t, { role: 'replica', txid: 5n }, { ...TWO, readTimeout: 20 })
  const err = await rejection(strict.core.waitForToken(`cache.db:${hex(2n)}`))
  t.match(err, { status: 504, code: 'LITEFS_READ_TIMEOUT', message: `replica did not reach TXID ${hex(2n)} within 20 ms (at ${hex(0n)})` })
})

t.test('outside HTTP: no -pos for any tracked database: LITEFS_NO_POSITION', async t => {
  const { served } = await node(t, { role: 'primary', txid: 0n }, TWO)
  const err = await rejection(served.core.tokenAfterWrite())
  t.match(err, { code: 'LITEFS_NO_POSITION', message: /^no position for app\.db, cache\.db after the write: the database \S+\/app\.db, cache\.db does not exist yet \(LiteFS has no database\): create it/ })
})

t.test('a write on a mount whose databases have no position yet: no cookie, LITEFS_DB said once; said clear once one exists', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 0n })
  const { lines, logger } = recorder()
  const app = wrap((req, res) => {
    if (req.url === '/zero') fake.advanceDb('cache.db', 0n, { event: false }) // a -pos that says 0
    if (req.url === '/one') fake.advanceDb('cache.db', 1n, { event: false })
    res.end('ok')
  }, { ...TWO, mount: fake.mount, api: fake.apiUrl, logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await fake.close() })
  await until(() => app.core.state.role === 'primary')
  const none = await request(`${server}/none`, { method: 'POST' })
  await none.body.dump()
  t.equal(none.headers['set-cookie'], undefined)
  t.match(lines.find(l => l.obj.code === 'LITEFS_DB')?.msg, /app\.db, cache\.db/)
  const zero = await request(`${server}/zero`, { method: 'POST' })
  await zero.body.dump()
  t.equal(zero.headers['set-cookie'], undefined, 'a position of 0: nothing to wait for, no cookie')
  const warned = lines.filter(l => l.obj.code === 'LITEFS_DB' && l.level === 'warn')
  t.equal(warned.filter(l => /a write was served here as primary/.test(l.msg)).length, 1, 'said once')
  // cache.db has a -pos now, app.db (named first) still none: said once too, for app.db alone.
  t.match(warned.filter(l => !/a write was served here as primary/.test(l.msg)), [{ obj: { db: 'app.db', databases: ['cache.db'] }, msg: /"db" names "app\.db", which has no position/ }])
  t.ok(lines.some(l => l.obj.code === 'LITEFS_DB' && l.level === 'info' && /a tracked database exists now/.test(l.msg)), 'cleared once a -pos exists, even at 0')
  const one = await request(`${server}/one`, { method: 'POST' })
  await one.body.dump()
  t.equal(one.headers['litefs-txid'], `cache.db:${hex(1n)}`, 'another database alone is named')
})

t.test('a write whose node stops being primary before its positions are back: 502 LITEFS_OUTCOME_UNKNOWN; an error answer passes', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 4n })
  const app = wrap((req, res) => {
    fake.becomeReplica('node-b')
    void until(() => app.core.state.role !== 'primary').then(() => { res.statusCode = req.url === '/fails' ? 500 : 201; res.end('done') })
  }, { ...TWO, mount: fake.mount, api: fake.apiUrl, logger: recorder().logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await fake.close() })
  await until(() => app.core.state.role === 'primary')
  const res = await request(`${server}/w`, { method: 'POST' })
  t.equal(res.statusCode, 502)
  t.match(await res.body.json(), { code: 'LITEFS_OUTCOME_UNKNOWN' })
  fake.becomePrimary()
  await until(() => app.core.state.role === 'primary')
  const failed = await request(`${server}/fails`, { method: 'POST' })
  t.equal(failed.statusCode, 500, 'the app\'s error claims nothing: it passes')
  t.equal(await failed.body.text(), 'done')
})

t.test('a single-database app: a token naming other databases is read for its own alone, the others said once', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
  const { lines, logger } = recorder()
  const app = wrap((req, res) => { res.end(JSON.stringify(req.litefs)) }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, readTimeout: 5000, logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await fake.close() })
  await until(() => app.core.state.primaryHostname === 'node-a')
  const pending = request(`${server}/r`, { headers: { 'litefs-txid': `cache.db:${hex(50n)}|app.db:${hex(6n)}` } })
  await until(() => app.core.state.awaits('app.db'))
  fake.advance(6n)
  const res = await pending
  t.match(await res.body.json(), { awaitedTxid: hex(6n) })
  t.match(lines.find(l => l.obj.code === 'LITEFS_TOKEN_DB'), { obj: { db: 'cache.db' }, msg: /"cache\.db", which this app does not track \(db: app\.db\)/ })
})

t.test('a read held for a database other than the main one times out naming it: 504 body and log line say which database and its position', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
  const { lines, logger } = recorder()
  const app = wrap((_req, res) => { res.end('served') }, { db: ['app.db', 'cache.db', 'queue.db'], mount: fake.mount, api: fake.apiUrl, readTimeout: 200, logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await fake.close() })
  await until(() => app.core.state.primaryHostname === 'node-a')
  fake.advanceDb('cache.db', 2n)
  await until(() => app.core.state.position('cache.db') === 2n)
  // A token for cache.db alone (its write touched only that database), ahead of this replica.
  const res = await request(`${server}/r`, { headers: { 'litefs-txid': `cache.db:${hex(255n)}` } })
  t.equal(res.statusCode, 504)
  t.match(await res.body.json(), { code: 'LITEFS_READ_TIMEOUT', error: `replica did not reach TXID ${hex(255n)} of cache.db within 200 ms (at ${hex(2n)})` })
  t.match(lines.find(l => l.msg.includes('read timed out')), { obj: { db: 'cache.db', txid: hex(255n), position: hex(2n) } })
  // The same token in a cookie whose value the client percent-encoded (document.cookie with encodeURIComponent).
  const encoded = await request(`${server}/r`, { headers: { cookie: `litefs-txid=${encodeURIComponent(`cache.db:${hex(255n)}`)}` } })
  t.equal(encoded.statusCode, 504, 'a percent-encoded cookie is held as the same token')
  t.match(await encoded.body.json(), { code: 'LITEFS_READ_TIMEOUT', error: `replica did not reach TXID ${hex(255n)} of cache.db within 200 ms (at ${hex(2n)})` })
})

/** A state of our own (no mount): positions as `positions` says, read synchronously unless `async` is given. */
function ownState (positions: Map<string, bigint>, async?: StateDriver['readPositionAsync']): NodeState {
  const state = new NodeState({ readPosition: db => positions.get(db), readLag: () => 0, ...(async === undefined ? {} : { readPositionAsync: async }) })
  state.setRole('primary')
  return state
}

t.test('outside HTTP on a given state (the dev cluster): no position names the state and what it has, never a mount path', async t => {
  const state = ownState(new Map([['app.db', 3n]]))
  state.readPosition('app.db')
  const { lines, logger } = recorder()
  const app = wrap((_req, res) => { res.end('ok') }, { db: 'ap.db', state, logger })
  t.teardown(async () => { await app.close(); await state.close() })
  const err = await rejection(app.core.tokenAfterWrite())
  t.match(err, { code: 'LITEFS_NO_POSITION', message: 'no position for ap.db after the write: the node\'s state has no position for "ap.db": is "db" the database your app writes? The state has "app.db"' })
  t.notMatch(err.message, /\/litefs/, 'no mount named: a given state has none')
  t.same(lines.find(l => l.msg.includes('no position for the database'))?.obj, { db: 'ap.db' }, 'the log line names the database, not a mount')
})

t.test("'*' on a given state: what the state reports, at most 16 (LITEFS_TOO_MANY_DBS once), health with no main database", async t => {
  const positions = new Map<string, bigint>()
  const state = ownState(positions)
  const { lines, logger } = recorder()
  const app = wrap((_req, res) => { res.end('ok') }, { db: '*', state, logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await state.close() })
  const first = await request(`${server}/w`, { method: 'POST' })
  await first.body.dump()
  t.equal(first.headers['set-cookie'], undefined, 'no database yet')
  t.match(lines.find(l => l.obj.code === 'LITEFS_DB')?.msg, /the node's state has no position for any database \(it has no database yet\)/)
  const names = Array.from({ length: 17 }, (_, i) => `t${String(i).padStart(2, '0')}.db`)
  for (const [i, name] of names.entries()) positions.set(name, BigInt(i + 1))
  positions.set('x'.repeat(120), 1n) // no token can name it
  for (const name of positions.keys()) state.readPosition(name)
  const res = await request(`${server}/w`, { method: 'POST' })
  await res.body.dump()
  const token = res.headers['litefs-txid'] as string
  t.equal(token.split('|').length, 16, 'sixteen databases named')
  t.notOk(token.includes('t16.db') || token.includes('xxx'), 'the 17th, and a name too long for a token, are not')
  t.match(lines.find(l => l.obj.code === 'LITEFS_TOO_MANY_DBS')?.msg, /found 17 databases; a token names at most 16, so writes to "t16\.db" are not tracked/)
  const health = await request(`${server}/litefs/health`)
  const body = await health.body.json() as { txid: string | null, databases: Record<string, string> }
  t.equal(body.txid, null, "'*' alone: no main database")
  t.equal(Object.keys(body.databases).length, 16)
})

t.test('a driver whose asynchronous read fails for one database: that one is left out, the others named', async t => {
  const positions = new Map([['app.db', 3n], ['cache.db', 4n]])
  const state = ownState(positions, async db => { if (db === 'cache.db') throw new Error('EIO'); return positions.get(db) })
  state.setPosition('app.db', 9n) // an event newer than the read: kept, never lowered
  const app = wrap((_req, res) => { res.end('ok') }, { ...TWO, state, logger: recorder().logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await state.close() })
  const res = await request(`${server}/w`, { method: 'POST' })
  await res.body.dump()
  t.equal(res.headers['litefs-txid'], hex(3n), 'app.db alone (as read), written as a single-database token')
  t.equal(state.position('app.db'), 9n)
})

t.test('a driver reading a batch at once (readPositionsAsync): its positions in order; one that throws or rejects gives no cookie, and the next batch is read again', async t => {
  const positions = new Map([['app.db', 3n], ['cache.db', 4n]])
  let fail: 'throw' | 'reject' | undefined = 'throw'
  const batches: string[][] = []
  const state = new NodeState({
    readPosition: db => positions.get(db),
    readLag: () => 0,
    readPositionsAsync: dbs => {
      batches.push([...dbs])
      if (fail === 'throw') throw new Error('EIO')
      if (fail === 'reject') return Promise.reject(new Error('ENOTCONN'))
      return Promise.resolve(dbs.map(db => positions.get(db)))
    }
  })
  state.setRole('primary')
  const { lines, logger } = recorder()
  const app = wrap((_req, res) => { res.end('ok') }, { ...TWO, state, logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await state.close() })
  for (const how of ['throw', 'reject'] as const) {
    fail = how
    const res = await request(`${server}/w`, { method: 'POST' })
    await res.body.dump()
    t.equal(res.headers['litefs-txid'], undefined, `a batch that ${how}s: no token`)
  }
  t.ok(lines.some(l => l.obj.code === 'LITEFS_DB'), 'said: no position for any database')
  fail = undefined
  const res = await request(`${server}/w`, { method: 'POST' })
  await res.body.dump()
  t.equal(res.headers['litefs-txid'], `app.db:${hex(3n)}|cache.db:${hex(4n)}`, 'read again: both named')
  t.same(batches, [['app.db', 'cache.db'], ['app.db', 'cache.db'], ['app.db', 'cache.db']], 'one call per batch, the databases in order')
})

t.test('answers ready while a batch is in flight share the next one (one token made for both); an answer while closing says connection: close', async t => {
  const positions = new Map([['app.db', 3n], ['cache.db', 4n]])
  const gates: Array<() => void> = []
  let reads = 0
  let handled = 0
  const state = ownState(positions, async db => {
    reads++
    const pos = positions.get(db) // as the read finds it when it starts
    await new Promise<void>(resolve => gates.push(resolve))
    return pos
  })
  const app = wrap((_req, res) => { handled++; res.end('ok') }, { ...TWO, state, logger: recorder().logger })
  const server = await listen(t, app)
  t.teardown(async () => { await state.close() })
  const first = request(`${server}/w`, { method: 'POST' })
  await until(() => gates.length === 2, 'the first batch: two reads at once')
  positions.set('cache.db', 5n)
  const second = request(`${server}/w`, { method: 'POST' })
  const third = request(`${server}/w`, { method: 'POST' })
  await until(() => handled === 3, 'both answers ready')
  for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) // their heads wait for the next batch
  for (const open of gates.splice(0)) open()
  t.equal((await first).headers['litefs-txid'], `app.db:${hex(3n)}|cache.db:${hex(4n)}`)
  await until(() => gates.length === 2, 'the second batch')
  t.equal(reads, 4, 'two batches of two reads')
  const closing = app.close()
  for (const open of gates.splice(0)) open()
  const [b, c] = [await second, await third]
  for (const res of [b, c]) {
    t.equal(res.headers['litefs-txid'], `app.db:${hex(3n)}|cache.db:${hex(5n)}`, 'the second batch\'s token')
    t.equal(res.headers.connection, 'close', 'the app is closing: the connection closes after this answer')
    await res.body.dump()
  }
  await (await first).body.dump()
  await closing
})

t.test("TrackedDatabases: '*' lists the mount again once RESCAN_MS passed; a mount that cannot be listed names nothing", async t => {
  const { TrackedDatabases, resolveDatabases } = await import('../lib/core/databases.js')
  const { warnings } = await import('../lib/core/warnings.js')
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n, api: false })
  t.teardown(async () => { await fake.close() })
  const state = ownState(new Map())
  const tracked = new TrackedDatabases(resolveDatabases('*'), state, fake.mount, warnings(recorder().logger), 0)
  await until(() => tracked.now().length === 1, 'the first listing')
  t.same(tracked.now(), ['app.db'])
  fake.advanceDb('cache.db', 1n, { event: false })
  await until(() => tracked.now().length === 2, 'listed again (RESCAN_MS 0 here)')
  t.same(tracked.now(), ['app.db', 'cache.db'])
  const gone = new TrackedDatabases(resolveDatabases(['a.db', '*']), state, `${fake.mount}/missing`, warnings(recorder().logger))
  await gone.listNow()
  t.same(gone.now(), ['a.db'])
  await state.close()
})

t.test('durability follows one database: refused as an option with several, and a route asking for it is not acknowledged as replicated', async t => {
  const { resolveOptions } = await import('../lib/core/options.js')
  t.throws(() => resolveOptions({ ...TWO, durability: true, peerSecret: 'sixteen chars ok!' }), { code: 'LITEFS_BAD_OPTION', message: /"durability" needs "db" to name one database, got \["app\.db","cache\.db"\]/ })
  // '*' with durability: the durability rule, not peerSecret's advice to name a main database first (which would only lead to it).
  for (const db of ['*', ['app.db', '*']]) {
    t.throws(() => resolveOptions({ db, durability: true, peerSecret: 'sixteen chars ok!' }), { code: 'LITEFS_BAD_OPTION', message: /"durability" needs "db" to name one database.*Track one database with durability, or turn durability off/ }, JSON.stringify(db))
  }
  const { default: Fastify } = await import('fastify')
  const { litefs } = await import('../lib/fastify.js')
  const state = ownState(new Map([['app.db', 2n], ['cache.db', 3n]]))
  const app = Fastify()
  await app.register(litefs, { ...TWO, state, peerSecret: 'sixteen chars ok!' })
  app.post('/d', { config: { litefs: { durability: true } } }, async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close(); await state.close() })
  const res = await request(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/d`, { method: 'POST' })
  t.equal(res.statusCode, 500)
  t.match(await res.body.json(), { code: 'LITEFS_NOT_REPLICATED', error: /durability follows one database, and this app tracks several/ })
  t.equal(res.headers['litefs-txid'], `app.db:${hex(2n)}|cache.db:${hex(3n)}`, 'the token goes with it: the write is there')
})

t.test('serve --db: several names, comma-separated', async t => {
  const o = serveOptions(['--addr', ':8080', '--target', 'localhost:8000', '--db', 'app.db, cache.db'], {}, () => {})
  t.same(o?.db, ['app.db', 'cache.db'])
  t.equal(serveOptions(['--addr', ':8080', '--target', 'localhost:8000', '--db', '*'], {}, () => {})?.db, '*')
})

async function listen (t: Test, listener: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('on the dev cluster (a given state): a misspelled db, alone or in a list, is said once, naming what the state has', async t => {
  const { createDevCluster } = await import('../lib/dev/index.js')
  const cluster = await createDevCluster({ nodes: 1, schema: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)' })
  t.teardown(() => cluster.close())
  const node = cluster.nodes[0]
  node.db.prepare('INSERT INTO t (v) VALUES (?)').run('first')
  const write = (db: LitefsOptions['db']): Promise<{ lines: Line[], setCookie: unknown }> => (async () => {
    const { lines, logger } = recorder()
    const app = wrap((_req, res) => { node.db.prepare('INSERT INTO t (v) VALUES (?)').run('x'); res.end('ok') }, { db, state: node.state, logger })
    const server = await listen(t, app)
    const res = await request(`${server}/w`, { method: 'POST' })
    await res.body.text()
    await app.close()
    return { lines, setCookie: res.headers['set-cookie'] }
  })()
  const alone = await write('ap.db')
  t.equal(alone.setCookie, undefined, 'no position for it: no cookie')
  t.match(alone.lines.filter(l => l.obj.code === 'LITEFS_DB'), [{ msg: /the node's state has no position for "ap\.db", so its answer has no cookie: is "db" the database your app writes\? The state has "app\.db"/ }])
  t.notMatch(alone.lines.map(l => l.msg).join('\n'), /\/litefs\//, 'no mount path where there is no mount')
  const listed = await write(['app.db', 'cahce.db'])
  t.ok(listed.setCookie, 'app.db has a position: the write is tokened')
  t.match(listed.lines.filter(l => l.obj.code === 'LITEFS_DB'), [{ obj: { db: 'cahce.db', databases: ['app.db'] }, msg: /"db" names "cahce\.db", which has no position \(no cahce\.db-pos\), unlike "app\.db": not created yet, or a wrong name\?/ }])
})

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: a token for a database the primary is behind on, or does not have, is served at once as the primary would (the probe asks about every database)`, async t => {
    const pfake = await FakeLitefs.start({ role: 'primary', txid: 5n })
    pfake.advanceDb('cache.db', 4n)
    const primary = await serve(adapter, pfake, { db: '*' })
    const rfake = await FakeLitefs.start({ role: 'replica', txid: 5n })
    rfake.advanceDb('cache.db', 4n)
    // readTimeout far above what the test waits: an answer means the probe settled the read, not the timeout.
    const replica = await serve(adapter, rfake, { db: '*', readTimeout: 60_000, primaryUrl: () => primary.url })
    t.teardown(async () => { await replica.close(); await primary.close(); await rfake.close(); await pfake.close() })
    for (const [label, token] of [
      ['cache.db ahead of the primary (lost in a failover)', `cache.db:${hex(9n)}`],
      ['ghost.db, which the primary does not have (forged, or dropped in a restore)', `ghost.db:${hex(1n)}`],
      ['both, and app.db which is here', `app.db:${hex(5n)}|cache.db:${hex(9n)}|ghost.db:${hex(1n)}`]
    ]) {
      const read = await request(`${replica.url}/items`, { headers: { 'litefs-txid': token } })
      t.equal(read.statusCode, 200, label)
      t.equal((await read.body.json() as any).litefs.unreachable, true, `${label}: served, as unreachable`)
    }
    // Health on a '*' replica: a database found in the mount, which no event named yet, at its -pos.
    rfake.advanceDb('quiet.db', 3n, { event: false })
    let databases: Record<string, string> = {}
    for (let i = 0; i < 500 && databases['quiet.db'] === undefined; i++) { // the mount is listed again at most once a second
      databases = (await (await request(`${replica.url}/litefs/health`)).body.json() as { databases: Record<string, string> }).databases
      if (databases['quiet.db'] === undefined) await new Promise(resolve => setTimeout(resolve, 10))
    }
    t.equal(databases['quiet.db'], hex(3n), 'its -pos, not 0')
    const waited = await replica.core.waitForToken(`ghost.db:${hex(2n)}`)
    t.equal(waited.unreachable, true, 'outside HTTP too')
    // One the primary has (a new database, not on this replica yet): held until replication brings it, then served as caught up.
    // No event for it on the primary, and its last listing of the mount is older: the probe's question makes it list again.
    pfake.advanceDb('queue.db', 1n, { event: false })
    const held = request(`${replica.url}/items`, { headers: { 'litefs-txid': `cache.db:${hex(4n)}|queue.db:${hex(1n)}` } })
    await until(() => replica.state.awaits('queue.db'), 'held for queue.db, which the primary has')
    await new Promise(resolve => setTimeout(resolve, 100)) // the probe has asked meanwhile: it must not serve it
    t.ok(replica.state.awaits('queue.db'), 'the primary has queue.db at 1: still held, replication will bring it')
    rfake.advanceDb('queue.db', 1n)
    const res = await held
    const body = await res.body.json() as any
    t.equal(res.statusCode, 200)
    t.notOk(body.litefs.unreachable, 'caught up, not unreachable')
  })
}

t.test('a read (and a waitForToken) ahead of the primary is said in one info line, the probe\'s, not one more per read', async t => {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const primary = wrap((_req, res) => { res.end('{}') }, { db: 'app.db', mount: pfake.mount, api: pfake.apiUrl })
  const primaryUrl = await listen(t, primary)
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  const { lines, logger } = recorder()
  const replica = wrap((req, res) => { res.end(JSON.stringify(req.litefs)) }, { db: 'app.db', mount: rfake.mount, api: rfake.apiUrl, readTimeout: 60_000, primaryUrl: () => primaryUrl, logger })
  const url = await listen(t, replica)
  t.teardown(async () => { await replica.close(); await primary.close(); await rfake.close(); await pfake.close() })
  await until(() => replica.core.state.primaryHostname === 'node-a' && primary.core.state.role === 'primary')
  const res = await request(`${url}/r`, { headers: { 'litefs-txid': hex(20n) } })
  t.match(await res.body.json(), { unreachable: true }, 'served as the primary would')
  t.equal((await replica.core.waitForToken(hex(21n))).unreachable, true, 'outside HTTP too')
  const info = lines.filter(l => l.level === 'info')
  t.equal(info.length, 2, 'one info line per probe answer')
  t.ok(info.every(l => /served reads whose TXID is ahead of the primary/.test(l.msg) && l.obj.reads === 1), 'the probe\'s, with how many it served')
  t.equal(lines.filter(l => l.level === 'debug' && /the primary is behind this/.test(l.msg)).length, 2, 'each read and wait: a debug line')
})

t.test('LITEFS_DB clears once the database\'s -pos appears, write or not: said at start (one database, several) or by a write', async t => {
  for (const [db, cleared] of [['new.db', /new\.db-pos exists now: writes are cookied/], [['app.db', 'new.db'], /new\.db-pos exists now: tokens include it/]] as const) {
    const fake = await FakeLitefs.start({ role: 'replica', txid: 5n })
    const { lines, logger } = recorder()
    const app = wrap((_req, res) => { res.end('ok') }, { db: db as string | string[], mount: fake.mount, api: fake.apiUrl, logger })
    await listen(t, app)
    t.teardown(async () => { await app.close(); await fake.close() })
    await until(() => lines.some(l => l.obj.code === 'LITEFS_DB'), 'said at start')
    t.match(lines.find(l => l.obj.code === 'LITEFS_DB'), { level: 'warn', msg: /no database "new\.db" under / })
    fake.advanceDb('other.db', 2n) // another database's position: nothing to clear
    fake.advanceDb('new.db', 1n)
    await until(() => lines.some(l => l.obj.code === 'LITEFS_DB' && l.level === 'info'), 'cleared')
    t.match(lines.filter(l => l.obj.code === 'LITEFS_DB' && l.level === 'info'), [{ msg: cleared }], 'once')
  }
  // A write as primary said it (no -pos at all); the database is created after, with no write since.
  const fake = await FakeLitefs.start({ role: 'primary', txid: 0n })
  const { lines, logger } = recorder()
  const app = wrap((_req, res) => { res.end('ok') }, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger })
  const server = await listen(t, app)
  t.teardown(async () => { await app.close(); await fake.close() })
  await until(() => app.core.state.role === 'primary')
  const res = await request(`${server}/w`, { method: 'POST' })
  await res.body.dump()
  t.match(lines.filter(l => l.obj.code === 'LITEFS_DB'), [{ level: 'warn', msg: /a write was served here as primary/ }])
  fake.advance(1n)
  await until(() => lines.some(l => l.obj.code === 'LITEFS_DB' && l.level === 'info'), 'cleared')
  t.match(lines.filter(l => l.obj.code === 'LITEFS_DB' && l.level === 'info'), [{ msg: /app\.db-pos exists now: writes are cookied/ }])
  const again = await request(`${server}/w`, { method: 'POST' })
  await again.body.dump()
  t.ok(again.headers['set-cookie'], 'cookied')
  t.equal(lines.filter(l => l.obj.code === 'LITEFS_DB').length, 2, 'no second clear')
})
