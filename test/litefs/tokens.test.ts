// Issue 22 on a real LiteFS v0.5.14 cluster (2 nodes, static lease, FUSE,
// loopback), in every adapter and `serve`: the token header (a write's answer
// carries -pos after its commit; a read sending it back in the header alone is
// held until real replication brings it), the stale answer of a read that
// timed out, and the token outside HTTP (tokenAfterWrite, waitForToken). LiteFS
// is never stopped here, so the apps run in this process; the reads never open
// SQLite on the replica (its position is what they answer).
import t from 'tap'
import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startLitefsCluster, type LitefsCluster, type LitefsNode } from '../../lib/testing/litefs-cluster.js'
import type { Handler } from '../helpers/framework-apps.js'
import { FLAVOURS, createNotes, insertNote, hex, quiet, ready as readyFor, startApp, until, type App, type Flavour } from './flavour-apps.js'
import { wrap } from '../../lib/http.js'
import { leavesNothingBehind } from './leftovers.js'

const DB = 'app.db'

let cluster: LitefsCluster

/** The node's position as its `-pos` says when the handler runs. */
const posNow = (node: LitefsNode): string => readFileSync(join(node.mount, `${DB}-pos`), 'utf8').slice(0, 16)

function routes (node: LitefsNode): Record<string, Handler> {
  return {
    'POST /notes': insertNote(node, DB, 'token'),
    'GET /notes': (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ position: posNow(node), stale: req.litefs?.stale ?? null }))
    }
  }
}

const start = async (flavour: Flavour, node: LitefsNode, litefs: Record<string, unknown>): Promise<App> =>
  await startApp(flavour, { db: DB, mount: node.mount, api: node.apiUrl, ...litefs }, routes(node))
const ready = async (app: App, role: 'primary' | 'replica'): Promise<void> => { await readyFor(cluster, app, role) }

t.before(async () => {
  cluster = await startLitefsCluster({ nodes: 2, pausableReplication: true })
  await createNotes(cluster, [DB])
})
const closeAll = async (): Promise<void> => { await cluster?.close() }
t.teardown(closeAll)

for (const flavour of FLAVOURS) {
  t.test(flavour, async t => {
    const [primaryNode, replicaNode] = cluster.nodes
    const primary = await start(flavour, primaryNode, {})
    t.teardown(primary.close)
    const replica = await start(flavour, replicaNode, { primaryUrl: () => primary.url, readTimeout: '5s' })
    t.teardown(replica.close)
    const stale = await start(flavour, replicaNode, { primaryUrl: () => primary.url, readTimeout: '150ms', readTimeoutAction: 'stale' })
    t.teardown(stale.close)
    await ready(primary, 'primary')
    await ready(replica, 'replica')
    await ready(stale, 'replica')

    await t.test('a write answer carries -pos after its commit in litefs-txid, forwarded or not', async t => {
      for (const app of [primary, replica]) {
        const res = await request(`${app.url}/notes`, { method: 'POST', body: '{}' })
        await res.body.dump()
        t.equal(res.statusCode, 201)
        t.equal(res.headers['litefs-txid'], hex(primaryNode.position(DB) as bigint), app === primary ? 'on the primary' : 'forwarded from the replica')
      }
    })

    await t.test('a read sending the token in the header alone is held until real replication brings it', async t => {
      await cluster.waitReplicated(DB)
      replicaNode.pauseReplication()
      let res
      let token
      try {
        const write = await request(`${primary.url}/notes`, { method: 'POST', body: '{}' })
        await write.body.dump()
        token = write.headers['litefs-txid'] as string
        const pending = request(`${replica.url}/notes`, { headers: { 'litefs-txid': token } })
        await until('the read is held', () => replica.stats().held === 1)
        t.ok(posNow(replicaNode) < token, 'the replica is behind the token while it holds the read')
        replicaNode.resumeReplication()
        res = await pending
      } finally {
        replicaNode.resumeReplication()
      }
      t.equal(res.statusCode, 200)
      const body = await res.body.json() as { position: string }
      t.ok(body.position >= token, `the handler ran at ${body.position}, having ${token}`)
    })

    await t.test("readTimeoutAction 'stale': a replica kept behind serves the read past its timeout, marked", async t => {
      await cluster.waitReplicated(DB)
      replicaNode.pauseReplication()
      try {
        const write = await request(`${primary.url}/notes`, { method: 'POST', body: '{}' })
        await write.body.dump()
        const token = write.headers['litefs-txid'] as string
        const res = await request(`${stale.url}/notes`, { headers: { 'litefs-txid': token } })
        t.equal(res.statusCode, 200)
        const body = await res.body.json() as { position: string, stale: boolean | null }
        t.ok(body.position < token, 'served behind the token')
        t.equal(res.headers['litefs-stale'], `txid=${token}; position=${body.position}`)
        if (flavour !== 'serve') t.equal(body.stale, true)
        t.equal(stale.stats().readTimeouts.stale, 1)
      } finally {
        replicaNode.resumeReplication()
      }
    })
  })
}

