import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createDevCluster, type DevCluster, type DevNode } from '../lib/dev/index.js'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { wrap } from '../lib/http.js'
import { until } from './helpers/fake-litefs.js'

const SCHEMA = 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'

async function cluster (t: Test, options: Parameters<typeof createDevCluster>[0] = {}): Promise<DevCluster> {
  const c = await createDevCluster({ schema: SCHEMA, ...options })
  t.teardown(async () => await c.close())
  return c
}

/** Insert a row on `node` and return the TXID the node reports right after, as the plugin reads it. */
function write (c: DevCluster, node: DevNode, v = 'x'): bigint | undefined {
  node.db.prepare('INSERT INTO t (v) VALUES (?)').run(v)
  return node.state.readPosition(c.db)
}

async function reach (node: DevNode, db: string, txid: bigint): Promise<void> {
  const result = await new Promise(resolve => node.state.waitForPosition(db, txid, 10_000, resolve))
  if (result !== 'ready') throw new Error(`${node.name} did not reach ${txid}: ${String(result)}`)
}

function values (node: DevNode): string[] {
  return node.db.prepare('SELECT v FROM t ORDER BY id').pluck().all() as string[]
}

function maxId (node: DevNode): number {
  return (node.db.prepare('SELECT max(id) FROM t').pluck().get() as number | null) ?? 0
}

t.test('starts as a LiteFS cluster: node-1 primary, the others its replicas, same data everywhere', async t => {
  const c = await cluster(t)
  t.same(c.nodes.map(n => n.name), ['node-1', 'node-2', 'node-3'])
  t.equal(c.db, 'app.db')
  t.equal(c.primary, c.nodes[0])
  t.same(c.nodes.map(n => [n.state.role, n.state.primaryHostname]),
    [['primary', undefined], ['replica', 'node-1'], ['replica', 'node-1']])
  t.equal(new Set(c.nodes.map(n => n.file)).size, 3, 'one file per node')
  for (const n of c.nodes) {
    t.ok(n.running)
    t.ok(n.file.startsWith(c.dir))
    t.equal(n.state.position('app.db'), 1n, 'the schema is everybody\'s TXID 1')
    t.equal(n.state.readPosition('app.db'), 1n)
    t.equal(n.state.readPosition('other.db'), undefined, 'a database the cluster does not hold has no position')
    t.equal(n.state.readLag(), 0)
    t.same(values(n), [])
  }
})

t.test('without a schema the first commit is TXID 1; each commit takes the next', async t => {
  const c = await createDevCluster({ nodes: 2, db: 'x.db' })
  t.teardown(async () => await c.close())
  const [primary, replica] = c.nodes
  t.equal(primary.state.readPosition('x.db'), 0n)
  primary.db.exec(SCHEMA)
  t.equal(primary.state.readPosition('x.db'), 1n)
  t.equal(write(c, primary), 2n, 'the position read right after a write includes it')
  t.equal(primary.state.readPosition('x.db'), 2n, 'reading again without a commit does not advance')
  t.equal(write(c, primary), 3n)
  await c.settled()
  t.equal(replica.state.position('x.db'), 3n)
  t.same(values(replica), ['x', 'x'])
})

t.test('replicas are read-only, as under LiteFS', async t => {
  const c = await cluster(t)
  for (const replica of c.nodes.slice(1)) {
    t.throws(() => write(c, replica), { code: 'SQLITE_READONLY' })
    t.equal(replica.state.readPosition(c.db), 1n, 'a refused write is no transaction')
  }
})

t.test('the lag is honoured: the data and the position arrive together, later', async t => {
  const c = await cluster(t, { lag: [50, 80] })
  const [primary, replica] = c.nodes
  const txid = write(c, primary, 'hello')
  t.equal(txid, 2n)
  t.equal(replica.state.readPosition(c.db), 1n, 'the replica lags the primary right after the commit')
  t.same(values(replica), [], 'and the row is not readable there yet')
  t.type(replica.state.readLag(), 'number')
  await c.settled()
  t.equal(replica.state.readPosition(c.db), 2n)
  t.same(values(replica), ['hello'])
  t.equal(replica.state.readLag(), 0, 'caught up: no lag')
})

