// Profile one app of the bench under load: `node bench/profile.mjs <case> [seconds]`
// where <case> is one of the keys of CASES below. Starts the app (bench/server.mjs)
// under the V8 CPU profiler, loads it with autocannon from another process, and prints
// the functions with the most self time (the .cpuprofile stays in bench/results/profiles/
// for Chrome DevTools / speedscope). Only the load is profiled (after a 2 s warm-up), through
// node:inspector in the app's process; `bench/profile-diff.mjs a b` compares two cases per request.
// PROFILE_LITEFS=1: the same cases on a real LiteFS cluster (2 nodes, needs the litefs binary
// and FUSE) instead of the fake; the primary's mount holds app.db (WAL, created empty).
import { spawn, execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FakeLitefs, hex16 } from './fake-litefs.mjs'
import { startLab } from './litefs-lab.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH)
const [name = 'write-plugin', seconds = '4'] = process.argv.slice(2)
const DIST = join(BENCH, '.dist-profile', 'esm')
rmSync(join(BENCH, '.dist-profile'), { recursive: true, force: true })
// PROFILE_DIST: a patched copy of dist/esm to try a fix before proposing it.
cpSync(process.env.PROFILE_DIST ?? join(ROOT, 'dist', 'esm'), DIST, { recursive: true })

let replica, primary, ticker, cluster
if (process.env.PROFILE_LITEFS === '1') {
  // Two more databases, for the several-databases case (L8).
  cluster = await startLab(DIST, ['cache.db', 'queue.db'])
  ;[primary, replica] = cluster.nodes.map(n => ({ mount: n.mount, apiUrl: n.apiUrl, close: async () => {} }))
} else {
  replica = await FakeLitefs.start({ role: 'replica', txid: 1000n })
  primary = await FakeLitefs.start({ role: 'primary', txid: 1000n })
  ticker = setInterval(() => primary.advance(primary.txid + 1n), 1)
}
// A cookie the replica has already reached.
const cookieTxid = cluster === undefined ? 1000n : cluster.nodes[1].position('app.db')
const POST = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hello"}' }
const rep = { db: 'app.db', mount: replica.mount, api: replica.apiUrl }
const pri = { db: 'app.db', mount: primary.mount, api: primary.apiUrl }
const CASES = {
  'read-bare': [{ framework: 'fastify', plugin: false }, {}],
  'read-plugin': [{ framework: 'fastify', plugin: true, litefs: rep }, {}],
  'read-emptyhooks': [{ framework: 'fastify', plugin: false, emptyHooks: true }, {}], // any plugin's floor
  'read-cookie-bare': [{ framework: 'fastify', plugin: false }, { headers: { cookie: `litefs-txid=${hex16(cookieTxid)}` } }],
  'read-cookie-plugin': [{ framework: 'fastify', plugin: true, litefs: rep }, { headers: { cookie: `litefs-txid=${hex16(cookieTxid)}` } }],
  'write-bare': [{ framework: 'fastify', plugin: false }, POST],
  'write-plugin': [{ framework: 'fastify', plugin: true, litefs: pri }, POST],
  'write-plugin-3db': [{ framework: 'fastify', plugin: true, litefs: { ...pri, db: ['app.db', 'cache.db', 'queue.db'] } }, POST],
  'write-plugin-files': [{ framework: 'fastify', plugin: true, litefs: { ...pri, api: false, role: 'primary' } }, POST],
  'express-read-bare': [{ framework: 'express', plugin: false }, {}],
  'express-read-plugin': [{ framework: 'express', plugin: true, litefs: rep }, {}],
  'express-write-bare': [{ framework: 'express', plugin: false }, POST],
  'http-read-bare': [{ framework: 'http', plugin: false }, {}],
  'http-write-bare': [{ framework: 'http', plugin: false }, POST],
  'express-write-plugin': [{ framework: 'express', plugin: true, litefs: pri }, POST],
  'http-write-plugin': [{ framework: 'http', plugin: true, litefs: pri }, POST],
  'http-read-plugin': [{ framework: 'http', plugin: true, litefs: rep }, {}],
  // The replica forwarding to a primary (started first, not profiled).
  'forward-replica': [{ framework: 'fastify', plugin: true, litefs: { ...rep, forward: 'http' }, primaryOrigin: 'PRIMARY' }, POST]
}
const [spec, load] = CASES[name] ?? (() => { throw new Error(`unknown case ${name}; one of ${Object.keys(CASES).join(', ')}`) })()

