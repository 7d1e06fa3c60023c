// Where `litefs-proxy serve`'s time goes as a plain hop, beside other hops doing the same hop:
//   node bench/profile-serve.mjs [seconds] [cookie|write]
// One fake LiteFS node (PROFILE_LITEFS=1: a node of a real 2-node LiteFS cluster); bench/server.mjs's bare Fastify app; in front of it, in turn, nginx
// (proxy_pass, upstream keep-alive, one process: as the real-LiteFS section starts it), a bare
// Node hop (bench/node-hop.mjs: node:http's server and undici, as serve, and nothing else),
// bytes piped by Node (bench/pipe-hop.mjs: no HTTP parsed), a prototype of a hop below node:http
// and undici (bench/head-hop.mjs: heads parsed in JS, bytes relayed) and `litefs-proxy serve`
// (the built CLI, `--log-level warn`). Each is loaded with the same request (50 connections; a
// read with no cookie, L1; `cookie`: one the node has already reached, L2; `write`: a POST that
// commits nothing on a primary, its cookie from `-pos`, L3) for `seconds` after a 2 s warm-up.
// Prints req/s and each process's CPU per request (/proc: user + system, the kernel's socket
// work included; no profiler), then, for serve and the bare Node hop each run again under
// `--cpu-prof` with the same load, how that CPU shares out: a sample is charged to the first
// frame up its stack that belongs to node:http's server side, to undici (the request to the
// app and its answer), or to litefs-proxy's own code; a sample under none of them is socket
// and stream plumbing (either side), the garbage collector, or V8/libuv itself ("(program)").
// The profiler samples on a wall clock, so its shares are applied to the CPU measured without
// it, never its own sums. PROFILE_TOP=n lists serve's n largest self times per owner;
// PROFILE_STACK=<function> the stacks of its samples in serve.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FakeLitefs, hex16 } from './fake-litefs.mjs'
import { startLab } from './litefs-lab.mjs'
import { nginxBinary, writeNginxConf } from './nginx.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH)
const seconds = Number(process.argv[2] ?? 4)
const withCookie = process.argv[3] === 'cookie'
const write = process.argv[3] === 'write'
const HZ = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const cpuUs = pid => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 1e6 / HZ
}
const freePort = () => new Promise(resolve => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
})

const children = []
const dir = mkdtempSync(join(tmpdir(), 'litefs-profile-serve-'))
const cleanup = () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) }
process.on('exit', cleanup)

// PROFILE_LITEFS=1: a real 2-node LiteFS cluster (its primary for `write`, its replica otherwise) instead of the fake.
let node, cluster
if (process.env.PROFILE_LITEFS === '1') {
  cluster = await startLab(join(ROOT, 'dist', 'esm'))
  const n = cluster.nodes[write ? 0 : 1]
  node = { mount: n.mount, apiUrl: n.apiUrl, close: async () => {}, position: () => n.position('app.db') }
} else {
  node = await FakeLitefs.start({ role: write ? 'primary' : 'replica', txid: 1000n })
  node.position = () => 1000n
}
const app = spawn(process.execPath, [join(BENCH, 'server.mjs'), JSON.stringify({ framework: 'fastify', plugin: false }), join(ROOT, 'dist', 'esm')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
children.push(app)
const appUrl = (await new Promise(resolve => app.on('message', m => { if (m.ready) resolve(m) }))).url
const appPort = Number(new URL(appUrl).port)

// nginx, as the bench's real-LiteFS section runs it (nginx.mjs).
const nginxBin = nginxBinary()
const nginxPort = await freePort()
writeNginxConf(dir, nginxPort, appPort)
const nginx = spawn(nginxBin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'inherit'] })
children.push(nginx)