t.test('a replica\'s position is never ahead of its data (200 writes, random lag)', async t => {
  const c = await cluster(t, { lag: [0, 6] })
  const [primary, ...replicas] = c.nodes
  // What the primary held at each TXID, read when the TXID was given.
  const rowsAt = new Map<bigint, number>([[1n, 0]])
  const setPrimary = primary.state.setPosition.bind(primary.state)
  primary.state.setPosition = (db, txid) => {
    rowsAt.set(txid, maxId(primary))
    setPrimary(db, txid)
  }
  let checked = 0
  const wrong: string[] = []
  for (const r of replicas) {
    const set = r.state.setPosition.bind(r.state)
    r.state.setPosition = (db, txid) => {
      checked++
      const have = maxId(r)
      if (have !== rowsAt.get(txid)) wrong.push(`${r.name} at ${txid} has rows up to ${have}, the primary had ${rowsAt.get(txid)}`)
      set(db, txid)
    }
  }
  let released = 0
  for (let i = 1; i <= 200; i++) {
    // Half the commits are seen when the position is read after them (in a
    // request), the others by the cluster's own polling (outside requests).
    primary.db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(i, `v${i}`)
    if (i % 2 === 0) {
      const txid = primary.state.readPosition(c.db) as bigint
      t.equal(rowsAt.get(txid), i, 'the position read after a write includes it')
      for (const r of replicas) {
        r.state.waitForPosition(c.db, txid, 10_000, result => {
          released++
          if (result !== 'ready' || maxId(r) < i) wrong.push(`${r.name} released at ${txid} without row ${i}`)
        })
      }
    }
    await sleep(Math.random() < 0.5 ? 0 : 1)
  }
  await c.settled()
  t.same(wrong, [])
  t.equal(released, 200, 'every waiter was released')
  t.ok(checked > 0)
  const last = primary.state.readPosition(c.db) as bigint
  t.ok(last > 100n, `200 writes, ${last} TXIDs (the poll may see several commits as one)`)
  for (const r of replicas) {
    t.equal(r.state.position(c.db), last)
    t.equal(maxId(r), 200)
  }
})

t.test('commits made outside any request are replicated too', async t => {
  const c = await cluster(t)
  const [primary, replica] = c.nodes
  primary.db.prepare('INSERT INTO t (v) VALUES (?)').run('background job')
  await reach(replica, c.db, 2n)
  t.same(values(replica), ['background job'])
})

t.test('pauseReplication holds a replica back until resumeReplication', async t => {
  const c = await cluster(t)
  const [primary, paused, other] = c.nodes
  c.pauseReplication(paused)
  write(c, primary, 'a')
  write(c, primary, 'b')
  await reach(other, c.db, 3n)
  let settled = false
  const settling = c.settled().then(() => { settled = true })
  await sleep(20)
  t.equal(paused.state.readPosition(c.db), 1n, 'held back')
  t.same(values(paused), [])
  t.ok((paused.state.readLag() as number) > 0, 'its lag grows')
  t.notOk(settled, 'settled() waits for a paused replica')
  c.resumeReplication(paused)
  await settling
  t.equal(paused.state.readPosition(c.db), 3n, 'everything due lands at once')
  t.same(values(paused), ['a', 'b'])
  c.resumeReplication(paused)
  c.pauseReplication(primary)
  t.equal(write(c, primary), 4n, 'pausing the primary changes nothing')
  await c.settled()
  t.equal(paused.state.position(c.db), 4n)
})

