// The README's snippets, as written, on real LiteFS (issue 23: a newcomer's
// first hour). Each snippet is copied out of README.md and run the way the
// README says: under LiteFS's `exec`, on a fresh cluster (no database yet),
// configured by LITEFS_MOUNT, LITEFS_API, PRIMARY_URL and PORT.
//
// - item 2: on a fresh cluster the primary's app creates the database and its
//   schema; the replicas receive it.
// - item 3: a replica given the primary's plain URL (PRIMARY_URL) forwards to it.
// - item 4: a replica left with the default primaryUrl (LiteFS's hostname, which
//   does not resolve here) says `unreachable` in its health, not `ok`.
// - item 6: an app given the primary's API and a replica's mount refuses writes.
// - item 1: the primary stopped 0.3 s after a write, with the app under `exec`:
//   LiteFS stops the app first, then unmounts cleanly — each adapter's snippet.
//   Not under `exec`: LiteFS's unmount races the app's handle; the README's
//   recovery (`fusermount3 -uz`, then LiteFS again) brings the node back with
//   the app still running, and nothing acknowledged is lost.
import t from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Agent, request } from 'undici'
import { startLitefsCluster, type LitefsCluster, type LitefsNode } from '../../lib/testing/litefs-cluster.js'
import { plainEnv } from '../helpers/child-env.js'
import { leavesNothingBehind } from './leftovers.js'

const ROOT = new URL('../../', import.meta.url).pathname
const DB = 'app.db'
type Snippet = 'fastify' | 'express' | 'http'
/** An app that exits 1 when told to stop. */
const EXIT_1 = `${process.execPath} -e "process.on('SIGTERM', () => process.exit(1)); console.log('exit-1 app ready'); setInterval(() => {}, 1000)"`

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)) })
  })
}

async function until (what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await Promise.resolve().then(cond).catch(() => false))) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Whether anything (live or dead) is mounted at `dir`. */
function mounted (dir: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === dir)
}

