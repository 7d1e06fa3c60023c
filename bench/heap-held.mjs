// What one held read costs in heap, and what it is made of:
//   node --expose-gc bench/heap-held.mjs [N] [dist/esm of a build]
// One Fastify app in this process, in turn: bare, holding each request in an
// onRequest hook (where litefs-proxy holds a read: the scale scenario's
// baseline); bare, holding it in an async route handler (an app that waits
// itself); and with the plugin on a fake LiteFS replica, each request carrying a
// cookie ahead of it (held until readTimeout, 120 s). N connections (default
// 3,000) each send one such request from a child process, so the client's
// objects are not in this heap. Heap after a forced GC, before and after the N
// arrive, over N: per request, connection included; the plugin's share is its
// figure minus a baseline's. Then two heap snapshots of the plugin's run are
// compared by constructor (plus a closure's source location): what the growth
// is made of, per held read. Machine code (V8's `code` objects) is left out:
// it grows as V8 compiles the paths the load warms, not per request.
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeHeapSnapshot } from 'node:v8'
import { FakeLitefs } from './fake-litefs.mjs'

if (process.argv[2] === 'client') {
  // The child: N connections per message, each sending one read with a cookie the replica has not reached.
  const { connect } = await import('node:net')
  const port = Number(process.argv[3])
  const sockets = []
  process.on('message', ({ n }) => {
    for (let i = 0; i < n; i++) {
      const s = connect(port, '127.0.0.1', () => { s.write('GET /items HTTP/1.1\r\nhost: x\r\ncookie: litefs-txid=00000000000007d0\r\n\r\n') })
      s.on('error', () => {})
      sockets.push(s)
    }
  })
  await new Promise(() => {}) // until killed
}

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH)
const N = Number(process.argv[2] ?? 3000)
const DIST = process.argv[3] ?? join(ROOT, 'dist', 'esm')
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
const { default: Fastify } = await import(join(ROOT, 'node_modules', 'fastify', 'fastify.js'))
const { default: litefs } = await import(join(DIST, 'fastify.js'))

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const heapNow = () => { for (let i = 0; i < 6; i++) globalThis.gc(); return process.memoryUsage().heapUsed }
const dir = mkdtempSync(join(tmpdir(), 'litefs-heap-held-'))
const fake = await FakeLitefs.start({ role: 'replica', txid: 1000n })
const cleanup = () => rmSync(dir, { recursive: true, force: true })
process.on('exit', cleanup)

/** Self size and count per constructor (a closure: with its source location), of a heap snapshot file. */
function byConstructor (file) {
  const s = JSON.parse(readFileSync(file, 'utf8'))
  const { node_fields: fields, node_types: [types], location_fields: lfields } = s.snapshot.meta
  const at = new Map()
  for (let i = 0; i < s.locations.length; i += lfields.length) at.set(s.locations[i], s.locations.slice(i + 1, i + 4))
  const [ti, ni, si, ei] = ['type', 'name', 'self_size', 'edge_count'].map(f => fields.indexOf(f))
  const { edge_fields: efields, edge_types: [etypes] } = s.snapshot.meta
  const [eti, eni, eto] = ['type', 'name_or_index', 'to_node'].map(f => efields.indexOf(f))
  const firstEdge = new Map() // node index → index of its first edge
  for (let i = 0, e = 0; i < s.nodes.length; i += fields.length) { firstEdge.set(i, e); e += s.nodes[i + ei] * efields.length }
  const edge = (node, name) => { // the node a named edge of `node` points to
    for (let e = firstEdge.get(node), end = e + s.nodes[node + ei] * efields.length; e < end; e += efields.length) {
      const type = etypes[s.edges[e + eti]]
      if (type !== 'element' && type !== 'hidden' && s.strings[s.edges[e + eni]] === name) return s.edges[e + eto]
    }
  }
  // A closure's file: closure → shared function info → its script, whose node is named by the file's URL.
  const fileOf = node => {
    const sfi = edge(node, 'shared')
    const script = sfi === undefined ? undefined : edge(sfi, 'script_or_debug_info')
    return script === undefined ? '?' : s.strings[s.nodes[script + ni]].replace(/^file:\/\//, '').replace(ROOT + '/', '')
  }
  const out = new Map()
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + ti]]
    if (type === 'code') continue
    let name = type.includes('string') ? '(string)' : s.strings[s.nodes[i + ni]].slice(0, 40)
    if (type === 'closure' && at.has(i)) name += ` (${fileOf(i)}:${at.get(i)[1] + 1})`
    const key = `${type} ${name}`
    const e = out.get(key) ?? [0, 0]
    e[0]++
    e[1] += s.nodes[i + si]
    out.set(key, e)
  }
  return out
}

async function run (variant, snapshots) {
  const app = Fastify()
  const pending = []
  if (variant === 'plugin') await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, readTimeout: '120s' })
  if (variant === 'onRequest') app.addHook('onRequest', (_req, _reply, done) => { pending.push(done) })
  if (variant === 'handler') app.get('/items', async () => { await new Promise(resolve => pending.push(resolve)); return { ok: true } })
  else app.get('/items', async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const held = () => variant === 'plugin' ? app.litefs.stats().held : pending.length
  const client = fork(fileURLToPath(import.meta.url), ['client', String(app.server.address().port)], { stdio: 'inherit' })
  const open = async n => {
    const want = held() + n
    client.send({ n })
    for (let i = 0; held() < want; i++) {
      if (i > 6000) throw new Error(`${variant}: only ${held()} of ${want} requests held`)
      await sleep(5)
    }
  }
  await sleep(300) // the plugin's /events subscription
  await open(200) // warm the paths
  const h0 = heapNow()
  if (snapshots) writeHeapSnapshot(join(dir, '0.heapsnapshot'))
  await open(N)
  const h1 = heapNow()
  if (snapshots) writeHeapSnapshot(join(dir, '1.heapsnapshot'))
  client.kill('SIGKILL')
  for (const release of pending.splice(0)) release()
  await app.close()
  return (h1 - h0) / N
}

try {
  const onRequest = await run('onRequest', false)
  const handler = await run('handler', false)
  const plugin = await run('plugin', true)
  const r = n => `${Math.round(n).toLocaleString('en-US')} B`
  console.log(`${N} held reads, heap per request after a forced GC (connection included):`)
  console.log(`  bare Fastify, held in onRequest: ${r(onRequest)}; held in an async handler: ${r(handler)}; litefs-proxy: ${r(plugin)}`)
  console.log(`  litefs-proxy's share: ${r(plugin - onRequest)} over the onRequest baseline (the scale scenario's), ${r(plugin - handler)} over the handler's`)
  const [a, b] = ['0', '1'].map(s => byConstructor(join(dir, `${s}.heapsnapshot`)))
  const all = [...b].map(([k, [n, size]]) => [k, (n - (a.get(k)?.[0] ?? 0)) / N, (size - (a.get(k)?.[1] ?? 0)) / N])
  const rows = all.filter(([, n, size]) => size >= 8 || n >= 0.5).sort((x, y) => y[2] - x[2])
  console.log(`\nWhat the plugin's run grew by, per held read (heap snapshots; ${r(all.reduce((t, x) => t + x[2], 0))} in all, machine code left out):`)
  for (const [k, n, size] of rows.slice(0, 40)) console.log(`${size.toFixed(0).padStart(6)} B  ${n.toFixed(2).padStart(5)} ×  ${k}`)
} finally {
  await fake.close()
}
process.exit(0)