t.test("peerCookies: LiteFS's __txid and litefs-js's txnum, written from -pos as each peer writes them, hold a read until real replication brings the write", async t => {
  const [primaryNode, replicaNode] = cluster.nodes
  const replica = await start('http', replicaNode, { peerCookies: ['__txid', 'txnum'], readTimeout: '5s' })
  t.teardown(replica.close)
  await ready(replica, 'replica')
  for (const peer of ['__txid', 'txnum'] as const) {
    await cluster.waitReplicated(DB)
    replicaNode.pauseReplication()
    try {
      const db = new Database(join(primaryNode.mount, DB), { fileMustExist: true })
      try { db.prepare('INSERT INTO notes (text) VALUES (?)').run(peer) } finally { db.close() }
      const pos = readFileSync(join(primaryNode.mount, `${DB}-pos`), 'utf8')
      const value = peer === '__txid' ? pos.slice(0, 16) : String(parseInt(pos.trim().split('/')[0], 16))
      const pending = request(`${replica.url}/notes`, { headers: { cookie: `${peer}=${value}` } })
      await until(`${peer}: held`, () => replica.stats().held === 1)
      replicaNode.resumeReplication()
      const res = await pending
      t.equal(res.statusCode, 200)
      t.ok((await res.body.json() as { position: string }).position >= pos.slice(0, 16), `${peer}=${value}: served once the replica had it`)
    } finally {
      replicaNode.resumeReplication()
    }
  }
})

t.test('outside HTTP: tokenAfterWrite is -pos after the job\'s commit; waitForToken on the replica returns once real replication brings it', async t => {
  const [primaryNode, replicaNode] = cluster.nodes
  const onPrimary = wrap(() => {}, { db: DB, mount: primaryNode.mount, api: primaryNode.apiUrl, logger: quiet })
  const onReplica = wrap(() => {}, { db: DB, mount: replicaNode.mount, api: replicaNode.apiUrl, readTimeout: '5s', logger: quiet })
  t.teardown(async () => { await onPrimary.close(); await onReplica.close() })
  await until('both follow LiteFS', () => onPrimary.core.state.role === 'primary' && onReplica.core.state.primaryHostname === primaryNode.hostname)
  await cluster.waitReplicated(DB)
  replicaNode.pauseReplication()
  try {
    const db = new Database(join(primaryNode.mount, DB), { fileMustExist: true })
    try { db.prepare('INSERT INTO notes (text) VALUES (?)').run('from a job') } finally { db.close() }
    const token = await onPrimary.core.tokenAfterWrite()
    t.equal(token, hex(primaryNode.position(DB) as bigint), 'the position after the job\'s commit')
    const waiting = onReplica.core.waitForToken(token)
    await until('held', () => onReplica.stats().held === 1)
    t.ok(posNow(replicaNode) < token, 'the replica is behind meanwhile')
    replicaNode.resumeReplication()
    const done = await waiting
    t.equal(done.txid, token)
    t.ok(posNow(replicaNode) >= token, 'released once the replica has it')
  } finally {
    replicaNode.resumeReplication()
  }
})

leavesNothingBehind(t, closeAll)
