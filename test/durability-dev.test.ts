// `durability` on the embedded dev cluster (`litefs-proxy/dev`), through real
// sockets: each node's app is given `state: node.state`, and the dev cluster's
// driver says every node is a candidate (any node can be promoted), so the
// replicas' litefs-proxy report to the primary's at primaryUrl as on real
// LiteFS. A write on the primary is answered once both replicas have it, held
// while one replica's replication is paused, and answered 500
// LITEFS_NOT_REPLICATED past durabilityTimeout; a primary nobody reports to
// says so in that answer. A given state whose driver does not know its
// candidacy reports nothing, and says why once.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { request } from 'undici'
import { litefs } from '../lib/fastify.js'
import { createDevCluster, type DevCluster } from '../lib/dev/index.js'
import { NodeState } from '../lib/core/node-state.js'
import type { LitefsOptions } from '../lib/core/options.js'
import { until } from './helpers/fake-litefs.js'

const SECRET = 'a-peer-secret-of-some-length'
const SCHEMA = 'CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)'

interface Node { app: FastifyInstance, url: string }

/** One Fastify app per node of a fresh dev cluster, each with `state: node.state`, reporting with `peerSecret`. */
async function apps (t: Test, nodes: number, opts: Partial<LitefsOptions>, named = true): Promise<{ cluster: DevCluster, apps: Node[] }> {
  const cluster = await createDevCluster({ nodes, schema: SCHEMA })
  t.teardown(async () => { await cluster.close() })
  const urls: Record<string, string> = {}
  const out: Node[] = []
  for (const node of cluster.nodes) {
    const app = Fastify()
    await app.register(litefs, { db: cluster.db, state: node.state, peerSecret: SECRET, ...(named ? { peerName: node.name } : {}), primaryUrl: (host: string) => urls[host], ...opts })
    app.post('/notes', async () => ({ id: Number(node.db.prepare("INSERT INTO notes (text) VALUES ('hi')").run().lastInsertRowid) }))
    urls[node.name] = await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close() })
    out.push({ app, url: urls[node.name] })
  }
  return { cluster, apps: out }
}

/** A write to `url`, and a flag saying whether its answer came. */
function write (url: string): { done: () => boolean, answer: Promise<{ status: number, body: any, cookie: string | undefined }> } {
  let came = false
  const answer = request(url + '/notes', { method: 'POST' }).then(async res => {
    const body = await res.body.json()
    came = true
    const set = res.headers['set-cookie']
    return { status: res.statusCode, body, cookie: Array.isArray(set) ? set[0] : set }
  })
  return { done: () => came, answer }
}

/** The primary's table lists both replicas as connected candidates, caught up. */
async function bothReport (primary: FastifyInstance): Promise<void> {
  await until(() => {
    const peers = primary.litefs.stats().peers ?? []
    return peers.length === 2 && peers.every(p => p.candidate && p.connected && p.behind === '0')
  }, 'node-2 and node-3 report to node-1 as candidates')
}

t.test('without peerName, each dev node reports under its own name: a paused replica still holds the answer', async t => {
  // All under the OS host name, one replica's report stood for the other's: a write was acknowledged
  // while node-3, paused, did not have it.
  const { cluster, apps: [primary] } = await apps(t, 3, { durability: true, durabilityTimeout: 30_000 }, false)
  await bothReport(primary.app)
  t.same(primary.app.litefs.stats().peers?.map(p => p.hostname).sort(), ['node-2', 'node-3'])
  cluster.pauseReplication(cluster.nodes[2])
  const w = write(primary.url)
  await until(() => primary.app.litefs.stats().peers?.find(p => p.hostname === 'node-2')?.behind === '0', 'node-2 reported it')
  t.notOk(w.done(), 'node-3 is paused: held')
  cluster.resumeReplication(cluster.nodes[2])
  t.equal((await w.answer).status, 200, 'answered once node-3 has it')
})

