// Where `litefs-proxy serve`'s time goes as a plain hop, beside nginx and a bare Node hop
// (bench/node-hop.mjs) doing the same hop:
//   node bench/profile-serve.mjs [seconds] [cookie|write]
// One fake LiteFS replica; bench/server.mjs's bare Fastify app; in front of it, in turn,
// nginx (proxy_pass, upstream keep-alive, one process: as the real-LiteFS section starts it)
// and `litefs-proxy serve` (the built CLI, `--log-level warn`, under `--cpu-prof`). Each is
// loaded with the same read (50 connections; `cookie`: one the replica has already reached,
// L2; `write`: a POST that commits nothing on a primary, its cookie from `-pos`, L3) for
// `seconds` after a 2 s warm-up. Prints req/s and each process's CPU per request
// (/proc: user + system, the kernel's socket work included; serve without the profiler),
// then how a second serve, under the profiler and the same load, shares its time: a sample
// is charged to the first frame up its stack that belongs to node:http's server side, to
// undici (the request to the app and its answer), or to litefs-proxy's own code; a sample
// under none of them is socket and stream plumbing (either side), the garbage collector, or
// V8/libuv itself ("(program)"). The profiler samples on a wall clock, so its shares are
// applied to the CPU measured without it, never its own sums.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FakeLitefs, hex16 } from './fake-litefs.mjs'
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

const replica = await FakeLitefs.start({ role: write ? 'primary' : 'replica', txid: 1000n })
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

const startServe = async (profiled) => {
  const port = await freePort()
  const cp = spawn(process.execPath, [...(profiled ? ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250'] : []), join(ROOT, 'dist', 'esm', 'cli', 'main.js'), 'serve',
    '--addr', `127.0.0.1:${port}`, '--target', `127.0.0.1:${appPort}`, '--db', 'app.db', '--mount', replica.mount, '--api', replica.apiUrl, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(cp)
  return { cp, port }
}
// The floor of a hop written in Node (bench/node-hop.mjs): node:http + undici, nothing else.
const hopPort = await freePort()
const hop = spawn(process.execPath, [join(BENCH, 'node-hop.mjs'), String(hopPort), String(appPort)], { stdio: ['ignore', 'ignore', 'inherit'] })
children.push(hop)
const serve = await startServe(false)
const servePort = serve.port
for (let i = 0; ; i++) {
  try {
    const [a, b, c] = await Promise.all([fetch(`http://127.0.0.1:${nginxPort}/items`), fetch(`http://127.0.0.1:${servePort}/litefs/health`), fetch(`http://127.0.0.1:${hopPort}/items`)])
    if (a.ok && b.status !== 0 && c.ok) break
  } catch {}
  if (i > 500) throw new Error('nginx or serve did not answer within 5 s')
  await sleep(10)
}

const headers = withCookie ? { cookie: `__txid=${hex16(1000n)}; litefs-txid=${hex16(1000n)}` } : undefined
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
  measure('serve → app', servePort, [serve.cp.pid, app.pid])
]
console.log(`${write ? 'write on the primary, commits nothing' : `read${withCookie ? ' with a satisfied cookie' : ', no cookie'}`}, 50 connections, ${seconds} s each after a 2 s warm-up`)
console.log('| way | req/s | CPU µs/request (proxy + app) |\n|---|---:|---|')
for (const r of rows) console.log(`| ${r.label} | ${Math.round(r.rps)} | ${r.cpu.map(c => c.toFixed(1)).join(' + ')} = ${r.cpu.reduce((s, c) => s + c, 0).toFixed(1)} |`)

serve.cp.kill('SIGTERM')
await new Promise(resolve => serve.cp.once('exit', resolve))
// The same load on a serve under the profiler: its shares, applied to the CPU measured above.
const profiledServe = await startServe(true)
for (let i = 0; ; i++) {
  try { if ((await fetch(`http://127.0.0.1:${profiledServe.port}/litefs/health`)).status !== 0) break } catch {}
  if (i > 500) throw new Error('the profiled serve did not answer within 5 s')
  await sleep(10)
}
load(profiledServe.port, 2)
load(profiledServe.port, seconds)
profiledServe.cp.kill('SIGTERM')
await new Promise(resolve => profiledServe.cp.once('exit', resolve))
nginx.kill('SIGTERM')
hop.kill('SIGTERM')
app.send({ id: 1, cmd: 'close' })
await new Promise(resolve => app.once('exit', resolve))
await replica.close()

const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'))
const byId = new Map(profile.nodes.map(n => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const OWNERS = [
  ['node:http server (the client side: parse, IncomingMessage, ServerResponse)', u => /^node:_http_(server|incoming|outgoing|common)$/.test(u)],
  ['undici (the request to the app, its answer)', u => u.includes('/node_modules/undici/')],
  // Not its early-answer guard on the app's socket (core/early-answer.js), which wraps undici's writes: those are undici's.
  ['litefs-proxy (core, serve)', u => u.includes('/dist/esm/') && !u.endsWith('/core/early-answer.js')]
]
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
// PROFILE_STACK=<function name>: the stacks its samples were taken in, most frequent first.
if (process.env.PROFILE_STACK !== undefined) {
  const stacks = new Map()
  profile.samples.forEach(id => {
    if (byId.get(id).callFrame.functionName !== process.env.PROFILE_STACK) return
    const frames = []
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) { const f = byId.get(cur).callFrame; frames.push(`${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|esm)\//, '$1/')}:${f.lineNumber + 1}`) }
    const key = frames.slice(0, 14).join('\n    ')
    stacks.set(key, (stacks.get(key) ?? 0) + 1)
  })
  for (const [stack, n] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 3)) console.log(`${n} samples:\n    ${stack}`)
}
const busy = [...spent].filter(([o]) => o !== '(idle)')
const total = busy.reduce((s, [, us]) => s + us, 0)
const perRequest = rows[3].cpu[0]
console.log(`\nserve's ${perRequest.toFixed(1)} µs of CPU per request, shared as its profile shares its busy samples (${profile.samples.length} samples):`)
for (const [o, us] of busy.sort((a, b) => b[1] - a[1])) {
  console.log(`${(perRequest * us / total).toFixed(1).padStart(7)} µs  ${(100 * us / total).toFixed(1).padStart(5)}%  ${o}`)
  // Its largest self times (natives it called directly count as its own).
  for (const [key, t] of [...(selfOf.get(o) ?? [])].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.PROFILE_TOP ?? 0))) {
    console.log(`${(perRequest * t / total).toFixed(1).padStart(15)} µs  ${key}`)
  }
}
