// Automatic failover on real LiteFS v0.5.14 with a Consul v1.14.11 lease
// (issue 19): 3 nodes, each in its own network namespace, the apps of one
// variant on every node (the Fastify plugin in-process, or `litefs-proxy serve`
// in front of a small Python app), 10 clients through a non-sticky balancer
// writing unique tokens and reading them back with their cookie. Each fault is
// made on the primary, LITEFS_FAILOVER_REPS times (default 2): crash (LiteFS and
// its app SIGKILLed), orphan (LiteFS alone SIGKILLed), SIGTERM, a pause past the
// lease TTL, and a partition from Consul. Every request and Consul's lease
// holder are recorded and checked afterwards (test/helpers/failover-history.ts);
// the checker's table is printed per fault kind. Asserted: 0 doubled, 0
// acknowledgements by a node without the lease, 0 stale own-reads of surviving
// writes, every answer within the bound. Lost acknowledged writes are printed,
// not asserted (asynchronous replication loses what a crashed primary had not
// sent). Run by `npm run test:litefs`; about 10 minutes.
import t from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { request } from 'undici'
import { startConsulCluster, type ConsulCluster, type ConsulNode, type NodeApp, type Balancer } from '../../lib/testing/litefs-cluster.js'
import { checkHistory, formatReports, now, type History, type Report } from '../helpers/failover-history.js'
import { APP_PORT, LOCK_DELAY, appLogs, startApps, type Variant } from './failover/apps.js'
import { pollLease, startClients } from './failover/load.js'
import { leavesNothingBehind } from './leftovers.js'

const REPS = Number(process.env.LITEFS_FAILOVER_REPS ?? 2)
// To look at one case: LITEFS_FAILOVER_FAULTS=sigterm,crash LITEFS_FAILOVER_VARIANTS=serve (default: all).
const only = (name: string): string[] | undefined => process.env[name]?.split(',').map(s => s.trim()).filter(Boolean)
const CLIENTS = 10
const DB = 'app.db'
const TTL_MS = 10_000
const PAUSE_MS = TTL_MS + 5_000
// LITEFS_FAILOVER_PARTITION_MS=200000 runs the long partition (a replica takes the lease after ~147 s) by hand.
const PARTITION_MS = Number(process.env.LITEFS_FAILOVER_PARTITION_MS ?? 25_000)
// The longest an answer may take: a write held for a primary (primaryRedirectTimeout,
// 30 s) that reached a node paused for PAUSE_MS first, plus 5 s to be sent.
const BOUND_MS = 30_000 + PAUSE_MS + 5_000
const FAULTS = ['crash', 'orphan', 'sigterm', 'pause', 'partition'] as const
type Fault = typeof FAULTS[number]

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Assertions that fail today for want of issue 19 item 5 (the lease fence, no
 * success for an unconfirmed commit, a forwarded write on a demoted node going
 * on to the new primary), which is being built separately. Only these are
 * marked todo; everything else must pass. Keyed `${variant} ${fault} ${property}`.
 */
const AWAITING_FIXES: Record<string, string> = {}
const todo = (key: string): { todo?: string } => AWAITING_FIXES[key] === undefined ? {} : { todo: `issue 19 fence: ${AWAITING_FIXES[key]}` }

interface Setup { cluster: ConsulCluster, balancer: Balancer, apps: Map<ConsulNode, NodeApp[]>, variant: Variant }

async function until (what: () => string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what()}`)
    await sleep(100)
  }
}

/** Every node's LiteFS running and its apps up and answering. */
async function restore (s: Setup): Promise<void> {
  for (const node of s.cluster.nodes) {
    if (!node.running) await node.start()
    const apps = s.apps.get(node)
    if (apps === undefined || !apps.every(a => a.running)) {
      for (const a of apps ?? []) await a.stop()
      s.apps.set(node, startApps(s.cluster, node, s.variant))
    }
  }
  for (const node of s.cluster.nodes) {
    await until(() => `${node.hostname}'s app answers (its log: ${[...appLogs].filter(([k]) => k.startsWith(node.hostname)).map(([k, l]) => `${k}: ${l.slice(-5).join(' | ')}`).join('; ')})`, async () => {
      const res = await request(`http://${node.ip}:${APP_PORT}/litefs/health`, { dispatcher: s.cluster.dispatcher, headersTimeout: 2_000, bodyTimeout: 2_000 })
      await res.body.dump()
      return res.statusCode === 200
    }, 60_000)
  }
}

