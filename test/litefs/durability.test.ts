// `durability` on real LiteFS v0.5.14 with a Consul v1.14.11 lease (issue 21):
// 3 candidates, each in its own network namespace, the Fastify app with
// litefs-proxy in-process on every node (failover/plugin-app.mjs), durability
// on for /durable/* alone. Concurrent clients through a non-sticky balancer
// write unique tokens: half to /durable/tokens, half to /tokens (durability
// off), in the same run, against the same primaries. Every request and
// Consul's lease holder are recorded and checked afterwards
// (test/helpers/failover-history.ts), per group.
//
// Phases, one cluster:
//   crashes     LITEFS_DURABILITY_CRASHES (default 10) crashes of the primary,
//               LiteFS and its app SIGKILLed together, each node brought back;
//   lag         5 more crashes with the replication stream delayed by LAG_MS
//               (failover/lag-relay.mjs: peers reach each node's LiteFS through
//               a relay in its namespace), as across regions: writes the
//               primary acknowledged are still on the wire when it dies;
//   down        one candidate down for the whole phase, 2 primary crashes;
//   partition   a candidate cut off from the primary (not from Consul) for 15 s,
//               then the primary crashed once it is back;
//   pause       the primary SIGSTOPped past its lease TTL, then resumed.
// Then the same cluster with `litefs-proxy serve` in front of the small Python
// app on every node (failover/small-app.py; --peer-secret, --durable-path):
// 5 crashes, and 5 under the replication lag.
// Asserted, for the durable group: 0 acknowledged writes lost, every answer
// within the bound; for everything: 0 doubled. The plain group's losses are
// printed (what asynchronous replication loses), not asserted, except in the
// lag phase, where some must be lost for the injected lag to count as real.
// Run by `npm run test:litefs`; about 11 minutes.
// The steady phase prints the cost: acknowledged writes per second and their
// p50/p99 latency, durable vs plain, under the same load, and a replica's lag.
import t from 'tap'
import Database from 'better-sqlite3'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { startConsulCluster, type ConsulCluster, type ConsulNode, type NodeApp, type Balancer } from '../../lib/testing/litefs-cluster.js'
import { checkHistory, formatReports, now, type History, type Report } from '../helpers/failover-history.js'
import { APP_PORT, LOCK_DELAY, appLogs, startApps, type Variant } from './failover/apps.js'
import { pollLease, startClients } from './failover/load.js'
import { leavesNothingBehind } from './leftovers.js'

const CRASHES = Number(process.env.LITEFS_DURABILITY_CRASHES ?? 10)
const SERVE_CRASHES = 5
const CLIENTS = 5 // per group
const DB = 'app.db'
const TTL_MS = 10_000
const DURABILITY_TIMEOUT_MS = 5_000
const PAUSE_MS = TTL_MS + 5_000
const PARTITION_MS = 15_000
const STEADY_MS = 15_000
const LAG_MS = 500
const LAG_CRASHES = 5
/** Where each node's lag relay listens (in its namespace, beside LiteFS's API on 20202). */
const LAG_PORT = 20203
const LAG_RELAY = fileURLToPath(new URL('failover/lag-relay.mjs', import.meta.url))
const OPTIONS = {
  durability: ['/durable/*'],
  durabilityTimeout: DURABILITY_TIMEOUT_MS,
  peerSecret: 'the-durability-suite-peer-secret'
}
// The longest an answer may take: a write held for a primary (primaryRedirectTimeout,
// 30 s) that reached a node paused for PAUSE_MS first, then its wait for the candidates, plus 5 s to be sent.
const BOUND_MS = 30_000 + PAUSE_MS + DURABILITY_TIMEOUT_MS + 5_000

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

interface Setup { cluster: ConsulCluster, balancer: Balancer, apps: Map<ConsulNode, NodeApp[]>, down: Set<ConsulNode>, variant: Variant }

