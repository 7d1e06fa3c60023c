// Hardening on real LiteFS (issue 14): the primary's LiteFS stopped and
// restarted under write load, a manual static failover while the apps run, the
// event stream cut, slowed and fed garbage by a proxy between an app and LiteFS,
// and `litefs import` replacing the database under held reads.
import t from 'tap'
import Database from 'better-sqlite3'
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { rmSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { findLitefs, startLitefsCluster, type LitefsCluster, type LitefsNode } from '../../lib/testing/litefs-cluster.js'
import { leavesNothingBehind } from './leftovers.js'

const DB = 'app.db'
const SCHEMA = 'CREATE TABLE notes (id INTEGER PRIMARY KEY, user TEXT NOT NULL, text TEXT NOT NULL)'

async function until (what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await Promise.resolve().then(cond).catch(() => false))) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)) })
  })
}

function onPrimary<T> (node: LitefsNode, fn: (db: Database.Database) => T): T {
  const db = new Database(join(node.mount, DB), { fileMustExist: true })
  try { return fn(db) } finally { db.close() }
}

interface App { url: string, child: ChildProcess }

/** One example app (Fastify) per node, as test/litefs/node-app.mjs runs it; `api` may point at a proxy. */
async function startApp (node: LitefsNode, urls: Record<string, string>, port: number, api = node.apiUrl, options: Record<string, unknown> = {}): Promise<App> {
  const child = fork(new URL('node-app.mjs', import.meta.url), {
    env: { ...process.env, ADAPTER: 'fastify', PORT: String(port), MOUNT: node.mount, API: api, PRIMARY_URLS: JSON.stringify(urls), OPTIONS: JSON.stringify({ readTimeout: '10s', primaryRedirectTimeout: '8s', ...options }) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  await new Promise((resolve, reject) => { child.once('message', resolve); child.once('exit', code => reject(new Error(`app exited (${code})`))) })
  return { url: `http://127.0.0.1:${port}`, child }
}

const stats = async (app: App): Promise<any> => await (await request(`${app.url}/stats`)).body.json()

async function post (url: string, text: string): Promise<number> {
  return (await postAnswer(url, text)).status
}

/** A write's answer: its status, and the code of an answer of litefs-proxy's own. */
async function postAnswer (url: string, text: string): Promise<{ status: number, code?: string }> {
  try {
    const res = await request(`${url}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'chaos', text }) })
    const body = await res.body.text()
    let code: string | undefined
    try { code = (JSON.parse(body) as { code?: string }).code } catch {}
    return { status: res.statusCode, code }
  } catch {
    return { status: 0 } // the connection failed: no answer, so not acknowledged
  }
}

let cluster: LitefsCluster
const apps: App[] = []
let urls: Record<string, string> = {}

t.before(async () => {
  cluster = await startLitefsCluster({ nodes: 3, pausableReplication: true })
  const db = new Database(join(cluster.primary.mount, DB))
  db.pragma('journal_mode = WAL')
  db.exec(SCHEMA)
  db.close()
  await cluster.waitReplicated(DB)
  const ports = await Promise.all(cluster.nodes.map(freePort))
  urls = Object.fromEntries(cluster.nodes.map((n, i) => [n.hostname, `http://127.0.0.1:${ports[i]}`]))
  for (const [i, node] of cluster.nodes.entries()) apps.push(await startApp(node, urls, ports[i]))
  for (const app of apps) await until('the app follows LiteFS', async () => (await stats(app)).litefs === 'up')
})

async function closeAll (): Promise<void> {
  for (const app of apps) app.child.kill('SIGKILL')
  await cluster?.close()
}
t.teardown(closeAll)

t.test("the primary's LiteFS stopped and restarted 3 times under write load: no acknowledged write lost or doubled", async t => {
  // The apps run under LiteFS's `exec`, as LiteFS recommends: LiteFS stops its app
  // before it unmounts and starts it again once back, so no app holds the mount
  // while it goes (an app under write load that outlives its LiteFS fails or dies
  // of SIGBUS: fixture README). Their own cluster, apart from the others here.
  const ports = await Promise.all([0, 1, 2].map(freePort))
  const hostnames = ['node-1', 'node-2', 'node-3']
  const appUrls = Object.fromEntries(hostnames.map((h, i) => [h, `http://127.0.0.1:${ports[i]}`]))
  const script = new URL('node-app.mjs', import.meta.url).pathname
  const c = await startLitefsCluster({
    nodes: 3,
    exec: () => `${process.execPath} ${script}`,
    env: node => ({ ADAPTER: 'fastify', PORT: String(ports[node.index]), MOUNT: node.mount, API: node.apiUrl, PRIMARY_URLS: JSON.stringify(appUrls), OPTIONS: JSON.stringify({ primaryRedirectTimeout: '8s' }) })
  })
  t.teardown(async () => { await c.close() })
  const [primary] = c.nodes
  const db = new Database(join(primary.mount, DB))
  db.pragma('journal_mode = WAL')
  db.exec(SCHEMA)
  db.close()
  await c.waitReplicated(DB)
  const execApps: App[] = hostnames.map(h => ({ url: appUrls[h], child: undefined as unknown as ChildProcess }))
  for (const app of execApps) await until('the app under exec answers', async () => (await stats(app)).litefs === 'up')

  const acked = new Set<string>()
  const answers: Record<string, number> = {}
  let stop = false
  t.teardown(() => { stop = true })
  const writer = async (i: number): Promise<void> => {
    while (!stop) {
      const text = `w-${randomUUID()}`
      const { status, code } = await postAnswer(execApps[i % execApps.length].url, text)
      const key = code === undefined ? String(status) : `${status}/${code}`
      answers[key] = (answers[key] ?? 0) + 1
      if (status === 201) acked.add(text)
      if (status === 0) await new Promise(resolve => setTimeout(resolve, 20)) // an app restarting with its LiteFS
    }
  }
  const writers = Array.from({ length: 6 }, async (_, i) => await writer(i))
  for (let round = 0; round < 3; round++) {
    const before = acked.size
    await until('writes acknowledged', () => acked.size > before + 20)
    await primary.stop()
    await primary.start()
  }
  const last = acked.size
  await until('writes acknowledged after the last restart', () => acked.size > last + 20)
  stop = true
  await Promise.all(writers)
  await c.waitReplicated(DB, 20_000)
  const counts = onPrimary(primary, db => new Map((db.prepare("SELECT text, count(*) AS n FROM notes WHERE user = 'chaos' GROUP BY text").all() as Array<{ text: string, n: number }>).map(r => [r.text, r.n])))
  const lost = [...acked].filter(text => !counts.has(text))
  const doubled = [...counts.entries()].filter(([, n]) => n > 1)
  t.comment(`answers ${JSON.stringify(answers)} (0: no answer, node-1's app stopped with its LiteFS); acknowledged ${acked.size}, rows ${counts.size}, lost ${lost.length}, doubled ${doubled.length}`)
  t.same(doubled, [], 'no write applied twice')
  t.same(lost, [], 'every acknowledged write is in the database')
  // 502 LITEFS_FORWARD_FAILED: a write a replica forwarded just as the primary's app
  // went away with its LiteFS, its connection closed before any answer where the
  // forwarder cannot prove the request unread (reused-connection.ts): it is not sent
  // again (never twice) and the client is told its outcome is unknown. Counted, not
  // a loss (seen once in 406 writes, CI 2026-12-06): at most the writes in flight at
  // each stop (6 writers, 3 stops).
  const unknown = answers['502/LITEFS_FORWARD_FAILED'] ?? 0
  t.ok(unknown <= 6 * 3, `writes whose outcome was unknown, said so: ${unknown}, at most the writes in flight at each stop`)
  t.notOk(Object.keys(answers).some(s => !['0', '201', '502/LITEFS_FORWARD_FAILED'].includes(s) && !s.startsWith('503')), 'every write answered 201, 503 while no primary, 502 outcome unknown, or not at all by a stopped app')
})

t.test('a manual static failover while the apps run: they follow the new roles without a restart', async t => {
  await cluster.setPrimary(1)
  const [, node2] = cluster.nodes
  for (const [i, app] of apps.entries()) {
    await until(`app on node-${i + 1} follows`, async () => {
      const s = await stats(app)
      return s.litefs === 'up' && (i === 1 ? s.role === 'primary' : s.primary === node2.hostname)
    })
  }
  for (const app of apps) {
    const text = `f-${randomUUID()}`
    t.equal(await post(app.url, text), 201, `${app.url}: writes reach node-2`)
    t.equal(onPrimary(node2, db => db.prepare('SELECT count(*) FROM notes WHERE text = ?').pluck().get(text)), 1)
  }
  await cluster.setPrimary(0) // back, for what follows
  for (const [i, app] of apps.entries()) {
    await until(`app on node-${i + 1} follows back`, async () => {
      const s = await stats(app)
      return s.litefs === 'up' && (i === 0 ? s.role === 'primary' : s.primary === cluster.nodes[0].hostname)
    })
  }
})

t.test('the event stream cut, slowed and fed garbage on its way: polling takes over, no release missed', async t => {
  const [primary, replica] = cluster.nodes
  // A proxy between the app and LiteFS's API that the test controls.
  let mode: 'pass' | 'slow' | 'garbage' = 'pass'
  const streams = new Set<ServerResponse>()
  const proxy = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const up = request(`${replica.apiUrl}${req.url as string}`).then(async r => {
      res.writeHead(r.statusCode, { 'content-type': 'application/json' })
      streams.add(res)
      res.on('close', () => { streams.delete(res); r.body.destroy() })
      for await (const chunk of r.body) {
        if (mode === 'slow') await new Promise(resolve => setTimeout(resolve, 300))
        if (mode === 'garbage') res.write('{"type":"tx","db":"app.db","data":{"txID":"ffffffffffffffff" nonsense\n\x00\x01garbage\n')
        res.write(chunk)
      }
    })
    up.catch(() => res.destroy())
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  const proxyPort = (proxy.address() as AddressInfo).port
  t.teardown(() => { proxy.closeAllConnections(); proxy.close() })
  const port = await freePort()
  const app = await startApp(replica, urls, port, `http://127.0.0.1:${proxyPort}`)
  t.teardown(() => { app.child.kill('SIGKILL') })
  await until('subscribed through the proxy', async () => (await stats(app)).litefs === 'up')

  // A read whose TXID the primary has and the replica not yet: the replica's
  // replication is paused, the write made, the read sent with its cookie; then
  // `during`, then replication resumes and must release the read.
  const heldRead = async (label: string, during: () => Promise<void>): Promise<void> => {
    await cluster.waitReplicated(DB)
    replica.pauseReplication()
    onPrimary(primary, db => db.prepare('INSERT INTO notes (user, text) VALUES (?, ?)').run(label, 'released'))
    const cookie = (primary.position(DB) as bigint).toString(16).padStart(16, '0')
    const read = request(`${app.url}/notes?user=${label}`, { headers: { cookie: `litefs-txid=${cookie}` } })
    try {
      await until(`${label}: held`, async () => (await stats(app)).held === 1)
      await during()
    } finally {
      replica.resumeReplication()
    }
    const res = await read
    t.equal(res.statusCode, 200, `${label}: released, not timed out`)
    t.same((await res.body.json() as any).notes.map((n: { text: string }) => n.text), ['released'], `${label}: and sees the write`)
  }

  await heldRead('cut', async () => {
    for (const s of streams) s.destroy() // cut mid-stream
    proxy.close() // and no way back for now
    proxy.closeAllConnections()
    await until('polling', async () => (await stats(app)).feed === 'polling')
  })
  await new Promise<void>(resolve => proxy.listen(proxyPort, '127.0.0.1', resolve))
  await until('back on the stream', async () => (await stats(app)).feed === 'events', 30_000)
  mode = 'garbage'
  await heldRead('garbage', async () => {})
  t.equal((await stats(app)).feed, 'events', 'garbage lines are skipped; the stream goes on')
  mode = 'slow'
  await heldRead('slow', async () => {})
  mode = 'pass'
})

t.test('`litefs import` under held reads: LiteFS moves the position on, never back; old cookies are served', async t => {
  const [primary, replica] = cluster.nodes
  await cluster.waitReplicated(DB)
  const old = join(tmpdir(), `litefs-import-${randomUUID()}.db`)
  t.teardown(() => rmSync(old, { force: true })) // leave nothing behind (issue 23)
  const source = new Database(join(primary.mount, DB), { fileMustExist: true })
  await source.backup(old)
  source.close()
  const before = primary.position(DB) as bigint
  const replicaApp = apps[1]
  replica.pauseReplication() // the replica sees the import only when released
  execFileSync(findLitefs() as string, ['import', '-name', DB, '-url', primary.apiUrl, old])
  const after = primary.position(DB) as bigint
  const held = request(`${replicaApp.url}/notes?user=chaos`, { headers: { cookie: `litefs-txid=${after.toString(16).padStart(16, '0')}` } })
  try {
    await until('held', async () => (await stats(replicaApp)).held === 1)
  } finally {
    replica.resumeReplication()
  }
  const res = await held
  t.equal(res.statusCode, 200, 'the import is a transaction like any other: a read waiting for it is released by replication')
  await res.body.dump()
  t.ok(after > before, `the position moved on (${before} → ${after}), as LiteFS v0.5.14 does on import, not back`)
  await cluster.waitReplicated(DB)
  t.equal(replica.position(DB), after)
  const oldCookie = await request(`${replicaApp.url}/notes?user=chaos`, { headers: { cookie: `litefs-txid=${before.toString(16).padStart(16, '0')}` } })
  t.equal(oldCookie.statusCode, 200, 'a cookie from before the import is satisfied at once')
  await oldCookie.body.dump()
})

leavesNothingBehind(t, closeAll)