// The snippets, as README.md has them, in a directory inside the package: they
// import `litefs-proxy/…` by name, which resolves to this package's build.
mkdirSync(join(ROOT, '.cache'), { recursive: true })
const dir = mkdtempSync(join(ROOT, '.cache', 'readme-snippets-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
for (const m of readme.matchAll(/```js (\S+)\n([\s\S]*?)```/g)) writeFileSync(join(dir, m[1]), m[2])
const snippet = (name: Snippet): string => join(dir, `${name}.mjs`)

interface Answer { status: number, body: any, cookie: string | undefined }
async function call (url: string, init: { method?: string, body?: string, cookie?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.cookie !== undefined) headers.cookie = init.cookie
  const res = await request(url, { method: init.method ?? 'GET', body: init.body, headers })
  const text = await res.body.text()
  let body: any = text
  try { body = JSON.parse(text) } catch {}
  const cookie = res.headers['set-cookie']
  return { status: res.statusCode, body, cookie: cookie === undefined ? undefined : String(cookie).split(';')[0] }
}
const write = async (url: string, text: string): Promise<Answer> => await call(`${url}/notes`, { method: 'POST', body: JSON.stringify({ text }) })

let cluster: LitefsCluster
/** What node-1's `exec` runs, read each time its LiteFS starts; undefined: no `exec`. */
let primaryApp: Snippet | 'exit-1' | undefined = 'fastify'
const ports: number[] = []
const urls: string[] = []
/** Every line each node's LiteFS (and the app it runs) wrote, whole: the harness keeps only the last 200. */
const logs: Record<string, string[]> = {}

t.before(async () => {
  for (let i = 0; i < 3; i++) ports.push(await freePort())
  for (const p of ports) urls.push(`http://127.0.0.1:${p}`)
  cluster = await startLitefsCluster({
    nodes: 3,
    // node-1 runs whichever snippet the test is at; the replicas run the Fastify one.
    exec: node => node.index > 0 ? `${process.execPath} ${snippet('fastify')}` : primaryApp === undefined ? undefined : primaryApp === 'exit-1' ? EXIT_1 : `${process.execPath} ${snippet(primaryApp)}`,
    log: (hostname, line) => { (logs[hostname] ??= []).push(line) },
    env: node => ({
      ...plainEnv(),
      LITEFS_MOUNT: node.mount,
      LITEFS_API: node.apiUrl,
      PORT: String(ports[node.index]),
      // node-2 is told the primary's app by its plain URL; node-3 keeps the
      // default, http://{hostname}:{port}, and LiteFS's hostname node-1 does not resolve here.
      ...(node.index === 1 ? { PRIMARY_URL: urls[0] } : {})
    })
  })
  for (const url of urls) await until(`the app at ${url} answers`, async () => (await call(`${url}/litefs/health`)).status > 0)
})

const closeAll = async (): Promise<void> => { await cluster?.close() }
t.teardown(closeAll)

t.test('a fresh cluster: the primary creates the database; a replica given PRIMARY_URL forwards to it (items 2, 3)', async t => {
  const first = await write(urls[0], 'on the primary')
  t.equal(first.status, 201, 'no 500 SQLITE_CANTOPEN: the snippet created the database and its table on the primary')
  t.match(first.cookie, /^litefs-txid=[0-9a-f]{16}$/)
  await cluster.waitReplicated(DB)
  const forwarded = await write(urls[1], 'on a replica')
  t.equal(forwarded.status, 201, 'PRIMARY_URL, a plain URL, reaches the primary')
  t.match(forwarded.cookie, /^litefs-txid=/)
  const read = await call(`${urls[1]}/notes`, { cookie: forwarded.cookie })
  t.same(read.body.notes.map((n: { text: string }) => n.text), ['on the primary', 'on a replica'], 'read your write on the replica')
  t.equal((await call(`${urls[1]}/litefs/health`)).body.status, 'ok')
})

t.test("a replica whose primaryUrl cannot reach the primary's app says so in its health (item 4)", async t => {
  const health = await call(`${urls[2]}/litefs/health`)
  t.equal(health.status, 503, 'not ok: no write can succeed here')
  t.match(health.body, { status: 'unreachable', role: 'replica', primary: 'node-1', unreachable: { origin: `http://node-1:${ports[2]}`, error: /ENOTFOUND|EAI_AGAIN/ } })
  const w = await write(urls[2], 'lost?')
  t.equal(w.status, 503, 'a write there fails, as health said it would')
  t.equal(w.body.code, 'LITEFS_NO_PRIMARY')
})

t.test("an app given the primary's API and a replica's mount refuses writes and says why, once (item 6)", async t => {
  const port = await freePort()
  const [primary, replica] = cluster.nodes
  let output = ''
  const app = spawn(process.execPath, [snippet('fastify')], { env: plainEnv({ LITEFS_API: primary.apiUrl, LITEFS_MOUNT: replica.mount, PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise(resolve => app.once('exit', resolve))
  t.teardown(async () => { if (app.exitCode === null) { app.kill('SIGKILL'); await exited } })
  for (const s of [app.stdout, app.stderr]) s.on('data', (b: Buffer) => { output += b })
  const url = `http://127.0.0.1:${port}`
  await until('the mismatched app answers its health', async () => (await call(`${url}/litefs/health`)).body.status === 'mismatch')
  const w = await write(url, 'into the wrong mount')
  t.equal(w.status, 503)
  t.equal(w.cookie, undefined, 'no cookie')
  t.equal(w.body.code, 'LITEFS_MISMATCH')
  t.match(w.body.error, new RegExp(`API at ${primary.apiUrl.replace(/\./g, '\\.')} says this node is the primary, but the mount ${replica.mount} is a replica's \\(its \\.primary names node-1\\)`))
  app.kill('SIGTERM')
  t.equal(await exited, 0)
  t.equal(output.split('\n').filter(l => l.includes('"code":"LITEFS_MISMATCH"') && l.includes('Writes are refused')).length, 1, 'said once, in the app\'s log')
})

t.test("an app given the primary's API and a mount that is not LiteFS's (a typo: a plain directory) writes nothing there, and says why, once", async t => {
  const port = await freePort()
  const [primary] = cluster.nodes
  const typo = mkdtempSync(join(ROOT, '.cache', 'not-litefs-'))
  t.teardown(() => rmSync(typo, { recursive: true, force: true }))
  let output = ''
  const app = spawn(process.execPath, [snippet('fastify')], { env: plainEnv({ LITEFS_API: primary.apiUrl, LITEFS_MOUNT: typo, PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise(resolve => app.once('exit', resolve))
  t.teardown(async () => { if (app.exitCode === null) { app.kill('SIGKILL'); await exited } })
  for (const s of [app.stdout, app.stderr]) s.on('data', (b: Buffer) => { output += b })
  const url = `http://127.0.0.1:${port}`
  await until('the app answers its health: unavailable', async () => (await call(`${url}/litefs/health`)).body.status === 'unavailable')
  const w = await write(url, 'into a plain directory')
  t.equal(w.status, 503, 'held for the mount, then refused (primaryRedirectTimeout)')
  t.equal(w.body.code, 'LITEFS_UNAVAILABLE')
  t.equal(w.cookie, undefined, 'no cookie')
  t.same(readdirSync(typo), [], 'the handler never ran: no database was created in the plain directory')
  app.kill('SIGTERM')
  t.equal(await exited, 0)
  t.equal(output.split('\n').filter(l => l.includes('"code":"LITEFS_MOUNT"')).length, 1, 'said once, in the app\'s log')
})

/** A node's LiteFS log lines since it was last started. */
function sinceStart (node: LitefsNode): string[] {
  const lines = logs[node.hostname] ?? []
  return lines.slice(lines.map(l => l.startsWith('[litefs-cluster] starting')).lastIndexOf(true))
}

/** Make the primary's `exec` run snippet `name` (restarting its LiteFS when it runs another), and wait until it answers. */
async function runOnPrimary (name: Snippet): Promise<void> {
  if (primaryApp === name) return
  await cluster.primary.stop()
  primaryApp = name
  await cluster.primary.start()
  await until(`the ${name} snippet answers`, async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')
}

for (const name of ['fastify', 'express', 'http'] as const) {
  t.test(`${name}: under LiteFS's exec, the primary stopped 0.3 s after a write unmounts cleanly (item 1)`, async t => {
    const node = cluster.primary
    await runOnPrimary(name)
    const w = await write(urls[0], `${name}, just before the stop`)
    t.equal(w.status, 201)
    await cluster.waitReplicated(DB)
    await sleep(300)
    await node.stop() // SIGTERM to LiteFS: it stops the app, waits for it, then unmounts
    const lines = sinceStart(node)
    t.ok(lines.includes('litefs shut down complete'), 'LiteFS says its shutdown completed (its unmount succeeded)')
    t.notOk(lines.some(l => /busy/i.test(l)), 'no "Device or resource busy"')
    t.notOk(lines.some(l => l.startsWith('[litefs-cluster] unmounted')), 'nothing left for the harness to unmount')
    t.notOk(lines.some(l => l.startsWith('ERROR')), 'the app exited as LiteFS expects (code 0)')
    await node.start()
    await until('the app is back', async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')
    const read = await call(`${urls[0]}/notes`)
    t.ok(read.body.notes.some((n: { text: string }) => n.text === `${name}, just before the stop`), 'the write made 0.3 s before the stop is there')
  })
}

// LiteFS stops its exec app and waits for it before it unmounts (and, with a
// Consul lease, before it hands the lease over). A client that keeps its
// connection alive and busy (a balancer's pool) must not hold that up: the
// answer in flight when the close began says Connection: close.
for (const name of ['fastify', 'express', 'http'] as const) {
  t.test(`${name}: a reader keeping its connection alive does not hold LiteFS's stop up`, async t => {
    const node = cluster.primary
    await runOnPrimary(name)
    const agent = new Agent({ keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 })
    t.teardown(async () => { await agent.destroy() })
    const answers: string[] = []
    let stopping = false
    const reader = (async () => {
      // Back to back, one connection kept alive; ends when the port refuses (bounded besides).
      for (let i = 0; i < 1_000_000 && !stopping; i++) {
        try {
          const res = await request(`${urls[0]}/notes`, { dispatcher: agent })
          await res.body.dump()
          answers.push(String(res.statusCode))
        } catch (err) {
          const code = String((err as { code?: string }).code)
          answers.push(code)
          if (code === 'ECONNREFUSED') return
        }
      }
    })()
    await until('the reader is reading', () => answers.length >= 20)
    const began = Date.now()
    await node.stop() // SIGTERM to LiteFS: it stops the app, waits for it, then unmounts
    const took = Date.now() - began
    stopping = true
    await reader
    const lines = sinceStart(node)
    const counts: Record<string, number> = {}
    for (const a of answers) counts[a] = (counts[a] ?? 0) + 1
    t.comment(`${name}: LiteFS stopped ${took} ms after SIGTERM with a reader keeping its connection busy; the reader got ${JSON.stringify(counts)}`)
    t.notOk(lines.some(l => l.includes('no exit within')), 'the app exited when told, not killed after the harness\'s 10 s')
    t.ok(lines.includes('litefs shut down complete'), 'LiteFS says its shutdown completed')
    // Resets before any answer, at most one at each of two instants: the drain
    // resets a connection idle at that moment (a request going out on it then
    // meets the reset, unread), and a new connection landing as the listener
    // closes is reset by the kernel. The reader then finds the port refusing.
    const other = answers.filter(a => !['200', '503', 'ECONNREFUSED'].includes(a))
    t.ok(other.length <= 2 && other.every(a => a === 'ECONNRESET' || a === 'UND_ERR_SOCKET'), `the reader got answers (200, or 503 while closing), then a refused connection (${other.join(', ') || 'no other outcome'})`)
    await node.start()
    await until('the app is back', async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')
  })
}

// The same with a client that goes quiet after its answer, as a balancer's
// pool does: the write in flight when the close began is answered with
// Connection: close, so its connection does not stay open (idle, kept alive)
// and hold the app, and LiteFS, until the app's keep-alive timeout (Fastify:
// 72 s; the harness kills LiteFS after 10 s).
for (const name of ['fastify', 'express', 'http'] as const) {
  t.test(`${name}: a write in flight when LiteFS stops is answered with Connection: close, and the stop is not held up`, async t => {
    const node = cluster.primary
    await runOnPrimary(name)
    const agent = new Agent({ keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 })
    t.teardown(async () => { await agent.destroy() })
    const body = new PassThrough()
    const answer = request(`${urls[0]}/notes`, { method: 'POST', dispatcher: agent, body, headers: { 'content-type': 'application/json' } })
    body.write('{"text": "in flight at the stop')
    await sleep(200) // the request on its way in (not a timing assertion: the close below waits for nothing)
    const began = Date.now()
    const stopped = node.stop()
    await until('the app began closing: its port refuses', async () => await refuses(ports[0]))
    body.end('"}')
    const res = await answer
    const text = await res.body.text()
    await stopped
    const took = Date.now() - began
    t.comment(`${name}: LiteFS stopped ${took} ms after SIGTERM; the write in flight got ${res.statusCode}, connection: ${String(res.headers.connection)}`)
    t.equal(res.statusCode, 201, `the write in flight was answered (${text})`)
    t.equal(res.headers.connection, 'close', 'saying Connection: close')
    const lines = sinceStart(node)
    t.notOk(lines.some(l => l.includes('no exit within')), 'the app exited when told, not killed after the harness\'s 10 s')
    t.ok(lines.includes('litefs shut down complete'), 'LiteFS says its shutdown completed')
    await node.start()
    await until('the app is back', async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')
    const read = await call(`${urls[0]}/notes`)
    t.ok(read.body.notes.some((n: { text: string }) => n.text === 'in flight at the stop'), 'and it is there after the restart')
  })
}

// A read in flight when the close begins (its head still arriving, as a slow
// client's): answered with Connection: close, and the server ends the
// connection, rather than keeping it open, idle, for the client to let go
// (Node's keep-alive timeout: 5 s; Fastify's 72 s — Fastify answers a request
// that arrives while it closes with 503 and Connection: close itself).
for (const name of ['fastify', 'express', 'http'] as const) {
  t.test(`${name}: a read in flight when LiteFS stops is answered with Connection: close, and its connection ends`, async t => {
    const node = cluster.primary
    await runOnPrimary(name)
    const socket = connect(ports[0], '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    let got = ''
    let ended = false
    socket.setEncoding('latin1').on('data', (d: string) => { got += d }).on('end', () => { ended = true }).on('error', () => { ended = true })
    socket.write('GET /notes HTTP/1.1\r\nhost: x\r\n') // the head, all but its end
    await sleep(200) // on its way in (not a timing assertion)
    const began = Date.now()
    const stopped = node.stop()
    await until('the app began closing: its port refuses', async () => await refuses(ports[0]))
    socket.write('\r\n')
    await until('the server ended the connection after its answer', () => ended)
    await stopped
    const took = Date.now() - began
    const head = got.split('\r\n\r\n')[0]
    t.comment(`${name}: LiteFS stopped ${took} ms after SIGTERM; the read in flight got ${head.split('\r\n')[0]}`)
    t.match(head, /^HTTP\/1\.1 (200|503) /, 'answered')
    t.match(head, /\r\nconnection: close/i, 'saying Connection: close')
    const lines = sinceStart(node)
    t.notOk(lines.some(l => l.includes('no exit within')), 'the app exited when told, not killed after the harness\'s 10 s')
    t.ok(lines.includes('litefs shut down complete'), 'LiteFS says its shutdown completed')
    await node.start()
    await until('the app is back', async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')
  })
}

/** True once `port` on 127.0.0.1 refuses connections. */
async function refuses (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', () => resolve(true))
  })
}

t.test('an app that exits with an error code when LiteFS stops it: LiteFS quits without unmounting (why the README says exit 0)', async t => {
  const node = cluster.primary
  await node.stop()
  primaryApp = 'exit-1'
  await node.start()
  await until('the app runs, its SIGTERM handler in place', () => sinceStart(node).includes('exit-1 app ready'))
  await node.stop()
  const lines = sinceStart(node)
  t.ok(lines.some(l => /cannot wait for exec process: exit status 1/.test(l)), 'LiteFS: "cannot wait for exec process: exit status 1"')
  t.notOk(lines.includes('litefs shut down complete'), 'no clean shutdown')
  t.ok(lines.some(l => l.startsWith('[litefs-cluster] unmounted')), 'the mount was left for the harness to remove')
  primaryApp = 'fastify'
  await node.start()
  await until('the app is back', async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')
})

t.test("not under exec: the README's recovery brings LiteFS back under the running app, nothing lost (item 1)", async t => {
  const node = cluster.primary
  // node-1 without `exec`: the app runs beside LiteFS, as a service of its own.
  await node.stop()
  primaryApp = undefined
  await node.start()
  let output = ''
  const app: ChildProcess = spawn(process.execPath, [snippet('fastify')], { env: plainEnv({ LITEFS_API: node.apiUrl, LITEFS_MOUNT: node.mount, PORT: String(ports[0]) }), stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise(resolve => app.once('exit', resolve))
  t.teardown(async () => { if (app.exitCode === null) { app.kill('SIGKILL'); await exited } })
  for (const s of [app.stdout, app.stderr]) s?.on('data', (b: Buffer) => { output += b })
  await until('the app follows LiteFS', async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')

  const acknowledged: string[] = []
  let busy = 0
  const ROUNDS = 3
  for (let round = 0; round < ROUNDS; round++) {
    const text = `round ${round}`
    const w = await write(urls[0], text)
    t.equal(w.status, 201, `${text}: written`)
    acknowledged.push(text)
    await cluster.waitReplicated(DB)
    await sleep(300)
    // Stop LiteFS alone (not through the harness, which would unmount for us).
    process.kill(node.pid as number, 'SIGTERM')
    await until('LiteFS exits', () => !node.running)
    const lines = sinceStart(node)
    if (mounted(node.mount)) {
      busy++
      t.ok(lines.some(l => /busy/i.test(l)), `${text}: LiteFS left its mount because its unmount found it busy`)
      execFileSync('fusermount3', ['-uz', node.mount]) // the README's recovery
    } else {
      t.ok(lines.includes('litefs shut down complete'), `${text}: this time the app's handle closed first`)
    }
    t.notOk(mounted(node.mount), `${text}: nothing mounted before LiteFS starts again`)
    await node.start()
    await until('the same app process follows LiteFS again', async () => (await call(`${urls[0]}/litefs/health`)).body.status === 'ok')
  }
  t.comment(`LiteFS's own unmount found the mount busy in ${busy} of ${ROUNDS} stops 0.3 s after a write, with the app not under exec`)
  const after = await write(urls[0], 'after')
  t.equal(after.status, 201, 'the app, never restarted, writes again')
  t.match(after.cookie, /^litefs-txid=/, 'cookied: it follows the new LiteFS')
  const notes = (await call(`${urls[0]}/notes`)).body.notes.map((n: { text: string }) => n.text)
  for (const text of [...acknowledged, 'after']) t.ok(notes.includes(text), `${text}: acknowledged, and there`)
  t.equal(app.exitCode, null, 'the app never died (no SIGBUS)')
  app.kill('SIGTERM')
  t.equal(await exited, 0)
  t.notMatch(output, /SQLITE_CANTOPEN|does not exist yet/)
  // Item 9: what the app's log says when LiteFS stops — its real cause, in words, once per stop.
  const said = output.split('\n').filter(l => l.includes('"code":"LITEFS_STOPPED"'))
  const stopped = said.filter(l => l.includes('"level":40'))
  t.equal(stopped.length, ROUNDS, `LITEFS_STOPPED warned once per stop:\n${said.join('\n')}`)
  for (const line of stopped) t.match(line, /LiteFS on this node stopped or is restarting \(LiteFS's event stream ended\)/)
  t.equal(said.filter(l => l.includes('LiteFS on this node is back')).length, ROUNDS, 'and once per return: "is back"')
  t.notMatch(output, /EOF/, 'no parser jargon')
})

leavesNothingBehind(t, closeAll)
