// A replica's LiteFS that stops answering on its mount (SIGSTOP: every read of
// the FUSE mount then blocks the thread that makes it, until SIGCONT) on a real
// LiteFS v0.5.14 cluster (2 nodes, static lease), in every adapter and `serve`:
// the app's event loop never waits on the mount, so while LiteFS is stopped
// a request that needs no database is served, a read held for a token past
// the replica is answered at its `readTimeout` (504, as any held read that
// times out), and a wait outside HTTP ends the same way. The health check,
// sent first, reads `.lag` off the event loop: it is answered when the kernel
// has `.lag` cached or LiteFS answers again (a balancer's own timeout takes the
// node out meanwhile), and 200 once LiteFS is back. The apps run in this
// process: were its event loop to wait on the mount (before: the held read's
// synchronous `-pos` read froze the process until SIGCONT), nothing here would
// be answered until a watchdog resumed LiteFS (after WATCHDOG_MS), and the
// checks that LiteFS was still stopped when the answers came would fail.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { request } from 'undici'
import { startLitefsCluster, type LitefsCluster, type LitefsNode } from '../../lib/testing/litefs-cluster.js'
import type { Handler } from '../helpers/framework-apps.js'
import { FLAVOURS, createNotes, insertNote, quiet, ready as readyFor, startApp, until, type App, type Flavour } from './flavour-apps.js'
import { wrap } from '../../lib/http.js'
import { leavesNothingBehind } from './leftovers.js'

const DB = 'app.db'
/** The bound on a stop: the watchdog resumes LiteFS after this long whatever happens here (ms). */
const WATCHDOG_MS = 60_000

let cluster: LitefsCluster

function routes (node: LitefsNode): Record<string, Handler> {
  return {
    'POST /notes': insertNote(node, DB, 'stopped-mount', 1000),
    // Neither route opens SQLite: on a stopped replica it would block this process.
    'GET /notes': (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"served":true}') },
    'GET /ping': (_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }).end('pong') }
  }
}

/**
 * SIGSTOP the node's LiteFS (its process group), with a watchdog process that
 * sends SIGCONT after WATCHDOG_MS should this process be unable to. `resume()`
 * sends it now and ends the watchdog; `stopped()` is whether the watchdog has
 * not resumed it yet.
 */
function stopLitefs (node: LitefsNode): { resume: () => void, stopped: () => boolean } {
  const pid = node.pid as number
  const signal = (name: NodeJS.Signals): void => { try { process.kill(-pid, name) } catch { process.kill(pid, name) } }
  // Spawned first: a process holding a file of a stopped FUSE mount cannot
  // spawn (exec closes its copies of the fds, and each close waits on LiteFS).
  const watchdog: ChildProcess = spawn(process.execPath, ['-e', `setTimeout(() => { try { process.kill(-${pid}, 'SIGCONT') } catch {} try { process.kill(${pid}, 'SIGCONT') } catch {} }, ${WATCHDOG_MS})`], { stdio: 'ignore' })
  signal('SIGSTOP')
  let resumed = false
  return {
    resume: () => {
      if (resumed) return
      resumed = true
      signal('SIGCONT')
      watchdog.kill('SIGKILL')
    },
    stopped: () => !resumed && watchdog.exitCode === null && watchdog.signalCode === null
  }
}

const start = async (flavour: Flavour, node: LitefsNode, litefs: Record<string, unknown>): Promise<App> =>
  await startApp(flavour, { db: DB, mount: node.mount, api: node.apiUrl, ...litefs }, routes(node))

t.before(async () => {
  cluster = await startLitefsCluster({ nodes: 2, pausableReplication: true })
  await createNotes(cluster, [DB])
})
const closeAll = async (): Promise<void> => { await cluster?.close() }
t.teardown(closeAll)

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a replica whose LiteFS is stopped keeps answering what needs no database, times out held reads, and answers its health check once LiteFS does`, async t => {
    const [primaryNode, replicaNode] = cluster.nodes
    const primary = await start(flavour, primaryNode, {})
    t.teardown(primary.close)
    const replica = await start(flavour, replicaNode, { primaryUrl: () => primary.url, readTimeout: '1s' })
    t.teardown(replica.close)
    // The same mount outside HTTP (waitForToken): a job's wait.
    const job = wrap(() => {}, { db: DB, mount: replicaNode.mount, api: replicaNode.apiUrl, readTimeout: '1s', logger: quiet })
    t.teardown(job.close)
    await readyFor(cluster, primary, 'primary')
    await readyFor(cluster, replica, 'replica')
    await until('the job follows LiteFS', () => job.core.state.primaryHostname === primaryNode.hostname)
    await cluster.waitReplicated(DB)

    replicaNode.pauseReplication()
    const stop: { resume: () => void, stopped: () => boolean } = { resume: () => {}, stopped: () => false }
    t.teardown(() => { stop.resume(); replicaNode.resumeReplication() })
    const write = await request(`${primary.url}/notes`, { method: 'POST', body: '{}' })
    await write.body.dump()
    t.equal(write.statusCode, 201)
    const token = write.headers['litefs-txid'] as string
    t.match(token, /^[0-9a-f]{16}$/, 'the write carries its token')

    Object.assign(stop, stopLitefs(replicaNode))
    const health: { status?: number, body?: string } = {}
    const healthDone = request(`${replica.url}/litefs/health`).then(async res => { health.status = res.statusCode; health.body = await res.body.text() })

    const ping = await request(`${replica.url}/ping`)
    t.equal(ping.statusCode, 200, 'a request that needs no database is served')
    t.equal(await ping.body.text(), 'pong')
    t.ok(stop.stopped(), 'while LiteFS is stopped')

    const held = await request(`${replica.url}/notes`, { headers: { 'litefs-txid': token } })
    const heldBody = await held.body.text()
    t.equal(held.statusCode, 504, 'a read held for a token past the replica times out')
    t.match(heldBody, /"code":"LITEFS_READ_TIMEOUT"/)
    t.ok(stop.stopped(), 'while LiteFS is stopped')

    const waited = await job.core.waitForToken(token).then(() => undefined, (err: Error & { code?: string }) => err)
    t.equal(waited?.code, 'LITEFS_READ_TIMEOUT', 'a wait outside HTTP times out the same way')
    t.ok(stop.stopped(), 'while LiteFS is stopped')

    stop.resume()
    replicaNode.resumeReplication()
    await healthDone
    t.equal(health.status, 200, `the health check is answered once LiteFS is back: ${String(health.body)}`)
    t.match(health.body, /"status":"ok"/)
    const after = await request(`${replica.url}/notes`, { headers: { 'litefs-txid': token } })
    t.equal(after.statusCode, 200, 'the read with the token is served once the replica has it')
    t.same(await after.body.json(), { served: true })
  })
}

leavesNothingBehind(t, closeAll)
