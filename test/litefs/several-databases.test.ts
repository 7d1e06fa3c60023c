// Several databases per mount (issue 22.1) on a real LiteFS v0.5.14 cluster
// (2 nodes, static lease, FUSE, loopback), in every adapter and `serve`: a
// write to the second database answers a token naming both databases'
// positions, read from their `-pos` files after the handler's commit; a read
// on the replica carrying it is held while real replication of that database
// is held back, and served once it arrives; health reports each database.
// With '*', a database the handler creates is in its own write's token. The
// apps run in this process; LiteFS is never stopped. Run by `npm run test:litefs`.
import t from 'tap'
import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startLitefsCluster, type LitefsCluster, type LitefsNode } from '../../lib/testing/litefs-cluster.js'
import type { Handler } from '../helpers/framework-apps.js'
import { FLAVOURS, createNotes, hex, ready as readyFor, startApp, until, type App, type Flavour } from './flavour-apps.js'
import { leavesNothingBehind } from './leftovers.js'

const DBS = ['app.db', 'cache.db']

let cluster: LitefsCluster

/** `db`'s position on `node` as its `-pos` says now. */
const posNow = (node: LitefsNode, db: string): string => readFileSync(join(node.mount, `${db}-pos`), 'utf8').slice(0, 16)

function commit (node: LitefsNode, db: string): void {
  const conn = new Database(join(node.mount, db), { timeout: 250 })
  try {
    conn.exec('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT)')
    conn.prepare('INSERT INTO notes (text) VALUES (?)').run(db)
  } finally { conn.close() }
}

function routes (node: LitefsNode): Record<string, Handler> {
  const writes = (db: string): Handler => (req, res) => {
    // The body says the database's position just after this handler's own commit (a fresh read of its -pos).
    const done = (): void => { commit(node, db); res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ db, pos: posNow(node, db) })) }
    if (req.readableEnded) done()
    else req.resume().on('end', done)
  }
  return {
    'POST /app': writes('app.db'),
    'POST /cache': writes('cache.db'),
    'POST /queue': writes('queue.db'),
    'GET /items': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cache: posNow(node, 'cache.db') }))
    }
  }
}

const start = async (flavour: Flavour, node: LitefsNode, litefs: Record<string, unknown>): Promise<App> =>
  await startApp(flavour, { db: DBS, mount: node.mount, api: node.apiUrl, ...litefs }, routes(node))
const ready = async (app: App, role: 'primary' | 'replica'): Promise<void> => { await readyFor(cluster, app, role) }

t.before(async () => {
  cluster = await startLitefsCluster({ nodes: 2, pausableReplication: true })
  await createNotes(cluster, DBS)
})
const closeAll = async (): Promise<void> => { await cluster?.close() }
t.teardown(closeAll)