const startServe = async () => {
  const port = await freePort()
  const cp = spawn(process.execPath, [join(ROOT, 'dist', 'esm', 'cli', 'main.js'), 'serve',
    '--addr', `127.0.0.1:${port}`, '--target', `127.0.0.1:${appPort}`, '--db', 'app.db', '--mount', node.mount, '--api', node.apiUrl, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(cp)
  return { cp, port }
}
// The floor of a hop written in Node (bench/node-hop.mjs): node:http + undici, nothing else.
const hopPort = await freePort()
const hop = spawn(process.execPath, [join(BENCH, 'node-hop.mjs'), String(hopPort), String(appPort)], { stdio: ['ignore', 'ignore', 'inherit'] })
children.push(hop)
// Below it, the floor of any hop in a Node process (bench/pipe-hop.mjs): bytes piped, no HTTP parsed.
const pipePort = await freePort()
const pipeHop = spawn(process.execPath, [join(BENCH, 'pipe-hop.mjs'), String(pipePort), String(appPort)], { stdio: ['ignore', 'ignore', 'inherit'] })
children.push(pipeHop)
// Between them, a prototype of a hop below node:http and undici (bench/head-hop.mjs): heads parsed, bytes relayed.
const headPort = await freePort()
const headHop = spawn(process.execPath, [join(BENCH, 'head-hop.mjs'), String(headPort), String(appPort)], { stdio: ['ignore', 'ignore', 'inherit'] })
children.push(headHop)
const serve = await startServe()
const servePort = serve.port
for (let i = 0; ; i++) {
  try {
    const [a, b, c] = await Promise.all([fetch(`http://127.0.0.1:${nginxPort}/items`), fetch(`http://127.0.0.1:${servePort}/litefs/health`), fetch(`http://127.0.0.1:${hopPort}/items`)])
    if (a.ok && b.status !== 0 && c.ok) break
  } catch {}
  if (i > 500) throw new Error('nginx or serve did not answer within 5 s')
  await sleep(10)
}

const headers = withCookie ? { cookie: `__txid=${hex16(node.position())}; litefs-txid=${hex16(node.position())}` } : undefined
const request = write ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hello"}' } : { headers }
const load = (port, secs) => JSON.parse(execFileSync(process.execPath, [join(BENCH, 'load.mjs'), JSON.stringify({ url: `http://127.0.0.1:${port}/items`, ...request, connections: 50, duration: secs })], { encoding: 'utf8' }))
const measure = (label, port, pids) => {
  load(port, 2) // warm-up
  const before = pids.map(cpuUs)
  const r = load(port, seconds)
  const used = pids.map((pid, i) => (cpuUs(pid) - before[i]) / r.requests)
  return { label, rps: r.rps, non2xx: r.non2xx, cpu: used }
}
const rows = [
  measure('bare app', appPort, [app.pid]),
  measure('nginx → app', nginxPort, [nginx.pid, app.pid]),
  measure('a bare Node hop (node:http + undici) → app', hopPort, [hop.pid, app.pid]),
  measure('bytes piped by Node, no HTTP parsed → app', pipePort, [pipeHop.pid, app.pid]),
  measure('a prototype: heads parsed in JS, bytes relayed → app', headPort, [headHop.pid, app.pid]),
  measure('serve → app', servePort, [serve.cp.pid, app.pid])
]
console.log(`${write ? 'write on the primary, commits nothing' : `read${withCookie ? ' with a satisfied cookie' : ', no cookie'}`}, 50 connections, ${seconds} s each after a 2 s warm-up`)
console.log('| way | req/s | CPU µs/request (proxy + app) |\n|---|---:|---|')
for (const r of rows) console.log(`| ${r.label} | ${Math.round(r.rps)} | ${r.cpu.map(c => c.toFixed(1)).join(' + ')} = ${r.cpu.reduce((s, c) => s + c, 0).toFixed(1)} |`)

serve.cp.kill('SIGTERM')
await new Promise(resolve => serve.cp.once('exit', resolve))
hop.kill('SIGTERM')
await new Promise(resolve => hop.once('exit', resolve))
// The same load on a serve and a bare Node hop under the profiler, one at a time: their shares,
// applied to the CPU each used without it.
const profiled = async (name, args, healthPath) => {
  const port = await freePort()
  const out = join(dir, name)
  const cp = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', out, '--cpu-prof-interval', '250', ...args(port)], { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(cp)
  for (let i = 0; ; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}${healthPath}`)).status !== 0) break } catch {}
    if (i > 500) throw new Error(`the profiled ${name} did not answer within 5 s`)
    await sleep(10)
  }
  load(port, 2)
  load(port, seconds)
  cp.kill('SIGTERM')
  await new Promise(resolve => cp.once('exit', resolve))
  return JSON.parse(readFileSync(join(out, readdirSync(out).find(f => f.endsWith('.cpuprofile'))), 'utf8'))
}
const serveProfile = await profiled('serve', port => [join(ROOT, 'dist', 'esm', 'cli', 'main.js'), 'serve',
  '--addr', `127.0.0.1:${port}`, '--target', `127.0.0.1:${appPort}`, '--db', 'app.db', '--mount', node.mount, '--api', node.apiUrl, '--log-level', 'warn'], '/litefs/health')
const hopProfile = await profiled('hop', port => [join(BENCH, 'node-hop.mjs'), String(port), String(appPort)], '/items')
nginx.kill('SIGTERM')
pipeHop.kill('SIGTERM')
headHop.kill('SIGTERM')
app.send({ id: 1, cmd: 'close' })
await new Promise(resolve => app.once('exit', resolve))
await node.close()
await cluster?.close()

const OWNERS = [
  ['node:http server (the client side: parse, IncomingMessage, ServerResponse)', u => /^node:_http_(server|incoming|outgoing|common)$/.test(u)],
  ['undici (the request to the app, its answer)', u => u.includes('/node_modules/undici/')],
  // Not its wrappers of the app's socket (core/early-answer.js, core/reused-connection.js), which undici's
  // reads and writes go through: those, and the syscalls under them, are undici's.
  ['litefs-proxy (core, serve)', u => u.includes('/dist/esm/') && !u.endsWith('/core/early-answer.js') && !u.endsWith('/core/reused-connection.js')]
]
/** A profile's busy time by owner (µs of its samples), and each owner's functions by self time. */
function shares (profile) {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const owner = id => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const url = byId.get(cur).callFrame.url
      const hit = OWNERS.find(([, match]) => match(url))
      if (hit !== undefined) return hit[0]
    }
    const name = byId.get(id).callFrame.functionName
    if (name === '(garbage collector)' || name === '(program)' || name === '(idle)') return name
    return 'sockets and streams (either side), timers, other'
  }
  const spent = new Map()
  const selfOf = new Map() // per owner: function → self time
  profile.samples.forEach((id, i) => {
    const o = owner(id)
    const dt = profile.timeDeltas[i] ?? 0
    spent.set(o, (spent.get(o) ?? 0) + dt)
    const f = byId.get(id).callFrame
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|esm)\//, '$1/')}:${f.lineNumber + 1}`
    const m = selfOf.get(o) ?? new Map()
    m.set(key, (m.get(key) ?? 0) + dt)
    selfOf.set(o, m)
  })
  spent.delete('(idle)')
  const total = [...spent.values()].reduce((sum, us) => sum + us, 0)
  // The stacks a function's samples were taken in, most frequent first (PROFILE_STACK).
  const stacks = name => {
    const counted = new Map()
    profile.samples.forEach(id => {
      if (byId.get(id).callFrame.functionName !== name) return
      const frames = []
      for (let cur = id; cur !== undefined; cur = parent.get(cur)) { const f = byId.get(cur).callFrame; frames.push(`${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|esm)\//, '$1/')}:${f.lineNumber + 1}`) }
      const key = frames.slice(0, 14).join('\n    ')
      counted.set(key, (counted.get(key) ?? 0) + 1)
    })
    return [...counted].sort((a, b) => b[1] - a[1]).slice(0, 3)
  }
  return { spent, selfOf, total, samples: profile.samples.length, stacks }
}
const servePerRequest = rows[5].cpu[0]
const hopPerRequest = rows[2].cpu[0]
const s = shares(serveProfile)
const h = shares(hopProfile)
const us = (x, o, perRequest) => perRequest * (x.spent.get(o) ?? 0) / x.total
console.log(`\nCPU per request of the bare Node hop (${hopPerRequest.toFixed(1)} µs) and of serve (${servePerRequest.toFixed(1)} µs), shared as their profiles share their busy samples (${h.samples} and ${s.samples} samples):`)
console.log('| where | bare Node hop µs | serve µs | serve − hop µs |\n|---|---:|---:|---:|')
const owners = [...new Set([...s.spent.keys(), ...h.spent.keys()])].sort((a, b) => us(s, b, servePerRequest) - us(s, a, servePerRequest))
for (const o of owners) {
  const a = us(h, o, hopPerRequest)
  const b = us(s, o, servePerRequest)
  console.log(`| ${o} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b - a >= 0 ? '+' : '') + (b - a).toFixed(1)} |`)
}
// PROFILE_STACK=<function name>: where serve's samples of that function were taken.
if (process.env.PROFILE_STACK !== undefined) {
  console.log(`\nserve, the stacks of ${process.env.PROFILE_STACK}:`)
  for (const [stack, n] of s.stacks(process.env.PROFILE_STACK)) console.log(`${n} samples:\n    ${stack}`)
}
// PROFILE_TOP=n: each owner's n largest self times in serve (natives it called directly count as its own).
for (const o of owners) {
  const top = [...(s.selfOf.get(o) ?? [])].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.PROFILE_TOP ?? 0))
  if (top.length === 0) continue
  console.log(`\nserve, ${o}:`)
  for (const [key, t] of top) console.log(`${(servePerRequest * t / s.total).toFixed(1).padStart(7)} µs  ${key}`)
}