/** The file every lag relay reads its delay from. */
const LAG_FILE = join(tmpdir(), `litefs-proxy-lag-${process.pid}`)
/** The delay every lag relay puts on what LiteFS sends its peers, from now on. */
function setLag (ms: number): void { writeFileSync(LAG_FILE, String(ms)) }
const relays = new Map<ConsulNode, NodeApp>()
/** Before each start of a node's LiteFS: its lag relay, unless still running (a crash or stopApps() ends it with the node's apps). */
function startRelay (node: ConsulNode): void {
  if (relays.get(node)?.running === true) return
  relays.set(node, node.spawnApp(process.execPath, [LAG_RELAY], {
    env: { LISTEN: `${node.ip}:${LAG_PORT}`, TARGET: new URL(node.apiUrl).host, LAG_FILE }
  }))
}

async function until (what: string | (() => string), cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${typeof what === 'string' ? what : what()}`)
    await sleep(100)
  }
}

async function health (s: Setup, node: ConsulNode): Promise<any> {
  const res = await request(`http://${node.ip}:${APP_PORT}/litefs/health`, { dispatcher: s.cluster.dispatcher, headersTimeout: 2_000, bodyTimeout: 2_000 })
  return { ...(await res.body.json() as object), code: res.statusCode }
}

/** Every node not kept down running, its app up, and every such candidate reporting to the primary. */
async function restore (s: Setup): Promise<void> {
  for (const node of s.cluster.nodes) {
    if (s.down.has(node)) continue
    if (!node.running) await node.start()
    const apps = s.apps.get(node)
    if (apps === undefined || !apps.every(a => a.running)) {
      for (const a of apps ?? []) await a.stop()
      s.apps.set(node, startApps(s.cluster, node, s.variant, { ...OPTIONS, peerName: node.hostname }, [
        '--peer-secret', OPTIONS.peerSecret, '--peer-name', node.hostname,
        '--durable-path', '/durable/*', '--durability-timeout', `${DURABILITY_TIMEOUT_MS}ms`
      ]))
    }
  }
  const up = s.cluster.nodes.filter(n => !s.down.has(n))
  const logs = (node: ConsulNode) => (): string => `${node.hostname}'s app answers (its log: ${[...appLogs].filter(([k]) => k.startsWith(node.hostname)).map(([k, l]) => `${k}: ${l.slice(-5).join(' | ')}`).join('; ')})`
  for (const node of up) await until(logs(node), async () => (await health(s, node)).code === 200, 60_000)
  const primary = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
  // The primary's table lists every other running node as a connected candidate.
  await until(`${primary.hostname} sees its peers report`, async () => {
    const peers = (await health(s, primary)).peers as Array<{ hostname: string, connected: boolean }> | undefined
    return up.every(n => n === primary || peers?.some(p => p.hostname === n.hostname && p.connected) === true)
  }, 30_000)
}

interface Phase { label: string, run: (s: Setup) => Promise<void> }

async function crashPrimary (s: Setup): Promise<ConsulNode> {
  const primary = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
  await primary.crash()
  await s.cluster.waitForPrimary({ not: primary, timeoutMs: 90_000 })
  return primary
}

/** `n` crashes of the primary, each node brought back after. */
const crashes = (n: number): Phase => ({
  label: `crashes ×${n}`,
  run: async s => {
    for (let i = 0; i < n; i++) {
      await crashPrimary(s)
      await sleep(1_000)
      await restore(s)
      await sleep(2_000)
    }
  }
})

/** `n` crashes with LiteFS's stream to its peers delayed LAG_MS. */
const lagCrashes = (n: number): Phase => ({
  label: `replication lag ${LAG_MS} ms, crashes ×${n}`,
  run: async s => {
    setLag(LAG_MS)
    try {
      for (let i = 0; i < n; i++) {
        await sleep(3_000) // writes acknowledged under the lag, the newest still on the wire
        await crashPrimary(s)
        await sleep(1_000)
        await restore(s)
      }
    } finally {
      setLag(0)
    }
  }
})

/** `serve` (the sidecar in front of the Python app) gets the crash series too, shorter. */
const SERVE_PHASES: Phase[] = [crashes(SERVE_CRASHES), lagCrashes(LAG_CRASHES)]