/** Makes `fault` on `primary` and brings the cluster back to three running nodes. */
async function makeFault (s: Setup, primary: ConsulNode, fault: Fault): Promise<void> {
  switch (fault) {
    case 'crash': await primary.crash(); break
    case 'orphan': await primary.kill(); break
    case 'sigterm': await primary.stop(); break
    case 'pause': await primary.pause(); await sleep(PAUSE_MS); primary.resume(); break
    case 'partition': primary.partition({ consul: true }); await sleep(PARTITION_MS); primary.heal(); break
  }
  // Whatever the fault, some node must take (or keep) the lease and acknowledge writes.
  await s.cluster.waitForPrimary({ timeoutMs: 90_000 })
  // LiteFS may have exited on its own after a pause or a partition ("lost write access").
  await sleep(3_000)
  await restore(s)
}

async function trial (s: Setup, fault: Fault): Promise<Report> {
  const primary = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
  const history: History = { requests: [], lease: [], faults: [] }
  // The lease is polled from before the first request to after the last, so the checker can bracket every one.
  const poller = pollLease(s.cluster, history.lease)
  await sleep(300)
  const clients = startClients(s.balancer.url, CLIENTS, BOUND_MS + 10_000, history.requests)
  await sleep(2_000)
  history.faults.push({ at: now(), kind: fault, node: primary.hostname })
  await makeFault(s, primary, fault)
  await sleep(2_000)
  await clients.stop()
  await sleep(300)
  await poller.stop()
  const survivor = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
  await s.cluster.waitReplicated(DB, survivor, 60_000)
  const db = new Database(join(survivor.mount, DB), { readonly: true, fileMustExist: true })
  const rows = db.prepare('SELECT token, count(*) AS n FROM tokens GROUP BY token').all() as Array<{ token: string, n: number }>
  db.close()
  return checkHistory(history, new Map(rows.map(r => [r.token, r.n])), BOUND_MS)
}

for (const variant of (['plugin', 'serve'] as const).filter(v => only('LITEFS_FAILOVER_VARIANTS')?.includes(v) ?? true)) {
  t.test(`failover with a Consul lease: ${variant}`, async t => {
    appLogs.clear()
    const cluster = await startConsulCluster({ nodes: 3, netns: true, ttl: `${TTL_MS / 1000}s`, lockDelay: LOCK_DELAY, readyTimeout: 60_000 })
    t.teardown(() => cluster.close())
    const primary = await cluster.waitForPrimary()
    const db = new Database(join(primary.mount, DB))
    db.pragma('journal_mode = WAL')
    db.exec('CREATE TABLE tokens (id INTEGER PRIMARY KEY, token TEXT NOT NULL)')
    db.close()
    await cluster.waitReplicated(DB, primary)
    const s: Setup = { cluster, balancer: await cluster.startBalancer(APP_PORT), apps: new Map(), variant }
    await restore(s)

    for (const fault of FAULTS.filter(f => only('LITEFS_FAILOVER_FAULTS')?.includes(f) ?? true)) {
      const rows: Array<{ label: string, report: Report }> = []
      for (let rep = 1; rep <= REPS; rep++) {
        const started = Date.now()
        const report = await trial(s, fault)
        rows.push({ label: `#${rep} ${Math.round((Date.now() - started) / 1000)}s`, report })
      }
      t.comment(formatReports(`${variant} / ${fault} (bound ${BOUND_MS} ms; failover = fault → first ack by another node)`, rows))
      const sum = (f: (r: Report) => number): number => rows.reduce((n, { report }) => n + f(report), 0)
      t.ok(sum(r => r.acked) > 0, `${variant} ${fault}: writes were acknowledged`)
      t.equal(sum(r => r.doubled.length), 0, `${variant} ${fault}: no write doubled`, todo(`${variant} ${fault} doubled`))
      t.equal(sum(r => r.splitBrain.length), 0, `${variant} ${fault}: no acknowledgement by a node without the lease`, todo(`${variant} ${fault} split-brain`))
      t.equal(sum(r => r.staleOwnReads.length), 0, `${variant} ${fault}: no stale own-read of a surviving write`, todo(`${variant} ${fault} stale`))
      t.equal(sum(r => r.outsideBound.length), 0, `${variant} ${fault}: every request answered within ${BOUND_MS} ms`, todo(`${variant} ${fault} bound`))
      t.comment(`${variant} ${fault}: lost acknowledged writes (printed, not asserted): ${rows.map(r => r.report.lost.length).join(', ')}`)
    }
    for (const [name, lines] of appLogs) if (lines.some(l => l.startsWith('[exited'))) t.comment(`${name}'s last lines:\n${lines.slice(-15).join('\n')}`)
  })
}

leavesNothingBehind(t)
