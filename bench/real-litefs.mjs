// The real-LiteFS section of `npm run bench`: the same trivial app reached four
// ways on a real LiteFS cluster (two nodes on loopback, static lease, FUSE),
// in alternating rounds within one run:
//   bare      the app (bench/server.mjs, Fastify) reached directly on the node
//   plugin    the same app with litefs-proxy's Fastify plugin (in-process)
//   litefs    LiteFS's built-in proxy (its proxy: section) in front of the bare app
//   sidecar   `litefs-proxy serve` (the built CLI) in front of the bare app
//   nginx     (read rows) nginx proxy_pass with upstream keep-alive in front of the
//             bare app, no consistency at all: the floor a sidecar hop can reach here
//   nodehop   (L1–L3) bench/node-hop.mjs in front of the bare app: node:http's server
//             and undici's dispatcher, as serve, and nothing else (no consistency):
//             the floor of a hop written in Node, so serve's rows show what is
//             litefs-proxy's and what is Node's
//   pipehop   (L1–L3) bench/pipe-hop.mjs: each client connection paired with one to the
//             bare app, bytes piped, no HTTP parsed: the floor of any hop in a Node process
//   headhop   (L1–L3) bench/head-hop.mjs, a prototype: paired connections as pipehop, every
//             head parsed in JS, bytes relayed: what a serve hop below node:http and undici
//             could cost
// Scenarios (ids for `node bench/index.mjs L1 L3 …`; `litefs` runs them all):
//   L1 read on the replica, no cookie
//   L2 read on the replica whose cookie is already satisfied
//   L3 write on the primary that commits nothing: the cookie's cost on FUSE alone
//   L4 write on the primary that inserts a row (better-sqlite3, through the mount)
//   L5 the L4 write landing on the replica: ours forward it to the primary;
//      LiteFS's proxy off Fly.io answers with a fly-replay header. Rows on the
//      primary are counted around every run: what was applied, not what was answered.
//   L6 Express and node:http writes on the primary (commit nothing), bare vs with
//      litefs-proxy: the other adapters' cookie cost on FUSE
//   L7 durability's cost (issue 21), on a cluster of its own: 3 candidates with a
//      Consul lease on loopback, the L4 insert on the primary's in-process app
//      with `durability` on vs off, the replicas' apps reporting their positions
//      to it. Needs the consul binary (scripts/install-consul.sh) too.
//   L8 L3 with 3 databases tracked vs 1 (issue 22.1): the in-process write that
//      commits nothing on a mount holding app.db, cache.db and queue.db, with
//      `db: 'app.db'` and with `db: ['app.db', 'cache.db', 'queue.db']` (the
//      token names all three: one batch of three -pos reads on the thread pool)
// Needs the litefs binary and FUSE (root); otherwise the section says why and
// is skipped. Server CPU per request counts every process a request touches,
// both LiteFS processes included (they serve the FUSE reads and run LiteFS's
// proxy): from process.cpuUsage() for our Node children, /proc/<pid>/stat for
// LiteFS and the sidecars.
import { execFileSync, spawn } from 'node:child_process'
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { nginxBinary, writeNginxConf } from './nginx.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))

export const IDS = ['L1', 'L2', 'L3', 'L4', 'L5', 'L6', 'L7', 'L8']
// Shorter than the fake-LiteFS sections' runs, so the section stays near 3 minutes:
// BENCH_LITEFS_DURATION seconds per run, BENCH_LITEFS_ROUNDS rounds per scenario.
const DURATION = Number(process.env.BENCH_LITEFS_DURATION ?? 1.25)
const ROUNDS = Number(process.env.BENCH_LITEFS_ROUNDS ?? 3)
const FIRST_WARMUP = 1
const WARMUP = 0.5
// An insert's fsyncs and FUSE writes run in kernel threads that no process of
// ours is charged for: in L4/L5 they show as 0.15–0.3 cores of "other work" in
// every round (0.0 for the same scenario's fly-replay way, which inserts nothing).
// Those rounds are not contended by others, so the limit is raised for them.
const INSERT_BUSY_SLACK = 0.3
const DB = 'app.db'
const WAYS = {
  bare: 'bare app',
  plugin: 'in-process (Fastify plugin)',
  litefs: "LiteFS's proxy",
  sidecar: 'litefs-proxy serve',
  nginx: 'nginx proxy_pass (keep-alive, no consistency)',
  nodehop: 'a bare Node hop (node:http + undici, no consistency)',
  pipehop: 'bytes piped by Node (no HTTP parsed, no consistency)',
  headhop: 'a prototype: heads parsed in JS, bytes relayed (no consistency)'
}

/** `count` distinct free ports on 127.0.0.1 (all held at once, then released). */
async function freePorts (count) {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => resolve(s))
  })))
  const ports = servers.map(s => s.address().port)
  await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
  return ports
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const fmt3 = x => x.toFixed(3)
const hex16 = n => n.toString(16).padStart(16, '0')

/**
 * Runs the section. `ctx` is the bench's machinery (bench/index.mjs): the load
 * generator, startServer, run, quiet, log, settings. Returns what goes to
 * results.litefs: `{ skipped }` or `{ meta, scenarios, targets, notes }`.
 */