t.test('settled() under writes that never pause: it waits for the commits made before the call, not for an idle cluster', async t => {
  const c = await cluster(t, { lag: [2, 6] })
  const [primary, r1, r2] = c.nodes
  write(c, primary, 'before')
  const target = primary.state.readPosition(c.db) as bigint
  let settled = false
  const settling = c.settled().then(() => { settled = true })
  // Writes go on meanwhile, each landing later than the one before (bounded: it used to never resolve).
  for (let i = 0; i < 5000 && !settled; i++) {
    write(c, primary, `during ${i}`)
    await new Promise(resolve => setTimeout(resolve, 1))
  }
  await settling
  t.ok(settled, 'resolved while writes went on')
  for (const r of [r1, r2]) t.ok((r.state.readPosition(c.db) as bigint) >= target, `${r.name} has every commit made before the call`)
})

t.test('failover: stop the primary, promote a replica, restart the old primary', async t => {
  const c = await cluster(t, { lag: [5, 15] })
  const [n1, n2, n3] = c.nodes
  write(c, n1, 'kept')
  await c.settled()
  c.pauseReplication(n2)
  write(c, n1, 'lost') // TXID 3: node-3 gets it, node-2 never does
  await reach(n3, c.db, 3n)

  c.stop(n1)
  t.equal(c.primary, undefined)
  t.notOk(n1.running)
  t.equal(n1.state.role, 'unknown')
  t.equal(n1.state.readPosition(c.db), undefined, 'a dead node has no readable position')
  t.equal(n1.state.readLag(), undefined)
  t.throws(() => values(n1), /not open/, 'its handle is closed')
  for (const n of [n2, n3]) {
    t.equal(n.state.role, 'replica')
    t.equal(n.state.primaryHostname, undefined, `${n.name} knows no primary`)
    t.notOk(n.state.primaryKnown)
  }
  await sleep(10)
  t.ok((n3.state.readLag() as number) > 0, 'a replica without a primary falls behind')
  await c.settled() // nothing to converge to
  c.stop(n1) // already stopped: nothing happens

  await c.promote(n2)
  t.equal(c.primary, n2)
  t.equal(n2.state.role, 'primary')
  t.equal(n2.state.readLag(), 0)
  t.equal(n2.state.readPosition(c.db), 2n, 'node-2 continues from its own position: TXID 3 is lost')
  t.same(values(n2), ['kept'])
  t.equal(write(c, n2, 'on node-2'), 3n, 'TXIDs continue above its position')
  t.same([n3.state.role, n3.state.primaryHostname], ['replica', 'node-2'])
  await c.settled()
  t.equal(n3.state.position(c.db), 3n)
  t.same(values(n3), ['kept', 'on node-2'], 'node-3 caught up from node-2, its lost commit replaced')
  t.throws(() => write(c, n3), { code: 'SQLITE_READONLY' })

  c.restart(n1)
  t.ok(n1.running)
  t.same([n1.state.role, n1.state.primaryHostname], ['replica', 'node-2'])
  t.throws(() => write(c, n1), { code: 'SQLITE_READONLY' }, 'back as a read-only replica')
  c.restart(n1) // already running: nothing happens
  await c.settled()
  t.equal(n1.state.readPosition(c.db), 3n)
  t.same(values(n1), ['kept', 'on node-2'], 'node-1 caught up from node-2')
})

t.test('promote a replica while the primary runs: a handoff', async t => {
  const c = await cluster(t)
  const [n1, n2, n3] = c.nodes
  write(c, n1, 'a')
  await c.settled()
  await c.promote(n1) // already primary: nothing happens
  t.equal(c.primary, n1)
  await c.promote(n3)
  t.equal(c.primary, n3)
  t.same([n1.state.role, n1.state.primaryHostname], ['replica', 'node-3'])
  t.throws(() => write(c, n1), { code: 'SQLITE_READONLY' }, 'the old primary is read-only now')
  t.equal(write(c, n3, 'b'), 3n)
  await c.settled()
  for (const n of [n1, n2]) t.same(values(n), ['a', 'b'])
})