t.test('a write on the primary is answered once both replicas have it, and held while one is paused', async t => {
  const { cluster, apps: [primary] } = await apps(t, 3, { durability: true, durabilityTimeout: 30_000 })
  await bothReport(primary.app)
  t.same(primary.app.litefs.stats().peers?.map(p => p.hostname).sort(), ['node-2', 'node-3'])

  const first = await write(primary.url).answer
  t.equal(first.status, 200, 'both replicas reported it')
  t.match(first.cookie, /^litefs-txid=0000000000000002;/)
  t.same(primary.app.litefs.stats().durability, { waits: 1, replicated: 1, notReplicated: 0 })

  cluster.pauseReplication(cluster.nodes[2])
  const w = write(primary.url)
  await until(() => primary.app.litefs.stats().durability?.waits === 2, 'the second answer is held')
  await until(() => cluster.nodes[1].state.position(cluster.db) === 3n, 'node-2 has the write')
  await until(() => primary.app.litefs.stats().peers?.find(p => p.hostname === 'node-2')?.behind === '0', 'node-2 reported it')
  t.notOk(w.done(), 'node-3 is paused: still held')
  t.equal(primary.app.litefs.stats().peers?.find(p => p.hostname === 'node-3')?.behind, '1')
  cluster.resumeReplication(cluster.nodes[2])
  const second = await w.answer
  t.equal(second.status, 200, 'answered once node-3 has it too')
  t.same(second.body, { id: 2 })
  t.same(primary.app.litefs.stats().durability, { waits: 2, replicated: 2, notReplicated: 0 })
})

t.test('a replica paused past durabilityTimeout: 500 LITEFS_NOT_REPLICATED', async t => {
  const { cluster, apps: [primary] } = await apps(t, 3, { durability: true, durabilityTimeout: 300 })
  await bothReport(primary.app)
  cluster.pauseReplication(cluster.nodes[1])
  const a = await write(primary.url).answer
  t.equal(a.status, 500)
  t.equal(a.body.code, 'LITEFS_NOT_REPLICATED')
  t.match(a.body.error, /2 connected candidate\(s\) had reached only TXID 1 after 300 ms/)
  t.match(a.cookie, /^litefs-txid=0000000000000002;/, 'the write is there: the cookie is set')
  t.same(primary.app.litefs.stats().durability, { waits: 1, replicated: 0, notReplicated: 1 })
  cluster.resumeReplication(cluster.nodes[1])
})

t.test('a primary nobody reports to says so in its 500', async t => {
  const { apps: [primary] } = await apps(t, 1, { durability: true, durabilityTimeout: 100 })
  const a = await write(primary.url).answer
  t.equal(a.body.code, 'LITEFS_NOT_REPLICATED')
  t.match(a.body.error, /no candidate is reporting to this primary \(stats\(\)\.peers lists none connected\): check that the replicas' litefs-proxy have the same peerSecret, and reach this node at primaryUrl/)
  t.same(primary.app.litefs.stats().peers, [])
})

t.test('a given state whose driver does not know its candidacy: no report, said once', async t => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => { if (w.name === 'LitefsProxyWarning') warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const cluster = await createDevCluster({ nodes: 2, schema: SCHEMA })
  t.teardown(async () => { await cluster.close() })
  const [one, two] = cluster.nodes
  const urls: Record<string, string> = {}
  // node-2's own state, seen through a driver that says nothing of candidacy.
  const blind = new NodeState({ readPosition: db => two.state.readPosition(db), readLag: () => two.state.readLag() })
  blind.setRole('replica', one.name)
  blind.setPosition(cluster.db, 1n)
  const served: FastifyInstance[] = []
  for (const [name, state] of [[one.name, one.state], [two.name, blind]] as const) {
    const app = Fastify() // its logger is off: the warning is a process warning
    await app.register(litefs, { db: cluster.db, state, peerSecret: SECRET, peerName: name, primaryUrl: (host: string) => urls[host] })
    urls[name] = await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close() })
    served.push(app)
  }
  await until(() => warnings.length > 0, 'the warning')
  t.match(warnings[0], /this node cannot learn whether it is a candidate \(no LiteFS API: the given "state" does not say.*\): it sends no reports, so a primary with durability on never counts it/)
  t.equal(warnings.filter(w => w.includes('cannot learn whether it is a candidate')).length, 1, 'said once, for the blind node only')
  // node-1's driver knows (every dev node is a candidate), yet it is primary: nobody reports to it.
  await new Promise(resolve => setTimeout(resolve, 700)) // past a heartbeat (500 ms): a report would have come
  t.same(served[0].litefs.stats().peers, [], 'node-2 sent no report')
  await blind.close()
})