export async function realLitefs (ctx, ids) {
  const { log, load, round, median } = ctx
  const { findLitefs, fuseProblem, startLitefsCluster, findConsul, startConsulCluster } = await import(pathToFileURL(join(ctx.dist, 'testing', 'litefs-cluster.js')).href)
  const missing = []
  const binary = findLitefs()
  if (binary === undefined) missing.push('no litefs binary (scripts/install-litefs.sh, or LITEFS_BIN)')
  else {
    try { accessSync(binary, constants.X_OK) } catch { missing.push(`${binary} is not an executable (LITEFS_BIN?)`) }
  }
  const fuse = fuseProblem()
  if (fuse !== undefined) missing.push(fuse)
  if (missing.length > 0) {
    log(`real LiteFS: SKIPPED — ${missing.join('; ')}`)
    return { skipped: missing.join('; ') }
  }
  let version = 'unknown'
  try { version = execFileSync(binary, ['version'], { encoding: 'utf8', timeout: 5000 }).trim() } catch {}
  log(`real LiteFS: ${binary} (${version}); 2 nodes on loopback, static lease`)

  const HZ = ctx.hz
  /** CPU of a process we did not fork with IPC (LiteFS, a sidecar), as bench/server.mjs reports its own. */
  const external = (pid, name) => ({
    name,
    pid,
    call: cpuCall(name, pid, HZ)
  })

  const [bare0, bare1, lf0, lf1, sc0, sc1, ngx1, hop0, hop1, pipe0, pipe1, head0, head1] = await freePorts(13)
  const barePorts = [bare0, bare1]
  const litefsPorts = [lf0, lf1]
  const sidecarPorts = [sc0, sc1]
  const started = [] // app servers and sidecars: all closed before the cluster
  const wanted = id => ids.size === 0 || ids.has(id)
  const POST = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hello"}' }
  const lines = []
  let cluster
  let litefsProcs // LiteFS's processes, once the cluster runs
  const section = {
    meta: { binary, version, nodes: 2, durationPerRunS: DURATION, rounds: ROUNDS, connections: ctx.connections },
    scenarios: [],
    targets: [],
    notes: []
  }
  try {
    cluster = await startLitefsCluster({
      nodes: 2,
      binary,
      proxy: node => ({ addr: `127.0.0.1:${litefsPorts[node.index]}`, target: `127.0.0.1:${barePorts[node.index]}`, db: DB }),
      log: (host, line) => { lines.push(`${host}: ${line}`); if (lines.length > 400) lines.shift() }
    })
    const [primary, replica] = cluster.nodes
    litefsProcs = cluster.nodes.map(n => external(n.pid, `litefs ${n.hostname}`))

    // The schema, once, through the primary's mount (WAL, as apps on LiteFS use).
    const { default: Database } = await import('better-sqlite3')
    const schema = new Database(join(primary.mount, DB))
    schema.pragma('journal_mode = WAL')
    schema.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT NOT NULL)')
    schema.close()
    await cluster.waitReplicated(DB)

    // --- The apps: per node, bare and in-process (Fastify), and a sidecar ---
    const track = async p => { const s = await p; started.push(s); return s }
    const bare = []
    for (const node of cluster.nodes) {
      bare.push(await track(ctx.startServer({ framework: 'fastify', plugin: false, port: barePorts[node.index], sqlite: join(node.mount, DB) })))
    }
    const pluginOpts = node => ({ db: DB, mount: node.mount, api: node.apiUrl, forward: 'http' })
    const plugin = []
    plugin[0] = await track(ctx.startServer({ framework: 'fastify', plugin: true, litefs: pluginOpts(primary), sqlite: join(primary.mount, DB) }))
    plugin[1] = await track(ctx.startServer({ framework: 'fastify', plugin: true, litefs: pluginOpts(replica), sqlite: join(replica.mount, DB), primaryOrigin: plugin[0].url }))
    await ready(plugin[0], 'primary')
    await ready(plugin[1], 'replica')

    const cli = join(ctx.dist, 'cli', 'main.js')
    const primaryUrls = cluster.nodes.map((n, i) => `${n.hostname}=http://127.0.0.1:${sidecarPorts[i]}`).join(',')
    const sidecar = []
    for (const node of cluster.nodes) {
      const i = node.index
      sidecar.push(await track(startSidecar(ctx, cli, `serve@${node.hostname}`, [
        '--addr', `127.0.0.1:${sidecarPorts[i]}`, '--target', `127.0.0.1:${barePorts[i]}`, '--db', DB,
        '--mount', node.mount, '--api', node.apiUrl, '--primary-url', primaryUrls, '--log-level', 'warn'
      ])))
    }
    for (const [i, s] of sidecar.entries()) await healthy(s.url, i === 0 ? 'primary' : 'replica')

    // nginx in front of the replica's bare app, for the read rows.
    const nginx = await track(startNginx(ctx, ngx1, barePorts[1]))
    // The bare Node hop in front of each node's bare app (the read rows and L3).
    const nodeHop = [await track(startNodeHop(ctx, 'node-hop.mjs', hop0, barePorts[0])), await track(startNodeHop(ctx, 'node-hop.mjs', hop1, barePorts[1]))]
    const pipeHop = [await track(startNodeHop(ctx, 'pipe-hop.mjs', pipe0, barePorts[0])), await track(startNodeHop(ctx, 'pipe-hop.mjs', pipe1, barePorts[1]))]
    const headHop = [await track(startNodeHop(ctx, 'head-hop.mjs', head0, barePorts[0])), await track(startNodeHop(ctx, 'head-hop.mjs', head1, barePorts[1]))]

    const litefsUrl = i => ({ url: `http://127.0.0.1:${litefsPorts[i]}`, port: litefsPorts[i] })
    // `app`: the bare app behind a proxy, whose accepted connections are counted.
    const way = (key, target, cpuOf, label = WAYS[key], app) => ({ key, label, url: target.url, port: target.port ?? Number(new URL(target.url).port), cpuOf: [...cpuOf, ...litefsProcs], app })
    const fourWays = i => [
      way('bare', bare[i], [bare[i]]),
      way('plugin', plugin[i], [plugin[i]]),
      way('litefs', litefsUrl(i), [bare[i]], WAYS.litefs, bare[i]),
      way('sidecar', sidecar[i], [sidecar[i], bare[i]], WAYS.sidecar, bare[i])
    ]
    const hopWays = i => [
      way('nodehop', nodeHop[i], [nodeHop[i], bare[i]], WAYS.nodehop, bare[i]),
      way('pipehop', pipeHop[i], [pipeHop[i], bare[i]], WAYS.pipehop, bare[i]),
      way('headhop', headHop[i], [headHop[i], bare[i]], WAYS.headhop, bare[i])
    ]
    const readWays = i => [...fourWays(i), way('nginx', nginx, [nginx, bare[i]], WAYS.nginx, bare[i]), ...hopWays(i)]
    const count = async () => (await (await fetch(`${bare[0].url}/__count`)).json()).n

    // --- Scenarios ---
    if (wanted('L1')) {
      section.scenarios.push(await scenario(ctx, {
        id: 'L1', name: 'Read on the replica, no cookie', node: replica.hostname, load: { path: '/items' }, ways: readWays(1)
      }))
    }
    if (wanted('L2')) {
      const txid = replica.position(DB)
      // Both cookie names (ours, and LiteFS's proxy's and the sidecar's): the same bytes for every way.
      const cookie = `__txid=${hex16(txid)}; litefs-txid=${hex16(txid)}`
      section.scenarios.push(await scenario(ctx, {
        id: 'L2', name: 'Read on the replica, cookie already satisfied', node: replica.hostname, load: { path: '/items', headers: { cookie } }, ways: readWays(1), cookieTxid: String(txid)
      }))
    }
    if (wanted('L3')) {
      section.scenarios.push(await scenario(ctx, {
        id: 'L3', name: 'Write on the primary, commits nothing (the cookie alone)', node: primary.hostname, load: { ...POST, path: '/items' }, ways: [...fourWays(0), ...hopWays(0)]
      }))
    }
    if (wanted('L4')) {
      section.scenarios.push(await scenario(ctx, {
        id: 'L4', name: 'Write on the primary, inserts a row', node: primary.hostname, load: { ...POST, path: '/insert' }, ways: fourWays(0), count
      }))
    }
    if (wanted('L5')) {
      // The baseline is the same write sent straight to the primary: what the
      // client would have got had the balancer picked the primary.
      const ways = [
        way('bare', bare[0], [bare[0]], 'bare app on the primary (the write sent there directly)'),
        way('plugin', plugin[1], [plugin[1], plugin[0]], 'in-process: replica forwards to the primary'),
        way('litefs', litefsUrl(1), [bare[1]], "LiteFS's proxy on the replica"),
        way('sidecar', sidecar[1], [sidecar[1], sidecar[0], bare[0]], 'litefs-proxy serve: replica forwards to the primary', bare[0]),
        way('plugin-direct', plugin[0], [plugin[0]], 'in-process on the primary (sent there directly)'),
        way('sidecar-direct', sidecar[0], [sidecar[0], bare[0]], 'litefs-proxy serve on the primary (sent there directly)', bare[0])
      ]
      const row = await scenario(ctx, {
        id: 'L5', name: 'Write landing on the replica, inserts a row', node: replica.hostname, load: { ...POST, path: '/insert' }, ways, count,
        paced: [['plugin', 'plugin-direct'], ['sidecar', 'sidecar-direct']]
      })
      // What a bare app on a replica gets: LiteFS's replicas are read-only.
      let bareReplica
      const db = new Database(join(replica.mount, DB), { fileMustExist: true })
      try {
        db.prepare('INSERT INTO items (text) VALUES (?)').run('bare replica')
        bareReplica = 'the insert succeeded (unexpected: a LiteFS replica is read-only)'
      } catch (err) {
        bareReplica = `${err.code}: ${err.message}`
      } finally {
        db.close()
      }
      row.bareOnReplica = bareReplica
      section.scenarios.push(row)
    }
    if (wanted('L6')) {
      const apps = {}
      for (const framework of ['express', 'http']) {
        apps[`${framework}-bare`] = await track(ctx.startServer({ framework, plugin: false }))
        apps[`${framework}-plugin`] = await track(ctx.startServer({ framework, plugin: true, litefs: pluginOpts(primary) }))
      }
      await ready(apps['express-plugin'], 'primary')
      await ready(apps['http-plugin'], 'primary')
      const ways = [
        way('express-bare', apps['express-bare'], [apps['express-bare']], 'Express, bare'),
        way('express-plugin', apps['express-plugin'], [apps['express-plugin']], 'Express + litefs-proxy middleware'),
        way('http-bare', apps['http-bare'], [apps['http-bare']], 'node:http, bare'),
        way('http-plugin', apps['http-plugin'], [apps['http-plugin']], 'node:http + wrap()')
      ]
      section.scenarios.push(await scenario(ctx, {
        id: 'L6', name: 'Express and node:http writes on the primary, commit nothing', node: primary.hostname, load: { ...POST, path: '/items' }, ways,
        pairs: [['express-plugin', 'express-bare'], ['http-plugin', 'http-bare']]
      }))
      for (const key of Object.keys(apps)) {
        const s = apps[key]
        started.splice(started.indexOf(s), 1)
        await s.close()
      }
    }
    if (wanted('L8')) {
      // Two more databases in the mount (each its own -pos), replicated before the runs.
      const others = ['cache.db', 'queue.db']
      for (const name of others) {
        const extra = new Database(join(primary.mount, name))
        extra.pragma('journal_mode = WAL')
        extra.exec('CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, text TEXT NOT NULL)')
        extra.close()
        await cluster.waitReplicated(name)
      }
      const three = await track(ctx.startServer({ framework: 'fastify', plugin: true, litefs: { ...pluginOpts(primary), db: [DB, ...others] } }))
      await ready(three, 'primary')
      const sample = await fetch(`${three.url}/items`, POST)
      const token = sample.headers.get('litefs-txid') ?? ''
      await sample.text()
      if (token.split('|').length !== 3) throw new Error(`L8: the 3-database app's token names ${token.split('|').length} databases: ${token}`)
      const ways = [
        way('bare', bare[0], [bare[0]]),
        way('plugin', plugin[0], [plugin[0]], 'in-process (Fastify plugin), db: app.db'),
        way('plugin-3db', three, [three], "in-process (Fastify plugin), db: ['app.db', 'cache.db', 'queue.db']")
      ]
      section.scenarios.push(await scenario(ctx, {
        id: 'L8', name: 'L3 with 3 databases tracked vs 1 (write on the primary, commits nothing)', node: primary.hostname, load: { ...POST, path: '/items' }, ways,
        pairs: [['plugin-3db', 'plugin']]
      }))
      started.splice(started.indexOf(three), 1)
      await three.close()
    }
    // How often each proxy dials the app anew, counted on the app.
    const dials = key => section.scenarios.flatMap(s => s.ways[key]?.appDialsPerReq === undefined ? [] : [`${s.id} ${fmt3(s.ways[key].appDialsPerReq)}`]).join(', ')
    section.notes.push(`New TCP connections the app accepted per request, under 50 connections: behind LiteFS's proxy ${dials('litefs')}; behind litefs-proxy serve ${dials('sidecar')}.`)
  } catch (err) {
    err.message += `\n--- last LiteFS log lines ---\n${lines.slice(-30).join('\n')}`
    throw err
  } finally {
    for (const s of started.reverse()) await s.close().catch(() => {})
    await cluster?.close()
  }
  if (wanted('L7')) {
    const row = await durabilityCost()
    if (row !== undefined) section.scenarios.push(row)
  }
  section.targets = targets(section.scenarios)
  return section

  /** L7: the L4 insert with `durability` on vs off, on 3 candidates with a Consul lease (its own cluster). */
  async function durabilityCost () {
    const consulBinary = findConsul()
    if (consulBinary === undefined) {
      const why = 'L7 (durability) skipped: no consul binary (scripts/install-consul.sh, or CONSUL_BIN)'
      log(why)
      section.notes.push(why)
      return undefined
    }
    const apps = []
    let consul
    try {
      consul = await startConsulCluster({ nodes: 3, binary, consulBinary, log: (host, line) => { lines.push(`${host}: ${line}`); if (lines.length > 400) lines.shift() } })
      const primary = await consul.waitForPrimary()
      const { default: Database } = await import('better-sqlite3')
      const schema = new Database(join(primary.mount, DB))
      schema.pragma('journal_mode = WAL')
      schema.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT NOT NULL)')
      schema.close()
      await consul.waitReplicated(DB, primary)
      litefsProcs = consul.nodes.map(n => external(n.pid, `litefs ${n.hostname}`))
      const peerSecret = 'the-bench-durability-peer-secret'
      const opts = (node, durability) => ({ db: DB, mount: node.mount, api: node.apiUrl, peerSecret, peerName: node.hostname, durability })
      const start = async spec => { const a = await ctx.startServer(spec); apps.push(a); return a }
      const durable = await start({ framework: 'fastify', plugin: true, litefs: opts(primary, true), sqlite: join(primary.mount, DB) })
      // Off: the default, no peer endpoint at all.
      const plain = await start({ framework: 'fastify', plugin: true, litefs: { db: DB, mount: primary.mount, api: primary.apiUrl }, sqlite: join(primary.mount, DB) })
      const replicas = consul.nodes.filter(n => n !== primary)
      const reporters = []
      for (const node of replicas) reporters.push(await start({ framework: 'fastify', plugin: true, litefs: opts(node, false), sqlite: join(node.mount, DB), primaryOrigin: durable.url }))
      await ready(durable, 'primary')
      await ready(plain, 'primary')
      for (const r of reporters) await ready(r, 'replica')
      // Both replicas are in the durable app's table, connected, before it is measured.
      for (let i = 0; ; i++) {
        const peers = (await (await fetch(`${durable.url}/litefs/health`)).json()).peers ?? []
        if (replicas.every(n => peers.some(p => p.hostname === n.hostname && p.connected && p.candidate))) break
        if (i > 1000) throw new Error(`the replicas never reported to the durable app (its peers: ${JSON.stringify(peers)})`)
        await sleep(20)
      }
      const ways = [
        { key: 'plain', label: 'in-process, durability off (the default)', url: plain.url, port: Number(new URL(plain.url).port), cpuOf: [plain, ...reporters, ...litefsProcs] },
        { key: 'durable', label: 'in-process, durability on (answer after both candidates report it)', url: durable.url, port: Number(new URL(durable.url).port), cpuOf: [durable, ...reporters, ...litefsProcs] }
      ]
      const count = async () => (await (await fetch(`${plain.url}/__count`)).json()).n
      const row = await scenario(ctx, {
        id: 'L7', name: 'Write on the primary, inserts a row: durability on vs off (3 candidates, Consul lease)', node: primary.hostname, load: { ...POST, path: '/insert' }, ways, count,
        pairs: [['durable', 'plain']]
      })
      const lag = []
      for (const r of reporters) lag.push((await (await fetch(`${r.url}/litefs/health`)).json()).lag)
      row.replicaLagMs = lag
      const p = row.pairs['durable/plain']
      const note = `L7: durability on vs off, inserts on the primary with 2 candidates reporting: ${p.ratio}× req/s (rounds ${p.spread.join('–')}), p50 ${row.ways.durable.p50Ms} vs ${row.ways.plain.p50Ms} ms, p99 ${row.ways.durable.p99Ms} vs ${row.ways.plain.p99Ms} ms under 50 connections; one connection p50 ${row.ways.durable.single.p50Ms} vs ${row.ways.plain.single.p50Ms} ms. The replicas' lag (LiteFS's .lag) after the run: ${lag.join(', ')} ms.`
      log(note)
      section.notes.push(note)
      return row
    } catch (err) {
      err.message += `\n--- last LiteFS log lines ---\n${lines.slice(-30).join('\n')}`
      throw err
    } finally {
      for (const a of apps.reverse()) await a.close().catch(() => {})
      await consul?.close()
    }
  }

  async function ready (server, role) {
    for (let i = 0; ; i++) {
      const s = await server.call('state')
      if (s.role === role && s.litefs === 'up') return
      if (i > 1000) throw new Error(`the in-process app never saw itself as ${role} with LiteFS up (${JSON.stringify(s)})`)
      await sleep(10)
    }
  }

  async function healthy (url, role) {
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`${url}/litefs/health`)
        const body = await res.json()
        if (res.status === 200 && body.role === role) return
        if (i > 1000) throw new Error(`the sidecar at ${url} answered ${res.status} ${JSON.stringify(body)}`)
      } catch (err) {
        if (i > 1000) throw err
      }
      await sleep(10)
    }
  }

  /**
   * One scenario: sanity requests, warm-up, ROUNDS rounds running every way in
   * rotated order (round r starts with way r), background-load checks as
   * bench/index.mjs's compare(); then one-connection latency probes, and for
   * `paced` pairs latency at 40 % of the first's throughput.
   */
  async function scenario (ctx, s) {
    const t0 = performance.now()
    log(`${s.id}: ${s.name} (${s.ways.map(w => w.key).join(', ')})`)
    const procs = [...new Set([load, ...s.ways.flatMap(w => w.cpuOf)])]
    const row = { id: s.id, name: s.name, node: s.node, request: `${s.load.method ?? 'GET'} ${s.load.path}${s.load.headers?.cookie ? ' (cookie)' : ''}`, cookieTxid: s.cookieTxid, ways: {} }
    for (const w of s.ways) {
      const before = s.count === undefined ? undefined : await s.count()
      const res = await fetch(w.url + s.load.path, { method: s.load.method ?? 'GET', headers: s.load.headers, body: s.load.body })
      const body = await res.text()
      if (s.count !== undefined) await sleep(50)
      const after = s.count === undefined ? undefined : await s.count()
      row.ways[w.key] = {
        label: w.label,
        sample: {
          status: res.status,
          setCookie: res.headers.getSetCookie(),
          flyReplay: res.headers.get('fly-replay') ?? undefined,
          body: body.slice(0, 200),
          rowsApplied: after === undefined ? undefined : after - before
        },
        rounds: []
      }
    }
    for (const w of s.ways) {
      await load.call('autocannon', { ...s.load, connections: ctx.connections, duration: ctx.warmed.has(w.url + s.load.path) ? WARMUP : FIRST_WARMUP, url: w.url + s.load.path })
      ctx.warmed.add(w.url + s.load.path)
    }
    const rounds = []
    let extra = 0
    const busyLimit = ctx.busyLimit + (s.count === undefined ? 0 : INSERT_BUSY_SLACK)
    for (let i = 0; rounds.filter(r => r.clean).length < ROUNDS && (i < ROUNDS || (extra++ < ctx.maxRedo && ctx.takeRedo())); i++) {
      await ctx.quiet(procs)
      const order = [...s.ways.slice(i % s.ways.length), ...s.ways.slice(0, i % s.ways.length)]
      const runs = {}
      for (const w of order) {
        const before = s.count === undefined ? undefined : await s.count()
        const lf0 = await Promise.all(litefsProcs.map(p => p.call('cpu')))
        const dialed0 = w.app === undefined ? undefined : (await w.app.call('state')).accepted
        const r = await ctx.run(w, w.cpuOf, { ...s.load, duration: DURATION }, procs)
        const lf1 = await Promise.all(litefsProcs.map(p => p.call('cpu')))
        if (w.app !== undefined) r.appDialsPerReq = ((await w.app.call('state')).accepted - dialed0) / Math.max(1, r.requests)
        r.litefsUsPerReq = lf1.reduce((sum, c, k) => sum + c.cpuUs - lf0[k].cpuUs, 0) / Math.max(1, r.requests)
        if (s.count !== undefined) {
          await sleep(100) // requests still in flight when the load stopped
          r.rowsApplied = await s.count() - before
          r.answered2xx = r.requests // autocannon counts completed responses; non-2xx apart
        }
        runs[w.key] = r
      }
      const background = Math.max(...Object.values(runs).map(r => r.backgroundCores))
      const clean = background <= busyLimit
      if (!clean) log(`   ${s.id} round ${i + 1}: ${background} cores of other work on the machine`)
      rounds.push({ order: order.map(w => w.key), runs, backgroundCores: background, clean })
    }
    const used = rounds.some(r => r.clean) ? rounds.filter(r => r.clean) : rounds
    row.contended = !rounds.some(r => r.clean)
    row.discardedRounds = rounds.length - used.length
    row.backgroundCores = round(median(used.map(r => r.backgroundCores)), 2)
    row.busyLimit = busyLimit
    for (const w of s.ways) {
      const runs = used.map(r => r.runs[w.key])
      const x = row.ways[w.key]
      x.rps = round(median(runs.map(r => r.rps)), 0)
      x.p50Ms = median(runs.map(r => r.latencyMs.p50))
      x.p99Ms = median(runs.map(r => r.latencyMs.p99))
      x.usPerReq = round(median(runs.map(r => r.serverUsPerReq)), 1)
      x.litefsUsPerReq = round(median(runs.map(r => r.litefsUsPerReq)), 1)
      if (w.app !== undefined) x.appDialsPerReq = round(median(runs.map(r => r.appDialsPerReq)), 3)
      x.non2xx = runs.reduce((n, r) => n + r.non2xx, 0)
      x.errors = runs.reduce((n, r) => n + r.errors + r.timeouts, 0)
      x.requests = runs.reduce((n, r) => n + r.requests, 0)
      if (s.count !== undefined) x.rowsApplied = runs.reduce((n, r) => n + r.rowsApplied, 0)
      x.rounds = runs.map(r => ({ rps: round(r.rps, 0), p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99, usPerReq: round(r.serverUsPerReq, 1), non2xx: r.non2xx, rowsApplied: r.rowsApplied, backgroundCores: r.backgroundCores }))
    }
    const ratio = (a, b) => {
      if (row.ways[a] === undefined || row.ways[b] === undefined) return undefined
      const per = used.map(r => round(r.runs[a].rps / r.runs[b].rps))
      return { ratio: round(row.ways[a].rps / row.ways[b].rps), spread: [Math.min(...per), Math.max(...per)] }
    }
    for (const w of s.ways) {
      row.ways[w.key].vsBare = ratio(w.key, 'bare')
      row.ways[w.key].vsLitefs = ratio(w.key, 'litefs')
      row.ways[w.key].vsNginx = ratio(w.key, 'nginx')
      row.ways[w.key].vsNodeHop = ratio(w.key, 'nodehop')
    }
    row.pairs = {}
    for (const [a, b] of s.pairs ?? []) row.pairs[`${a}/${b}`] = ratio(a, b)
    for (const [a, b] of s.paced ?? []) row.pairs[`${a}/${b}`] = ratio(a, b)

    // Latency below saturation: one connection back to back (the hops alone), µs.
    const probe = { method: s.load.method ?? 'GET', path: s.load.path, headers: s.load.headers, body: s.load.body, warmupMs: 100 }
    const single = Object.fromEntries(s.ways.map(w => [w.key, []]))
    for (let rep = 0; rep < 2; rep++) {
      for (const w of rep === 0 ? s.ways : [...s.ways].reverse()) single[w.key].push(await load.call('probe', { ...probe, port: w.port, durationMs: 400 }))
    }
    for (const w of s.ways) {
      row.ways[w.key].single = { p50Ms: round(median(single[w.key].map(p => p.latencyUs.p50)) / 1000), p99Ms: round(median(single[w.key].map(p => p.latencyUs.p99)) / 1000) }
    }
    // Paced: 50 connections offering 40 % of the first way's throughput, to both ways of the pair.
    row.paced = {}
    for (const [a, b] of s.paced ?? []) {
      const rate = Math.round(row.ways[a].rps * 0.4)
      const wa = s.ways.find(w => w.key === a)
      const wb = s.ways.find(w => w.key === b)
      const runs = { [a]: [], [b]: [] }
      for (let rep = 0; rep < 2; rep++) {
        for (const w of rep === 0 ? [wa, wb] : [wb, wa]) runs[w.key].push(await load.call('probe', { ...probe, port: w.port, connections: ctx.connections, rate, durationMs: 800, warmupMs: 200 }))
      }
      const p = (k, q) => round(median(runs[k].map(x => x.latencyUs[q])) / 1000)
      row.paced[`${a}/${b}`] = { rate, p50Ms: [p(a, 'p50'), p(b, 'p50')], p99Ms: [p(a, 'p99'), p(b, 'p99')], deltaP50Ms: round(p(a, 'p50') - p(b, 'p50')) }
    }
    for (const w of s.ways) {
      const x = row.ways[w.key]
      log(`${s.id} ${w.key.padEnd(14)} ${String(x.rps).padStart(6)} req/s${x.vsBare ? `  ${x.vsBare.ratio}× bare` : ''}${x.vsLitefs ? `  ${x.vsLitefs.ratio}× LiteFS's proxy` : ''}  p50/p99 ${x.p50Ms}/${x.p99Ms} ms (1 conn ${x.single.p50Ms}/${x.single.p99Ms} ms)  ${x.usPerReq} µs CPU/req${x.non2xx ? `  non-2xx ${x.non2xx}` : ''}${x.rowsApplied !== undefined ? `  rows applied ${x.rowsApplied} of ${x.requests} answered` : ''}`)
    }
    for (const [k, v] of Object.entries(row.pairs)) log(`${s.id} ${k}: ${v.ratio}× (rounds ${v.spread.join('–')})`)
    for (const [k, v] of Object.entries(row.paced)) log(`${s.id} ${k} at ${v.rate} req/s offered: p50 ${v.p50Ms[0]} vs ${v.p50Ms[1]} ms (+${v.deltaP50Ms})`)
    row.seconds = round((performance.now() - t0) / 1000, 1)
    log(`${s.id}: ${row.seconds} s`)
    return row
  }
}