t.test('promote refuses a stopped node and is overtaken by what happens during the handoff', async t => {
  const c = await cluster(t)
  const [n1, n2, n3] = c.nodes
  c.stop(n2)
  await t.rejects(c.promote(n2), /node-2 is stopped/)
  c.restart(n2)

  const stopped = c.promote(n2)
  c.stop(n2)
  await t.rejects(stopped, /promotion of node-2 was overtaken/)
  t.equal(c.primary, undefined)

  const first = c.promote(n3)
  const second = c.promote(n1)
  await t.rejects(first, /promotion of node-3 was overtaken/)
  await second
  t.equal(c.primary, n1)
  t.same([n3.state.role, n3.state.primaryHostname], ['replica', 'node-1'])
})

t.test('a restarted node with no primary is a replica that knows none, until one is promoted', async t => {
  const c = await cluster(t)
  const [n1, n2, n3] = c.nodes
  c.stop(n1)
  c.stop(n3)
  c.restart(n3)
  t.same([n3.state.role, n3.state.primaryHostname], ['replica', undefined])
  await c.promote(n2)
  t.same([n3.state.role, n3.state.primaryHostname], ['replica', 'node-2'])
  write(c, n2, 'z')
  await c.settled()
  t.same(values(n3), ['z'])
})

t.test('nodes of another cluster are refused', async t => {
  const a = await cluster(t, { nodes: 1 })
  const b = await cluster(t, { nodes: 1 })
  t.equal(a.primary, a.nodes[0], 'a one-node cluster is its own primary')
  t.throws(() => a.stop(b.nodes[0]), /node-1 is not a node of this cluster/)
})

t.test('a stopped replica gets nothing more, even a copy already under way', async t => {
  const c = await cluster(t)
  const [primary, replica] = c.nodes
  write(c, primary) // lag 0: the copy into node-2 starts now and lands after stop()
  c.stop(replica)
  await c.settled()
  t.equal(replica.state.position(c.db), 1n, 'its position stays where it was')
  c.restart(replica)
  await c.settled()
  t.equal(replica.state.readPosition(c.db), 2n)
})

t.test('replication never locks a replica\'s readers out; an open read keeps its snapshot', async t => {
  const c = await cluster(t)
  const [primary, replica] = c.nodes
  write(c, primary, 'a')
  await c.settled()
  const rows = replica.db.prepare('SELECT v FROM t').iterate()
  t.same(rows.next().value, { v: 'a' }) // a read transaction stays open on node-2's file
  write(c, primary, 'b')
  let reads = 0
  while (replica.state.position(c.db) < 3n) { // reads while the copy lands, turn after turn
    values(replica)
    reads++
    await new Promise(resolve => setImmediate(resolve))
  }
  t.ok(reads > 0)
  t.ok(rows.next().done, 'the open read still sees the data it started with')
  t.same(values(replica), ['a', 'b'], 'a read started after it sees the new data')
})

t.test('a writer holding a replica\'s file delays the copy, never skips it', async t => {
  const c = await cluster(t)
  const [primary, replica] = c.nodes
  const tool = new Database(replica.file) // another process or tool writing to the file
  t.teardown(() => tool.close())
  tool.exec('BEGIN IMMEDIATE')
  write(c, primary, 'a')
  await sleep(30)
  t.equal(replica.state.position(c.db), 1n, 'no position without the data')
  tool.exec('ROLLBACK')
  await c.settled()
  t.equal(replica.state.position(c.db), 2n)
  t.same(values(replica), ['a'])
})

t.test('every node runs in WAL mode, as it stays through failovers', async t => {
  const c = await cluster(t, { lag: [1, 3] })
  const [n1, n2] = c.nodes
  for (const n of c.nodes) {
    t.equal(n.db.pragma('journal_mode = WAL', { simple: true }), 'wal', `${n.name}: an app's start-up pragma works everywhere, as under LiteFS`)
  }
  for (let i = 0; i < 20; i++) write(c, n1, `w${i}`)
  await c.settled()
  t.equal(values(n2).length, 20)
  await c.promote(n2)
  for (const n of c.nodes) t.equal(n.db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(write(c, n2, 'after'), 22n, 'schema + 20 writes, then node-2 continues')
  await c.settled()
  t.equal(values(n1).at(-1), 'after')
})

t.test('a given dir is kept, and node-1\'s database in it seeds the next cluster', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'dev-cluster-test-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const first = await createDevCluster({ dir, nodes: 2, schema: SCHEMA })
  t.equal(first.dir, dir)
  write(first, first.nodes[0], 'persisted')
  await first.close()
  t.ok(existsSync(join(dir, 'node-1', 'app.db')), 'close() leaves a given dir in place')
  const second = await createDevCluster({ dir, nodes: 2 })
  t.teardown(async () => await second.close())
  for (const n of second.nodes) {
    t.equal(n.state.position('app.db'), 1n)
    t.same(values(n), ['persisted'])
  }
})

