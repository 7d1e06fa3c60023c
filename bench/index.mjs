// `npm run bench`: what litefs-proxy costs, as ratios to a baseline measured in
// the same run. Every app under test runs in a process of its own
// (bench/server.mjs), the load generator in another (bench/load.mjs), the
// wait-release client + fake LiteFS in a third (bench/release-client.mjs); this
// process only orchestrates (and plays the LiteFS nodes of the throughput
// scenarios, idle but for a primary's 1 ms commit ticker). Results go to
// bench/results/latest.{md,json} and wait-release.svg; see bench/README.md.
//
//   node bench/index.mjs [scenario…]    e.g. `node bench/index.mjs 3 4` re-runs two
//   BENCH_DURATION=2 BENCH_ROUNDS=3     seconds per run, A/B rounds per comparison
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FakeLitefs, hex16 } from './fake-litefs.mjs'
import { IDS as LITEFS_IDS, realLitefs } from './real-litefs.mjs'
import { litefsSvg, markdown, waitReleaseSvg } from './report.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH)
const RESULTS = join(BENCH, 'results')
const DURATION = Number(process.env.BENCH_DURATION ?? 2)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const WARMUP = 1
const FIRST_WARMUP = 3
const warmed = new Set()
const CONNECTIONS = 50
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 1000)
const SCALE = (process.env.BENCH_SCALE ?? '100,1000,10000').split(',').map(Number)
const only = new Set(process.argv.slice(2))
const KNOWN = ['1', '2', '3', '4', '5', '6', '7', 'litefs', ...LITEFS_IDS]
for (const id of only) if (!KNOWN.includes(id)) throw new Error(`unknown scenario "${id}"; scenarios: ${KNOWN.join(' ')} (litefs: every L scenario, on real LiteFS)`)
const wanted = id => only.size === 0 || only.has(String(id))
// The real-LiteFS section: all of it (no selection, or `litefs`), or the L ids named.
const litefsIds = new Set([...only].filter(id => LITEFS_IDS.includes(id)))
const wantLitefs = only.size === 0 || only.has('litefs') || litefsIds.size > 0
const started = performance.now()
const log = (...a) => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s]`, ...a)

// --- The built package, snapshotted: others may rebuild dist/ while we run ---
// BENCH_DIST: another build of dist/esm (a candidate fix) to measure instead.
const SRC = process.env.BENCH_DIST ?? join(ROOT, 'dist', 'esm')
if (!existsSync(join(SRC, 'fastify.js'))) throw new Error('dist/esm is missing: run `npm run build` (npm run bench does)')
const DIST = join(BENCH, '.dist', 'esm')
rmSync(join(BENCH, '.dist'), { recursive: true, force: true })
cpSync(SRC, DIST, { recursive: true })

// --- File descriptors: the scale scenario needs 10,000 sockets on each side ---
const sh = cmd => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' }).trim()
const softLimit = Number(sh('ulimit -Sn'))
const hardLimitRaw = sh('ulimit -Hn')
const hardLimit = hardLimitRaw === 'unlimited' ? Infinity : Number(hardLimitRaw)
const FD_SLACK = 200
const nofile = Math.min(hardLimit, Math.max(softLimit, SCALE[SCALE.length - 1] + FD_SLACK))
const maxSockets = nofile - FD_SLACK

// --- Children ---
const children = new Set() // every process this run started, killed on the way out
process.on('exit', () => { for (const cp of children) cp.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))

function child (script, args = [], execArgv = []) {
  const argv = [...execArgv, join(BENCH, script), ...args]
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc']
  // Raise the descriptor limit for the child when the shell's soft limit is lower.
  const cp = nofile > softLimit
    ? spawn('sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, ...argv], { stdio })
    : spawn(process.execPath, argv, { stdio })
  children.add(cp)
  let seq = 0
  const pending = new Map()
  let exited = false
  const ready = new Promise((resolve, reject) => {
    cp.on('message', m => {
      if (m.ready === true) return resolve(m)
      const p = pending.get(m.id)
      pending.delete(m.id)
      if (m.error !== undefined) p?.reject(new Error(`${script}: ${m.error}`))
      else p?.resolve(m.result)
    })
    cp.once('exit', code => {
      exited = true
      children.delete(cp)
      const err = new Error(`${script} exited (${code})`)
      reject(err)
      for (const p of pending.values()) p.reject(err)
      pending.clear()
    })
  })
  return {
    ready,
    call: (cmd, opts) => new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`${script} has exited`))
      const id = ++seq
      pending.set(id, { resolve, reject })
      cp.send({ id, cmd, opts })
    }),
    async close () {
      if (exited) return
      const gone = new Promise(resolve => cp.once('exit', resolve))
      if (script === 'server.mjs') await this.call('close').catch(() => {})
      else cp.kill()
      await Promise.race([gone, new Promise(resolve => setTimeout(resolve, 2000))])
      if (!exited) cp.kill('SIGKILL')
    }
  }
}

const servers = new Set()
async function startServer (spec) {
  const c = child('server.mjs', [JSON.stringify(spec), DIST], ['--expose-gc'])
  const { url } = await c.ready
  const s = { ...c, url, port: Number(new URL(url).port), spec }
  servers.add(s)
  const close = s.close.bind(s)
  s.close = async () => { servers.delete(s); await close() }
  return s
}

/** Wait until `fake` has `n` /events subscribers (a plugin instance subscribes at start). */
async function subscribers (fake, n) {
  for (let i = 0; fake.subscribers < n; i++) {
    if (i > 5000) throw new Error('an app never subscribed to the fake /events')
    await new Promise(resolve => setTimeout(resolve, 1))
  }
}

const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d

const load = child('load.mjs')
await load.ready

const meta = {
  node: process.version,
  cores: cpus().length,
  cpu: cpus()[0]?.model?.trim(),
  platform: `${process.platform} ${process.arch}`,
  date: new Date().toISOString(),
  durationPerRunS: DURATION,
  rounds: ROUNDS,
  connections: CONNECTIONS,
  ulimit: { soft: softLimit, hard: hardLimitRaw, used: nofile }
}
log(`Node ${meta.node}, ${meta.cores} cores (${meta.cpu}); ${ROUNDS} A/B rounds of ${DURATION}s, ${CONNECTIONS} connections`)

// --- Other work on the machine ---
// Others may run tests on these same 2 cores while we measure. Every run counts
// the machine's busy CPU (/proc/stat) minus the CPU of our own processes: what
// is left is background load, which steals from the app and the load generator
// alike and skews a ratio. Rounds with too much of it are measured again.
const HZ = Number(sh('getconf CLK_TCK')) || 100
const BUSY_LIMIT = Number(process.env.BENCH_BUSY_LIMIT ?? 0.15) // cores of background work tolerated in a round
const MAX_REDO = Number(process.env.BENCH_MAX_REDO ?? 3) // extra rounds per comparison
let redoBudget = Number(process.env.BENCH_REDO_BUDGET ?? 6) // extra rounds in the whole run (keeps it under 5 minutes)
function procStat () {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const [user, nice, system, , , irq, softirq, steal] = f
  return { busy: user + nice + system + irq + softirq, steal: steal ?? 0 }
}
async function ourCpuUs (procs) {
  const own = process.cpuUsage()
  const children = await Promise.all(procs.map(p => p.call('cpu')))
  return own.user + own.system + children.reduce((sum, c) => sum + c.cpuUs, 0)
}
/** Measure `fn` and the background CPU (in cores) that ran meanwhile. */
async function watched (procs, fn) {
  const s0 = procStat()
  const c0 = await ourCpuUs(procs)
  const t0 = performance.now()
  const result = await fn()
  const elapsedUs = (performance.now() - t0) * 1000
  const c1 = await ourCpuUs(procs)
  const s1 = procStat()
  const busyUs = (s1.busy - s0.busy) * 1e6 / HZ
  return { result, backgroundCores: Math.max(0, (busyUs - (c1 - c0)) / elapsedUs), stealCores: (s1.steal - s0.steal) * 1e6 / HZ / elapsedUs }
}

/**
 * Wait (within a budget for the whole bench) until the machine is quiet: other
 * work below BUSY_LIMIT cores over a 400 ms window.
 */
let quietBudgetMs = Number(process.env.BENCH_QUIET_BUDGET ?? 30) * 1000
async function quiet (procs) {
  for (;;) {
    const t0 = performance.now()
    const w = await watched(procs, async () => await new Promise(resolve => setTimeout(resolve, 400)))
    if (w.backgroundCores <= BUSY_LIMIT || quietBudgetMs <= 0) return w.backgroundCores
    quietBudgetMs -= performance.now() - t0
  }
}

/** One autocannon run against `target`, with the server CPU it cost (all of `cpuOf`'s processes). */
async function run (target, cpuOf, opts, procs) {
  const before = await Promise.all(cpuOf.map(s => s.call('cpu')))
  const w = await watched(procs, async () => await load.call('autocannon', { connections: CONNECTIONS, duration: DURATION, ...opts, url: target.url + (opts.path ?? '/items') }))
  const r = w.result
  const after = await Promise.all(cpuOf.map(s => s.call('cpu')))
  const cpuUs = after.reduce((sum, a, i) => sum + a.cpuUs - before[i].cpuUs, 0)
  r.serverUsPerReq = cpuUs / Math.max(1, r.requests)
  r.serverCores = cpuUs / ((after[0].at - before[0].at) * 1000)
  r.backgroundCores = round(w.backgroundCores, 2)
  r.stealCores = round(w.stealCores, 2)
  return r
}

/**
 * Baseline A vs B: warm both, then ROUNDS rounds in alternating order (AB, BA,
 * AB…) so drift cancels; a round during which other work used more than
 * BUSY_LIMIT cores is measured again (at most MAX_REDO times). Ratio = median B
 * ÷ median A over the clean rounds (all rounds when none was clean); spread =
 * the per-round ratios.
 */
async function compare ({ a, b, load: opts, loadB }) {
  const A = { target: a.target ?? a, cpuOf: a.cpuOf ?? [a.target ?? a] }
  const B = { target: b.target ?? b, cpuOf: b.cpuOf ?? [b.target ?? b] }
  const procs = [...new Set([load, ...A.cpuOf, ...B.cpuOf])]
  const optsB = loadB ?? opts
  // Warm-up: long on an app's first comparison (JIT tiers settle over seconds), short after.
  for (const [t, o] of [[A.target, opts], [B.target, optsB]]) {
    await load.call('autocannon', { ...o, connections: CONNECTIONS, duration: warmed.has(t) ? WARMUP : FIRST_WARMUP, url: t.url + (o.path ?? '/items') })
    warmed.add(t)
  }
  const rounds = []
  for (let i = 0; rounds.filter(r => r.clean).length < ROUNDS && (i < ROUNDS || (i < ROUNDS + MAX_REDO && redoBudget-- > 0)); i++) {
    await quiet(procs)
    let ra, rb
    if (i % 2 === 0) {
      ra = await run(A.target, A.cpuOf, opts, procs)
      rb = await run(B.target, B.cpuOf, optsB, procs)
    } else {
      rb = await run(B.target, B.cpuOf, optsB, procs)
      ra = await run(A.target, A.cpuOf, opts, procs)
    }
    const background = Math.max(ra.backgroundCores, rb.backgroundCores)
    const clean = background <= BUSY_LIMIT
    if (!clean) log(`   round ${i + 1}: ${background} cores of other work on the machine`)
    rounds.push({ a: ra, b: rb, ratio: round(rb.rps / ra.rps), backgroundCores: background, clean })
  }
  const used = rounds.some(r => r.clean) ? rounds.filter(r => r.clean) : rounds
  const summary = runs => ({
    rps: round(median(runs.map(r => r.rps)), 0),
    p50Ms: median(runs.map(r => r.latencyMs.p50)),
    p99Ms: median(runs.map(r => r.latencyMs.p99)),
    usPerReq: round(median(runs.map(r => r.serverUsPerReq)), 1),
    serverCores: round(median(runs.map(r => r.serverCores)), 2),
    errors: runs.reduce((s, r) => s + r.errors + r.non2xx + r.timeouts, 0),
    runs
  })
  const sa = summary(used.map(r => r.a))
  const sb = summary(used.map(r => r.b))
  const roundRatios = used.map(r => r.ratio)
  return {
    baseline: sa,
    measured: sb,
    ratio: round(sb.rps / sa.rps),
    spread: [Math.min(...roundRatios), Math.max(...roundRatios)],
    roundRatios,
    cpuRatio: round(sa.usPerReq / sb.usPerReq),
    backgroundCores: round(median(used.map(r => r.backgroundCores)), 2),
    contended: !rounds.some(r => r.clean),
    discardedRounds: rounds.filter(r => !r.clean && used !== rounds).map(r => ({ ratio: r.ratio, backgroundCores: r.backgroundCores }))
  }
}

/** One request through fetch, to check the app does what the scenario claims. */
async function sanity (url, init = {}) {
  const res = await fetch(url, init)
  const body = await res.text()
  return { status: res.status, setCookie: res.headers.getSetCookie(), body }
}

const POST = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hello"}' }
const results = { meta, scenarios: [], waitRelease: undefined, scale: undefined, litefs: undefined, notes: [] }
const add = (row) => {
  if (row.target !== undefined && row.ratio !== undefined) {
    row.pass = row.ratio >= row.target.minRatio && (row.target.maxP50DeltaMs === undefined || row.p50DeltaMs <= row.target.maxP50DeltaMs)
  }
  results.scenarios.push(row)
  const verdict = row.pass === undefined ? '' : row.pass ? 'PASS' : 'MISS'
  log(`${row.id} ${row.name}: ${row.measured.rps} vs ${row.baseline.rps} req/s = ${row.ratio}× (rounds ${row.roundRatios.join(', ')}; server µs/req ${row.baseline.usPerReq} → ${row.measured.usPerReq}; background ${row.backgroundCores} cores${row.contended ? ', NO CLEAN ROUND' : ''}) ${verdict}`)
}

// --- LiteFS nodes for the throughput scenarios (this process; idle while measured) ---
const TXID = 1000n
const replicaFake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: TXID })
const primaryFake = await FakeLitefs.start({ role: 'primary', txid: TXID })
// The primary commits every millisecond: its -pos file changes (atomically, real
// format) and a tx line goes out, as LiteFS does; the plugin reads the file on
// every write response.
const ticker = setInterval(() => primaryFake.advance(primaryFake.txid + 1n), 1)
const replicaOpts = { db: 'app.db', mount: replicaFake.mount, api: replicaFake.apiUrl }
const primaryOpts = { db: 'app.db', mount: primaryFake.mount, api: primaryFake.apiUrl }

async function pluginServer (framework, fake, opts, extra = {}) {
  const before = fake.subscribers
  const s = await startServer({ framework, plugin: true, litefs: opts, ...extra })
  await subscribers(fake, before + 1)
  return s
}

try {
  // 1, 2: reads on a replica (Fastify)
  if (wanted(1) || wanted(2)) {
    log('1/2: Fastify reads on a replica')
    const bare = await startServer({ framework: 'fastify', plugin: false })
    const plug = await pluginServer('fastify', replicaFake, replicaOpts)
    const check = await sanity(plug.url + '/items', { headers: { cookie: `litefs-txid=${hex16(TXID)}` } })
    if (check.status !== 200) throw new Error(`satisfied read answered ${check.status}`)
    if (wanted(1)) {
      add({ id: '1', name: 'Read, no cookie, replica (Fastify)', target: { minRatio: 0.95 }, ...await compare({ a: bare, b: plug, load: {} }) })
    }
    if (wanted(2)) {
      // The replica is at TXID 1000; the cookie asks for 1000: satisfied, never held.
      const cookie = { headers: { cookie: `litefs-txid=${hex16(TXID)}` } }
      add({ id: '2', name: 'Read, cookie already satisfied, replica (Fastify)', target: { minRatio: 0.93 }, ...await compare({ a: bare, b: plug, load: cookie }) })
    }
    await Promise.all([bare.close(), plug.close()])
  }

  // 3: writes on the primary, cookie set from the -pos file
  if (wanted(3)) {
    log('3: Fastify writes on the primary')
    const bare = await startServer({ framework: 'fastify', plugin: false })
    const plug = await pluginServer('fastify', primaryFake, primaryOpts)
    const check = await sanity(plug.url + '/items', POST)
    if (check.status !== 200 || !/^litefs-txid=[0-9a-f]{16};/.test(check.setCookie[0] ?? '')) throw new Error(`write on the primary: ${JSON.stringify(check)}`)
    add({ id: '3', name: 'Write on the primary, cookie from -pos (Fastify)', target: { minRatio: 0.90 }, sample: check.setCookie[0], ...await compare({ a: bare, b: plug, load: POST }) })
    await Promise.all([bare.close(), plug.close()])
  }

  // 4: a write on a replica, streamed to the primary
  if (wanted(4)) {
    log('4: forwarded writes')
    const primary = await pluginServer('fastify', primaryFake, primaryOpts)
    const replica = await pluginServer('fastify', replicaFake, { ...replicaOpts, forward: 'http' }, { primaryOrigin: primary.url })
    const check = await sanity(replica.url + '/items', POST)
    if (check.status !== 200 || check.setCookie.length !== 1) throw new Error(`forwarded write: ${JSON.stringify(check)}`)
    const row = { id: '4', name: 'Write forwarded replica → primary (Fastify, forward: http)', target: { minRatio: 0.5, maxP50DeltaMs: 1 }, sample: check.setCookie[0] }
    Object.assign(row, await compare({ a: primary, b: { target: replica, cpuOf: [replica, primary] }, load: POST }))
    // Latency at the same offered load, below saturation, in microseconds (autocannon
    // rounds to whole ms): 50 connections offering 40 % of the forwarded throughput,
    // and one connection back to back (the hop alone).
    const rate = Math.round(row.measured.rps * 0.4)
    const probeOpts = { method: 'POST', path: '/items', headers: POST.headers, body: POST.body, durationMs: 2000, warmupMs: 300 }
    const paced = { a: [], b: [] }
    const single = { a: [], b: [] }
    for (let i = 0; i < 2; i++) {
      paced.a.push(await load.call('probe', { ...probeOpts, port: primary.port, connections: CONNECTIONS, rate }))
      paced.b.push(await load.call('probe', { ...probeOpts, port: replica.port, connections: CONNECTIONS, rate }))
      single.b.push(await load.call('probe', { ...probeOpts, port: replica.port, durationMs: 1000 }))
      single.a.push(await load.call('probe', { ...probeOpts, port: primary.port, durationMs: 1000 }))
    }
    const p50 = probes => median(probes.map(p => p.latencyUs.p50)) / 1000
    const p99 = probes => median(probes.map(p => p.latencyUs.p99)) / 1000
    row.latency = {
      pacedRate: rate,
      paced: { baselineP50Ms: round(p50(paced.a)), measuredP50Ms: round(p50(paced.b)), baselineP99Ms: round(p99(paced.a)), measuredP99Ms: round(p99(paced.b)), runs: paced },
      single: { baselineP50Ms: round(p50(single.a)), measuredP50Ms: round(p50(single.b)), baselineP99Ms: round(p99(single.a)), measuredP99Ms: round(p99(single.b)), runs: single },
      saturated: { baselineP50Ms: row.baseline.p50Ms, measuredP50Ms: row.measured.p50Ms }
    }
    row.p50DeltaMs = round(row.latency.paced.measuredP50Ms - row.latency.paced.baselineP50Ms)
    add(row)
    log(`4 p50 at ${rate} req/s: ${row.latency.paced.baselineP50Ms} → ${row.latency.paced.measuredP50Ms} ms (+${row.p50DeltaMs}); one connection: ${row.latency.single.baselineP50Ms} → ${row.latency.single.measuredP50Ms} ms; saturated: ${row.baseline.p50Ms} → ${row.measured.p50Ms} ms`)
    await Promise.all([replica.close(), primary.close()])
  }

  // 7: Express and node:http adapters
  if (wanted(7)) {
    for (const framework of ['express', 'http']) {
      log(`7: ${framework}`)
      const bare = await startServer({ framework, plugin: false })
      const reader = await pluginServer(framework, replicaFake, replicaOpts)
      const writer = await pluginServer(framework, primaryFake, primaryOpts)
      const check = await sanity(writer.url + '/items', POST)
      if (check.status !== 200 || check.setCookie.length !== 1) throw new Error(`${framework} write: ${JSON.stringify(check)}`)
      const label = framework === 'express' ? 'Express + middleware' : 'node:http + wrap()'
      add({ id: `7${framework === 'express' ? 'a' : 'c'}`, name: `Read, no cookie, replica (${label})`, target: { minRatio: 0.95, borrowed: true }, ...await compare({ a: bare, b: reader, load: {} }) })
      add({ id: `7${framework === 'express' ? 'b' : 'd'}`, name: `Write on the primary, cookie (${label})`, target: { minRatio: 0.90, borrowed: true }, ...await compare({ a: bare, b: writer, load: POST }) })
      await Promise.all([bare.close(), reader.close(), writer.close()])
    }
  }
  clearInterval(ticker)

  // L1–L7: the same app four ways on a real LiteFS cluster (bench/real-litefs.mjs)
  if (wantLitefs) {
    results.litefs = await realLitefs({
      dist: DIST,
      log,
      load,
      round,
      median,
      hz: HZ,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      warmup: WARMUP,
      firstWarmup: FIRST_WARMUP,
      warmed,
      busyLimit: BUSY_LIMIT,
      maxRedo: MAX_REDO,
      takeRedo: () => redoBudget-- > 0,
      startServer,
      run,
      quiet,
      track: cp => { children.add(cp); cp.once('exit', () => children.delete(cp)) }
    }, litefsIds)
  }

  // 5: wait release latency, events feed and polling feed (and the machine's floor)
  if (wanted(5)) {
    results.waitRelease = {}
    for (const mode of ['events', 'polling', 'bare']) {
      log(`5: wait release, ${mode === 'bare' ? 'floor: bare app released by a request' : `${mode} feed`} (${SAMPLES} held reads, one at a time)`)
      const client = child('release-client.mjs')
      await client.ready
      const { mount, api } = await client.call('setup', { mode })
      const spec = mode === 'bare'
        ? { framework: 'fastify', plugin: false, hold: true }
        : { framework: 'fastify', plugin: true, litefs: api === false ? { db: 'app.db', mount, api: false, role: 'replica' } : { db: 'app.db', mount, api } }
      const server = await startServer(spec)
      if (mode === 'events') await client.call('subscribed')
      await quiet([client, server])
      const w = await watched([client, server], async () => await client.call('samples', { port: server.port, n: SAMPLES, mode }))
      const r = { ...w.result, backgroundCores: round(w.backgroundCores, 2) }
      const p = r.latencyUs
      const target = { events: 1, polling: 3 }[mode]
      results.waitRelease[mode] = { ...r, targetP99Ms: target, pass: target === undefined ? undefined : p.p99 / 1000 <= target }
      const verdict = target === undefined ? '' : p.p99 / 1000 <= target ? 'PASS' : 'MISS'
      log(`5 ${mode}: p50 ${round(p.p50 / 1000)} ms, p99 ${round(p.p99 / 1000)} ms, max ${round(p.max / 1000)} ms ${verdict} (statuses ${JSON.stringify(r.statuses)}; background ${r.backgroundCores} cores)`)
      await server.close()
      await client.call('teardown')
      await client.close()
    }
  }

  // 6: scale — N held reads released by one position change, and their memory
  if (wanted(6)) {
    results.scale = { rows: [], maxSockets }
    const sizes = SCALE.map(n => Math.min(n, maxSockets))
    if (sizes.at(-1) < SCALE.at(-1)) results.notes.push(`scale: ${SCALE.at(-1)} sockets impossible here (ulimit -n hard limit ${hardLimitRaw}); largest measured: ${sizes.at(-1)}`)
    const client = child('release-client.mjs')
    await client.ready
    const { mount, api } = await client.call('setup', { mode: 'events' })
    for (const n of sizes) {
      const row = { n }
      for (const variant of ['bare', 'plugin']) {
        log(`6: ${n} held reads, ${variant === 'plugin' ? 'litefs-proxy (released by one tx event)' : 'bare Fastify holding them in an onRequest hook (released by one request)'}`)
        const server = await startServer(variant === 'plugin'
          ? { framework: 'fastify', plugin: true, litefs: { db: 'app.db', mount, api, readTimeout: '120s' } }
          : { framework: 'fastify', plugin: false, hold: true })
        if (variant === 'plugin') await client.call('subscribed')
        const cycle = async (count) => {
          // The same bytes for both (the bare app ignores the cookie): only litefs-proxy's own state differs.
          await client.call('open', { port: server.port, n: count, cookie: true })
          let state
          for (let i = 0; (state = await server.call('state')).waiters < count; i++) {
            if (i > 6000) throw new Error(`only ${state.waiters} of ${count} requests held`)
            await new Promise(resolve => setTimeout(resolve, 5))
          }
          return state
        }
        // Warm the paths being timed (a production server is warm): three small rounds.
        for (let i = 0; i < 3; i++) {
          await cycle(Math.min(n, 200))
          await client.call('release', { how: variant === 'plugin' ? 'event' : 'http' })
          await client.call('closeConns')
        }
        const mem0 = await server.call('mem')
        await cycle(n)
        const mem1 = await server.call('mem')
        const release = await client.call('release', { how: variant === 'plugin' ? 'event' : 'http' })
        const ok = release.statuses['200'] ?? 0
        if (ok !== n) throw new Error(`${variant}: ${ok} of ${n} answered 200 (${JSON.stringify(release.statuses)})`)
        row[variant] = {
          release,
          heapPerReqB: Math.round((mem1.heapUsed - mem0.heapUsed) / n),
          rssPerReqB: Math.round((mem1.rss - mem0.rss) / n),
          mem0,
          mem1
        }
        await server.close()
        await client.call('closeConns')
      }
      row.pluginHeapPerHeldReadB = row.plugin.heapPerReqB - row.bare.heapPerReqB
      row.pluginRssPerHeldReadB = row.plugin.rssPerReqB - row.bare.rssPerReqB
      results.scale.rows.push(row)
      log(`6 N=${n}: all answered ${round(row.plugin.release.allMs)} ms after the tx (bare app's own release: ${round(row.bare.release.allMs)} ms); +${row.pluginHeapPerHeldReadB} B heap, +${row.pluginRssPerHeldReadB} B RSS per held read`)
    }
    await client.call('teardown')
    await client.close()
  }
} finally {
  clearInterval(ticker)
  await Promise.all([...servers].map(s => s.close()))
  await load.close()
  await replicaFake.close()
  await primaryFake.close()
  rmSync(join(BENCH, '.dist'), { recursive: true, force: true })
}