/**
 * nginx as a plain reverse proxy in front of the app at `target`: one process
 * (`master_process off`, as one sidecar process per node), upstream keep-alive,
 * no access log. Resolves once it accepts connections.
 */
async function startNginx (ctx, port, target) {
  const dir = mkdtempSync(join(tmpdir(), 'litefs-bench-nginx-'))
  writeNginxConf(dir, port, target)
  return await startPlainHop(ctx, 'nginx', nginxBinary(), ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], port, () => rmSync(dir, { recursive: true, force: true }))
}

/** A hop of ours with no consistency (bench/node-hop.mjs, bench/pipe-hop.mjs) in front of the app at `target`. */
async function startNodeHop (ctx, script, port, target) {
  return await startPlainHop(ctx, `${script} :${port}`, process.execPath, [join(HERE, script), String(port), String(target)], port, () => {})
}

/**
 * A hop with no consistency (nginx, the bare Node hop) listening on 127.0.0.1:`port`:
 * resolves once it answers `/items`; its CPU from /proc; `close` stops it, then `cleanup`.
 */
async function startPlainHop (ctx, name, bin, args, port, cleanup) {
  const cp = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  ctx.track(cp)
  const err = []
  cp.stderr.setEncoding('utf8')
  cp.stderr.on('data', d => { err.push(d) })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (cp.exitCode !== null || cp.signalCode !== null) throw new Error(`${name} exited (${cp.exitCode ?? cp.signalCode}): ${err.join('')}`)
    try { await fetch(url + '/items'); break } catch {}
    if (i > 500) throw new Error(`${name} did not accept connections within 5 s: ${err.join('')}`)
    await sleep(10)
  }
  return {
    name,
    url,
    port,
    pid: cp.pid,
    call: cpuCall(name, cp.pid, ctx.hz),
    close: async () => {
      await stopChild(cp)
      cleanup()
    }
  }
}