t.test('close() releases everything and removes its own dir', async t => {
  const c = await createDevCluster({ schema: SCHEMA, lag: 1000 })
  const [primary, replica] = c.nodes
  write(c, primary)
  const settling = c.settled()
  const held = new Promise(resolve => replica.state.waitForPosition(c.db, 2n, 60_000, resolve))
  t.ok(existsSync(c.dir))
  await c.close()
  await settling // released by close(), not by a replication that will never come
  t.equal(await held, 'closed')
  t.notOk(existsSync(c.dir))
  t.same(c.nodes.map(n => [n.running, n.state.role]), [[false, 'unknown'], [false, 'unknown'], [false, 'unknown']])
  await c.close() // twice is harmless
})

t.test('options are checked', async t => {
  await t.rejects(createDevCluster({ nodes: 0 }), RangeError)
  await t.rejects(createDevCluster({ nodes: 1.5 }), RangeError)
  await t.rejects(createDevCluster({ db: '' }), RangeError)
  await t.rejects(createDevCluster({ db: '../x.db' }), RangeError)
  await t.rejects(createDevCluster({ lag: -1 }), RangeError)
  await t.rejects(createDevCluster({ lag: [10, 5] }), RangeError)
  await t.rejects(createDevCluster({ lag: Infinity }), RangeError)
  await t.rejects(createDevCluster({ lag: [0, 3e9] }), { name: 'RangeError', message: /at most 24\.8 days/ }, 'past the longest timer')
  await t.rejects(createDevCluster({ lag: NaN }), RangeError)
})