meta.totalSeconds = round((performance.now() - started) / 1000, 1)
meta.scenarios = only.size === 0 ? 'all' : [...only]
const md = markdown(results)
console.log('\n' + md)
mkdirSync(join(RESULTS, 'history'), { recursive: true })
const stamp = meta.date.replace(/[:.]/g, '-')
const json = JSON.stringify(results, (_k, v) => typeof v === 'bigint' ? String(v) : v, 2) + '\n'
writeFileSync(join(RESULTS, 'history', `${stamp}.md`), md)
writeFileSync(join(RESULTS, 'history', `${stamp}.json`), json)
if (only.size === 0) {
  writeFileSync(join(RESULTS, 'latest.md'), md)
  writeFileSync(join(RESULTS, 'latest.json'), json)
  if (results.waitRelease !== undefined) writeFileSync(join(RESULTS, 'wait-release.svg'), waitReleaseSvg(results))
  if (results.litefs?.scenarios !== undefined) writeFileSync(join(RESULTS, 'litefs.svg'), litefsSvg(results))
  log(`wrote bench/results/latest.md, latest.json, wait-release.svg${results.litefs?.scenarios !== undefined ? ', litefs.svg' : ''}`)
} else {
  if (results.waitRelease !== undefined) writeFileSync(join(RESULTS, 'history', `${stamp}-wait-release.svg`), waitReleaseSvg(results))
  if (results.litefs?.scenarios !== undefined) writeFileSync(join(RESULTS, 'history', `${stamp}-litefs.svg`), litefsSvg(results))
  log(`partial run: wrote bench/results/history/${stamp}.{md,json} (latest.* only from a full run)`)
}
log(`total ${meta.totalSeconds}s`)