const PHASES: Phase[] = [
  {
    // The cost, without faults: the same load on both groups (printed: durable vs plain write latency and rate).
    label: 'steady, no fault',
    run: async () => { await sleep(STEADY_MS) }
  },
  crashes(CRASHES),
  lagCrashes(LAG_CRASHES),
  {
    label: 'a candidate down, crashes ×2',
    run: async s => {
      const primary = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
      const down = s.cluster.nodes.find(n => n !== primary) as ConsulNode
      s.down.add(down)
      await down.stopApps()
      await down.stop()
      await sleep(3_000)
      for (let i = 0; i < 2; i++) {
        await crashPrimary(s)
        await sleep(1_000)
        await restore(s)
        await sleep(2_000)
      }
      s.down.delete(down)
      await restore(s)
    }
  },
  {
    label: 'a candidate partitioned from the primary, then a crash',
    run: async s => {
      const primary = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
      const cut = s.cluster.nodes.find(n => n !== primary) as ConsulNode
      cut.partition({ consul: false, peers: [primary.index] })
      await sleep(PARTITION_MS)
      cut.heal()
      await restore(s)
      await sleep(2_000)
      await crashPrimary(s)
      await sleep(1_000)
      await restore(s)
    }
  },
  {
    label: 'the primary paused past its lease',
    run: async s => {
      const primary = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
      await primary.pause()
      await sleep(PAUSE_MS)
      primary.resume()
      await s.cluster.waitForPrimary({ timeoutMs: 90_000 })
      // LiteFS may exit on its own after a pause ("lost write access").
      await sleep(3_000)
      await restore(s)
    }
  }
]

async function phase (s: Setup, p: Phase): Promise<{ durable: Report, plain: Report, seconds: number, maxDurableMs: number, cost: string }> {
  const started = Date.now()
  const durable: History = { requests: [], lease: [], faults: [] }
  const plain: History = { requests: [], lease: [], faults: [] }
  const poller = pollLease(s.cluster, durable.lease)
  await sleep(300)
  const clients = [
    startClients(s.balancer.url + '/durable', CLIENTS, BOUND_MS + 10_000, durable.requests),
    startClients(s.balancer.url, CLIENTS, BOUND_MS + 10_000, plain.requests)
  ]
  await sleep(2_000)
  // Faults are marked where they happen: each crash of the phase is a primary that stops answering.
  const mark = (kind: string, node: string): void => { for (const h of [durable, plain]) h.faults.push({ at: now(), kind, node }) }
  mark(p.label, (await s.cluster.waitForPrimary({ timeoutMs: 60_000 })).hostname)
  await p.run(s)
  await sleep(2_000)
  await Promise.all(clients.map(c => c.stop()))
  await sleep(300)
  await poller.stop()
  plain.lease = durable.lease
  const survivor = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
  await s.cluster.waitReplicated(DB, survivor, 60_000)
  const db = new Database(join(survivor.mount, DB), { readonly: true, fileMustExist: true })
  const rows = db.prepare('SELECT token, count(*) AS n FROM tokens GROUP BY token').all() as Array<{ token: string, n: number }>
  db.close()
  const final = new Map(rows.map(r => [r.token, r.n]))
  const maxDurableMs = Math.max(0, ...durable.requests.filter(r => r.kind === 'write' && r.status !== undefined).map(r => r.end - r.start))
  return { durable: checkHistory(durable, final, BOUND_MS), plain: checkHistory(plain, final, BOUND_MS), seconds: Math.round((Date.now() - started) / 1000), maxDurableMs, cost: `durable ${cost(durable)}; plain ${cost(plain)}` }
}

/** Acknowledged writes per second and their latency (p50/p99 ms), for the printed cost line. */
function cost (h: History): string {
  const acked = h.requests.filter(r => r.kind === 'write' && r.status !== undefined && r.status < 300)
  const ms = acked.map(r => r.end - r.start).sort((a, b) => a - b)
  const span = (Math.max(...acked.map(r => r.end)) - Math.min(...acked.map(r => r.start))) / 1000
  const q = (p: number): string => (ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? NaN).toFixed(1)
  return `${(acked.length / span).toFixed(0)} acked writes/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`
}