t.test('a schema that fails rejects, and leaves no temporary dir behind', async t => {
  const tmp = await mkdtemp(join(tmpdir(), 'dev-cluster-test-'))
  const saved = process.env.TMPDIR
  process.env.TMPDIR = tmp // os.tmpdir() reads it at each call
  t.teardown(async () => {
    if (saved === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = saved
    await rm(tmp, { recursive: true, force: true })
  })
  await t.rejects(createDevCluster({ schema: 'CREATE TABLE' }), { code: 'SQLITE_ERROR' })
  t.same(await readdir(tmp), [])
})

// Real LiteFS's replicas of a dead primary retry it about once a second, each
// attempt a `primaryChange` naming it and, 0–5 ms later, one naming none
// (fixtures README). litefs-proxy never believes those on real LiteFS (.lag does
// not move: primary-confirm.ts), so the state a dev node stands in for names no
// primary until one is promoted. Walk 7: with the blip modelled here, a write
// went to the stopped primary's app, still running, and got its 503 after 5 s
// although a new primary had been promoted at 1.5 s.
t.test('replicas of a dead primary name none until one is promoted; a write meanwhile is held, then delivered once', async t => {
  const c = await cluster(t)
  const [n1, n2, n3] = c.nodes
  const seen: Array<string | undefined> = []
  const setRole = n3.state.setRole.bind(n3.state)
  n3.state.setRole = (role, hostname) => { seen.push(hostname); setRole(role, hostname) }
  const urls: Record<string, string> = {}
  const applied: string[] = []
  for (const node of c.nodes) {
    const listener = wrap((req, res) => {
      req.resume().on('end', () => {
        node.db.prepare('INSERT INTO t (v) VALUES (?)').run(node.name)
        applied.push(node.name)
        res.writeHead(201).end(node.name)
      })
    }, { db: c.db, state: node.state, primaryUrl: (host: string) => urls[host], primaryRedirectTimeout: '30s', logger: { debug () {}, info () {}, warn () {}, error () {} } })
    const server = createServer(listener)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    urls[node.name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    t.teardown(async () => { await listener.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  }
  c.stop(n1) // its app runs on, as the README's dev.mjs leaves it
  const write = request(`${urls['node-3']}/notes`, { method: 'POST', body: 'x' })
  await until(() => n3.state.waiterCount === 1, 'the write held: no primary')
  await sleep(1200) // past one of LiteFS's retries of the lost primary
  await c.promote(n2)
  const res = await write
  t.equal(res.statusCode, 201)
  t.equal(await res.body.text(), 'node-2', 'delivered to the new primary')
  t.same(applied, ['node-2'], 'applied once, there')
  t.notOk(seen.includes('node-1'), 'node-3 never named the stopped primary again')
})

// Walk 7: a replica that knows no primary answered health 200 ok while its
// writes got 503 — the same case as `unreachable` (a primary known but down).
t.test('health: a replica that has known no primary for primaryRedirectTimeout is unreachable, until one is known', async t => {
  const c = await cluster(t)
  const [n1, n2, n3] = c.nodes
  const urls: Record<string, string> = {}
  for (const node of c.nodes) {
    const listener = wrap((_req, res) => { res.end('ok') }, { db: c.db, state: node.state, primaryUrl: (host: string) => urls[host], primaryRedirectTimeout: '1s', logger: { debug () {}, info () {}, warn () {}, error () {} } })
    const server = createServer(listener)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    urls[node.name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    t.teardown(async () => { await listener.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  }
  const health = async (name: string): Promise<{ status: number, body: { status: string, primary: string | null, unreachable?: unknown } }> => {
    const res = await request(`${urls[name]}/litefs/health`)
    return { status: res.statusCode, body: await res.body.json() as { status: string, primary: string | null, unreachable?: unknown } }
  }
  t.equal((await health('node-3')).status, 200, 'a replica with its primary: ok')
  c.stop(n1)
  t.same((await health('node-3')).body.status, 'ok', 'no primary for less than primaryRedirectTimeout: a failover may be under way')
  let answer = await health('node-3')
  for (let i = 0; i < 300 && answer.status === 200; i++) { await sleep(20); answer = await health('node-3') }
  t.equal(answer.status, 503)
  t.same(answer.body, { status: 'unreachable', role: 'replica', primary: null, lag: answer.body.lag, txid: (answer.body as { txid: string }).txid, unreachable: { origin: null, error: 'LiteFS names no primary' } })
  await c.promote(n2)
  t.equal((await health('node-3')).status, 200, 'a primary known again: ok at once')
  t.equal((await health('node-2')).status, 200, 'the new primary')
  t.equal(n3.state.noPrimarySince, undefined)
})

t.test('a process that ends without close() leaves no files behind (issue 23: Ctrl-C during npm start)', async t => {
  const clusterDirs = async (dir: string): Promise<string[]> => (await readdir(dir)).filter(n => n.startsWith('litefs-dev-'))
  for (const [mode, code] of [['exit', 4], ['throw', 1], ['sigint', 130]] as const) {
    const tmp = await mkdtemp(join(tmpdir(), 'dev-leftover-'))
    t.teardown(async () => { await rm(tmp, { recursive: true, force: true }) })
    const child = fork(new URL('./helpers/dev-leftover.ts', import.meta.url).pathname, { env: { ...process.env, MODE: mode, TMPDIR: tmp }, stdio: 'ignore' })
    const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
    if (mode === 'sigint') {
      await new Promise(resolve => child.once('message', resolve))
      t.equal((await clusterDirs(tmp)).length, 1, `${mode}: the cluster's directory is there while it runs`)
      child.kill('SIGINT')
    }
    t.equal(await exited, code, `${mode}: the process ends as it would have`)
    t.same(await clusterDirs(tmp), [], `${mode}: nothing left`)
  }
})