for (const flavour of FLAVOURS) {
  t.test(flavour, async t => {
    const [primaryNode, replicaNode] = cluster.nodes
    const primary = await start(flavour, primaryNode, {})
    t.teardown(primary.close)
    const replica = await start(flavour, replicaNode, { primaryUrl: () => primary.url, readTimeout: '10s' })
    t.teardown(replica.close)
    await ready(primary, 'primary')
    await ready(replica, 'replica')

    await t.test('a write to cache.db: its token names both databases\' -pos after the commit', async t => {
      const res = await request(`${primary.url}/cache`, { method: 'POST', body: '{}' })
      await res.body.dump()
      t.equal(res.statusCode, 201)
      const token = `app.db:${hex(primaryNode.position('app.db') as bigint)}|cache.db:${hex(primaryNode.position('cache.db') as bigint)}`
      t.equal(res.headers['litefs-txid'], token)
      t.match(String(res.headers['set-cookie']), `=${token};`, 'the cookie says the same')
    })

    await t.test('writes racing each other, the batch on the worker thread: every token at or above its own commit, in each database', async t => {
      // A few writes one after another first: their fds are kept, and the worker
      // thread that reads a batch in one job comes up (about 50 ms) meanwhile.
      for (let i = 0; i < 4; i++) {
        await (await request(`${primary.url}/cache`, { method: 'POST', body: '{}' })).body.dump()
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      // Then writes to both databases at once: each commit moves a position
      // between another handler's commit and its answer's read.
      const answers = await Promise.all(Array.from({ length: 32 }, async (_, i) => {
        const res = await request(`${primary.url}/${i % 2 === 0 ? 'cache' : 'app'}`, { method: 'POST', body: '{}' })
        const own = await res.body.json() as { db: string, pos: string }
        return { status: res.statusCode, own, token: String(res.headers['litefs-txid']) }
      }))
      for (const { status, own, token } of answers) {
        t.equal(status, 201)
        const entries = new Map(token.split('|').map(e => e.split(':') as [string, string]))
        t.same([...entries.keys()], DBS, `${token}: every tracked database, the main one first`)
        const named = entries.get(own.db) as string
        t.ok(BigInt(`0x${named}`) >= BigInt(`0x${own.pos}`), `${own.db} at ${named} in the token, ${own.pos} after the handler's own commit`)
      }
    })

    await t.test('a read carrying it on the replica is held until real replication brings cache.db', async t => {
      await cluster.waitReplicated('app.db')
      await cluster.waitReplicated('cache.db')
      replicaNode.pauseReplication()
      let res
      let cache: string
      try {
        const write = await request(`${replica.url}/cache`, { method: 'POST', body: '{}' }) // forwarded to the primary
        await write.body.dump()
        const token = write.headers['litefs-txid'] as string
        cache = /cache\.db:([0-9a-f]{16})/.exec(token)?.[1] as string
        t.equal(cache, hex(primaryNode.position('cache.db') as bigint), 'the primary\'s cache.db after the commit, brought back by the forward')
        t.equal(/app\.db:([0-9a-f]{16})/.exec(token)?.[1], posNow(replicaNode, 'app.db'), 'app.db did not move: the replica has it already')
        const pending = request(`${replica.url}/items`, { headers: { 'litefs-txid': token } })
        await until('the read is held', () => replica.stats().held === 1)
        t.ok(replica.state.awaits('cache.db'), 'held for cache.db')
        t.ok(posNow(replicaNode, 'cache.db') < cache, 'the replica\'s cache.db is behind while it holds the read')
        replicaNode.resumeReplication()
        res = await pending
      } finally {
        replicaNode.resumeReplication()
      }
      t.equal(res.statusCode, 200)
      const body = await res.body.json() as { cache: string }
      t.ok(body.cache >= cache, `the handler ran with cache.db at ${body.cache}, having ${cache}`)
    })

    await t.test('a token for cache.db ahead of the primary, or for a database no node has: served at once, as the primary would', async t => {
      const ahead = (BigInt(`0x${posNow(primaryNode, 'cache.db')}`) + 1000n)
      for (const [label, token] of [['cache.db ahead of the primary', `cache.db:${hex(ahead)}`]]) {
        const before = replica.stats().unreachable
        const res = await request(`${replica.url}/items`, { headers: { 'litefs-txid': token } })
        await res.body.dump()
        // readTimeout is 10 s and answers 504: a 200 means the probe settled it from the primary's health.
        t.equal(res.statusCode, 200, label)
        t.equal(replica.stats().unreachable, before + 1, `${label}: counted unreachable`)
      }
    })

    await t.test('health reports each database', async t => {
      await cluster.waitReplicated('cache.db')
      for (const [app, node] of [[primary, primaryNode], [replica, replicaNode]] as const) {
        const res = await request(`${app.url}/litefs/health`)
        const body = await res.body.json() as { txid: string, databases: Record<string, string> }
        t.same(body.databases, { 'app.db': posNow(node, 'app.db'), 'cache.db': posNow(node, 'cache.db') })
        t.equal(body.txid, posNow(node, 'app.db'), 'txid: the main database\'s')
      }
    })
  })
}

t.test("'*': a database the handler creates is in its own write's token", async t => {
  const [primaryNode] = cluster.nodes
  const primary = await start('http', primaryNode, { db: ['app.db', '*'] })
  t.teardown(primary.close)
  await ready(primary, 'primary')
  const res = await request(`${primary.url}/queue`, { method: 'POST', body: '{}' })
  await res.body.dump()
  t.equal(res.statusCode, 201)
  const entries = (res.headers['litefs-txid'] as string).split('|')
  t.equal(entries[0], `app.db:${posNow(primaryNode, 'app.db')}`, 'the main database first')
  t.same(new Set(entries), new Set(['app.db', 'cache.db', 'queue.db'].map(db => `${db}:${posNow(primaryNode, db)}`)), 'every database in the mount, queue.db included')
})

t.test("'*' on a replica: a token for a database no node has is served at once; one the primary has is waited for", async t => {
  const [primaryNode, replicaNode] = cluster.nodes
  const primary = await start('fastify', primaryNode, { db: '*' })
  t.teardown(primary.close)
  const replica = await start('fastify', replicaNode, { db: '*', primaryUrl: () => primary.url, readTimeout: '10s' })
  t.teardown(replica.close)
  await ready(primary, 'primary')
  await ready(replica, 'replica')
  const before = replica.stats().unreachable
  const res = await request(`${replica.url}/items`, { headers: { 'litefs-txid': `ghost.db:${hex(1n)}` } })
  await res.body.dump()
  t.equal(res.statusCode, 200, 'ghost.db: no node has it; readTimeout is 10 s and answers 504, so a 200 is the probe')
  t.equal(replica.stats().unreachable, before + 1, 'counted unreachable')
  // A database the primary just created and the replica has not yet: held, then served once replicated.
  replicaNode.pauseReplication()
  try {
    commit(primaryNode, 'fresh.db')
    const pending = request(`${replica.url}/items`, { headers: { 'litefs-txid': `fresh.db:${posNow(primaryNode, 'fresh.db')}` } })
    await until('the read is held for fresh.db', () => replica.state.awaits('fresh.db'))
    replicaNode.resumeReplication()
    const held = await pending
    await held.body.dump()
    t.equal(held.statusCode, 200)
    t.equal(replica.stats().unreachable, before + 1, 'fresh.db is on the primary: waited for, not unreachable')
  } finally {
    replicaNode.resumeReplication()
  }
})

leavesNothingBehind(t, closeAll)