/** The 'cpu' command of a process we did not fork with IPC: its user + system time from /proc, as bench/server.mjs reports its own. */
function cpuCall (name, pid, hz) {
  return async cmd => {
    if (cmd !== 'cpu') throw new Error(`${name}: no command ${cmd}`)
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { cpuUs: (Number(f[11]) + Number(f[12])) * 1e6 / hz, at: performance.now() }
  }
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited. */
async function stopChild (cp) {
  if (cp.exitCode !== null || cp.signalCode !== null) return
  const gone = new Promise(resolve => cp.once('exit', resolve))
  cp.kill('SIGTERM')
  const timer = setTimeout(() => cp.kill('SIGKILL'), 5000)
  await gone
  clearTimeout(timer)
}

/** Start `litefs-proxy serve` (the built CLI) and resolve once it listens. */
async function startSidecar (ctx, cli, name, args) {
  const cp = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  ctx.track(cp)
  const out = []
  let url
  for (const stream of [cp.stdout, cp.stderr]) {
    stream.setEncoding('utf8')
    stream.on('data', chunk => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        out.push(line)
        if (out.length > 50) out.shift()
        url ??= /listening on (http:\/\/\S+?),/.exec(line)?.[1]
      }
    })
  }
  for (let i = 0; url === undefined; i++) {
    if (cp.exitCode !== null || cp.signalCode !== null) throw new Error(`${name} exited (${cp.exitCode ?? cp.signalCode}):\n${out.join('\n')}`)
    if (i > 1000) throw new Error(`${name} did not listen within 10 s:\n${out.join('\n')}`)
    await sleep(10)
  }
  const proc = {
    name,
    url,
    port: Number(new URL(url).port),
    pid: cp.pid,
    lines: out,
    call: cpuCall(name, cp.pid, ctx.hz),
    close: async () => { await stopChild(cp) }
  }
  return proc
}