t.test('durability with a Consul lease: acknowledged means on every candidate', async t => {
  appLogs.clear()
  setLag(0)
  t.teardown(() => rmSync(LAG_FILE, { force: true }))
  const cluster = await startConsulCluster({
    nodes: 3,
    netns: true,
    ttl: `${TTL_MS / 1000}s`,
    lockDelay: LOCK_DELAY,
    readyTimeout: 60_000,
    // Peers replicate through each node's lag relay (started by restore()).
    advertiseUrl: node => `http://${new URL(node.apiUrl).hostname}:${LAG_PORT}`,
    beforeStart: startRelay
  })
  t.teardown(() => cluster.close())
  const primary = await cluster.waitForPrimary()
  const db = new Database(join(primary.mount, DB))
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE tokens (id INTEGER PRIMARY KEY, token TEXT NOT NULL)')
  db.close()
  await cluster.waitReplicated(DB, primary)
  const s: Setup = { cluster, balancer: await cluster.startBalancer(APP_PORT), apps: new Map(), down: new Set(), variant: 'plugin' }

  const rows: Array<{ label: string, report: Report }> = []
  const summary: string[] = ['phase                                                   s    acked on/off   lost on/off   doubled   500 not-replicated   max durable answer ms']
  // The plugin's series, then serve's; LITEFS_DURABILITY_VARIANTS / _PHASES pick (names or words of labels).
  const series: Array<[Variant, Phase[]]> = [['plugin', PHASES], ['serve', SERVE_PHASES]]
  const picked = (variant: Variant, p: Phase): boolean =>
    (process.env.LITEFS_DURABILITY_VARIANTS?.split(',').includes(variant) ?? true) &&
    (process.env.LITEFS_DURABILITY_PHASES?.split(',').some(w => p.label.includes(w)) ?? true)
  const runs = series.flatMap(([variant, phases]) => phases.filter(p => picked(variant, p)).map(p => ({ variant, p: { ...p, label: `${variant}: ${p.label}` } })))
  for (const { variant, p } of runs) {
    if (s.variant !== variant || s.apps.size === 0) {
      // Another variant's apps: all of them replaced, on every node.
      for (const apps of s.apps.values()) for (const a of apps) await a.stop()
      s.apps.clear()
      s.variant = variant
      await restore(s)
    }
    const r = await phase(s, p)
    rows.push({ label: `${p.label} durable`, report: r.durable }, { label: `${p.label} plain`, report: r.plain })
    summary.push(`${p.label.padEnd(55)} ${String(r.seconds).padStart(4)}   ${`${r.durable.acked}/${r.plain.acked}`.padStart(12)}   ${`${r.durable.lost.length}/${r.plain.lost.length}`.padStart(11)}   ${String(r.durable.doubled.length).padStart(7)}   ${String(r.durable.statuses['500/LITEFS_NOT_REPLICATED'] ?? 0).padStart(18)}   ${Math.round(r.maxDurableMs)}`)
    t.ok(r.durable.acked > 0, `${p.label}: durable writes were acknowledged`)
    t.equal(r.durable.lost.length, 0, `${p.label}: no acknowledged durable write lost`, { lost: r.durable.lost.slice(0, 10) })
    t.equal(r.durable.doubled.length, 0, `${p.label}: no write doubled`)
    t.equal(r.durable.outsideBound.length, 0, `${p.label}: every durable request answered within ${BOUND_MS} ms`)
    t.equal(r.durable.staleOwnReads.length, 0, `${p.label}: no stale own-read of a durable write`)
    if (p.label.includes('steady')) {
      const current = await s.cluster.waitForPrimary({ timeoutMs: 60_000 })
      const replica = s.cluster.nodes.find(n => n !== current && !s.down.has(n)) as ConsulNode
      t.comment(`cost (${CLIENTS} clients per group, through the balancer, write + read-back loops): ${r.cost}; a replica's lag now: ${String((await health(s, replica)).lag)} ms`)
    }
    if (p.label.includes('replication lag')) {
      // The fault must be real for its zero to mean anything: the same crashes lost plain writes.
      t.ok(r.plain.lost.length > 0, `${p.label}: the injected lag made asynchronous replication lose acknowledged plain writes (${r.plain.lost.length} of ${r.plain.acked})`)
    } else {
      t.comment(`${p.label}: plain writes acknowledged and lost (printed, not asserted): ${r.plain.lost.length} of ${r.plain.acked}`)
    }
  }
  t.comment(formatReports(`durability (bound ${BOUND_MS} ms)`, rows))
  t.comment(summary.join('\n'))
  for (const [name, lines] of appLogs) if (lines.some(l => l.startsWith('[exited'))) t.comment(`${name}'s last lines:\n${lines.slice(-10).join('\n')}`)
})

leavesNothingBehind(t)