let primaryApp
if (spec.primaryOrigin === 'PRIMARY') {
  primaryApp = spawn(process.execPath, [join(BENCH, 'server.mjs'), JSON.stringify({ framework: 'fastify', plugin: true, litefs: pri }), DIST], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  spec.primaryOrigin = (await new Promise(resolve => primaryApp.on('message', m => { if (m.ready) resolve(m) }))).url
}
const dir = join(BENCH, 'results', 'profiles', name + (process.env.PROFILE_TAG ?? ''))
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })
const server = spawn(process.execPath, [join(BENCH, 'server.mjs'), JSON.stringify(spec), DIST], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const { url } = await new Promise(resolve => server.on('message', m => { if (m.ready) resolve(m) }))
await new Promise(resolve => setTimeout(resolve, 300)) // the /events subscription
let seq = 1
const call = (cmd, opts) => new Promise(resolve => {
  const id = ++seq
  const on = m => { if (m.id === id) { server.off('message', on); resolve(m.result) } }
  server.on('message', on)
  server.send({ id, cmd, opts })
})
const loadFor = secs => execFileSync(process.execPath, [join(BENCH, 'load.mjs'), JSON.stringify({ ...load, url: url + '/items', connections: 50, duration: secs })], { encoding: 'utf8' })
loadFor(2) // warm-up, not profiled
await call('profStart', { interval: Number(process.env.PROF_INTERVAL ?? 100) })
const out = loadFor(Number(seconds))
await call('profStop', { file: join(dir, 'load.cpuprofile') })
const result = JSON.parse(out)
console.log(`${name}: ${Math.round(result.rps)} req/s, non-2xx ${result.non2xx}`)
writeFileSync(join(dir, 'load.json'), JSON.stringify(result))
server.send({ id: 1, cmd: 'close' })
await new Promise(resolve => server.once('exit', resolve))
primaryApp?.kill()
clearInterval(ticker)
await replica.close()
await primary.close()
await cluster?.close()
rmSync(join(BENCH, '.dist-profile'), { recursive: true, force: true })

// Self time per function (and per file), from the .cpuprofile's samples.
const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'))
const byId = new Map(profile.nodes.map(n => [n.id, n]))
const counts = new Map()
for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1)
const total = profile.samples.length
const self = new Map()
for (const [id, c] of counts) {
  const f = byId.get(id).callFrame
  const key = `${f.functionName || '(anonymous)'}  ${f.url.replace(/^file:\/\//, '').replace(ROOT + '/', '')}:${f.lineNumber + 1}`
  self.set(key, (self.get(key) ?? 0) + c)
}
console.log(`profile: ${join(dir, file)} (${total} samples)`)
for (const [key, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(100 * c / total).toFixed(1).padStart(5)}%  ${key}`)
// Where the litefs-proxy code spends, inclusive of what it calls.
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const inclusive = new Map()
for (const [id, c] of counts) {
  const seen = new Set()
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const f = byId.get(cur).callFrame
    if (!f.url.includes('.dist-profile')) continue
    const key = `${f.functionName || '(anonymous)'}  ${f.url.replace(/^.*\.dist-profile\/esm\//, 'dist/esm/')}:${f.lineNumber + 1}`
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + c)
  }
}
console.log('\nlitefs-proxy functions, inclusive time:')
for (const [key, c] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${(100 * c / total).toFixed(1).padStart(5)}%  ${key}`)