/** The targets of issue 20 that this section measures, each with its value. */
function targets (scenarios) {
  const by = id => scenarios.find(s => s.id === id)
  const out = []
  const add = (measure, target, value, pass, detail) => out.push({ measure, target, value, pass, detail })
  const fmtR = r => r === undefined ? '–' : `${r.ratio}× (rounds ${r.spread[0]}–${r.spread[1]})`
  const at = (id, key, versus, measure, min) => {
    const r = by(id)?.ways[key]?.[versus]
    if (r !== undefined) add(measure, `≥ ${min}×`, fmtR(r), r.ratio >= min)
  }
  at('L3', 'plugin', 'vsBare', 'in-process write on the primary, commits nothing, vs bare (L3)', 0.9)
  const l6 = by('L6')
  if (l6 !== undefined) {
    for (const [k, who, min] of [['express-plugin/express-bare', 'Express', 0.9], ['http-plugin/http-bare', 'node:http', 0.85]]) {
      const r = l6.pairs[k]
      add(`${who} write on the primary vs bare ${who} (L6)`, `≥ ${min}×`, fmtR(r), r.ratio >= min)
    }
  }
  at('L1', 'plugin', 'vsBare', 'in-process read, no cookie, vs bare (L1)', 0.97)
  at('L2', 'plugin', 'vsBare', 'in-process read, cookie satisfied, vs bare (L2)', 0.97)
  at('L3', 'sidecar', 'vsLitefs', "serve, write that commits nothing, vs LiteFS's proxy (L3)", 2)
  at('L1', 'sidecar', 'vsNginx', 'serve, read, vs nginx as a plain proxy (L1)', 0.8)
  at('L2', 'sidecar', 'vsNginx', 'serve, read with a cookie, vs nginx as a plain proxy (L2)', 0.8)
  // Not targets: the same measures for hops with no consistency at all: a Node hop
  // on serve's stack (node:http + undici), and bytes piped by Node below any HTTP
  // library; and serve against the first.
  const floor = (id, key, versus, measure) => {
    const r = by(id)?.ways[key]?.[versus]
    if (r !== undefined) add(measure, 'not a target', fmtR(r), undefined)
  }
  floor('L3', 'nodehop', 'vsLitefs', "a bare Node hop, write that commits nothing, vs LiteFS's proxy (L3)")
  floor('L1', 'nodehop', 'vsNginx', 'a bare Node hop, read, vs nginx as a plain proxy (L1)')
  floor('L2', 'nodehop', 'vsNginx', 'a bare Node hop, read with a cookie, vs nginx as a plain proxy (L2)')
  floor('L3', 'pipehop', 'vsLitefs', "bytes piped by Node, write, vs LiteFS's proxy (L3)")
  floor('L1', 'pipehop', 'vsNginx', 'bytes piped by Node, read, vs nginx as a plain proxy (L1)')
  floor('L3', 'headhop', 'vsLitefs', "the prototype (heads parsed in JS, bytes relayed), write, vs LiteFS's proxy (L3)")
  floor('L1', 'headhop', 'vsNginx', 'the prototype (heads parsed in JS, bytes relayed), read, vs nginx as a plain proxy (L1)')
  for (const id of ['L1', 'L2', 'L3']) floor(id, 'sidecar', 'vsNodeHop', `serve vs the bare Node hop (${id})`)
  // L4: a real insert takes milliseconds in SQLite and LiteFS; the cookie must cost nothing there.
  at('L4', 'plugin', 'vsBare', 'in-process write with a real insert, vs bare (L4)', 0.95)
  at('L4', 'sidecar', 'vsLitefs', "serve, write with a real insert, vs LiteFS's proxy (L4)", 0.95)
  for (const id of ['L1', 'L2', 'L3', 'L4']) at(id, 'plugin', 'vsLitefs', `in-process vs LiteFS's proxy (${id})`, 5)
  const l8 = by('L8')
  if (l8 !== undefined) {
    const r = l8.pairs['plugin-3db/plugin']
    add('in-process write, 3 databases tracked vs 1 (L8)', '≥ 0.95×', fmtR(r), r.ratio >= 0.95)
  }
  const l5 = by('L5')
  if (l5) {
    for (const [a, b, who] of [['plugin', 'plugin-direct', 'in-process'], ['sidecar', 'sidecar-direct', 'serve']]) {
      const r = l5.pairs[`${a}/${b}`]
      const paced = l5.paced[`${a}/${b}`]
      add(`forwarded write vs the same write sent to the primary (L5, ${who}): req/s; p50 below saturation (${paced.rate} req/s offered)`, '≥ 0.5×; p50 ≤ +0.5 ms',
        `${fmtR(r)}; ${paced.p50Ms[0]} vs ${paced.p50Ms[1]} ms (${paced.deltaP50Ms >= 0 ? '+' : ''}${paced.deltaP50Ms})`, r.ratio >= 0.5 && paced.deltaP50Ms <= 0.5)
    }
  }
  return out
}
