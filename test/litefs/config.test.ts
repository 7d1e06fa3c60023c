// `litefs-proxy config` on real LiteFS v0.5.14 (run by `npm run test:litefs`):
//  1. a generated 3-node static set on loopback (node-1 primary; per-node fuse
//     and data dirs and API ports): node-1 takes the lease, the replicas
//     connect, and a write on node-1's mount reaches theirs;
//  2. a generated config with a proxy: section and an exec: is accepted, and
//     LiteFS's proxy serves the exec'd app;
//  3. consul configs: LiteFS accepts them and asks Consul (none runs here) at
//     the configured URL for the configured key;
//  4. the committed example files (examples/docker-compose, kubernetes, fly),
//     unchanged, each in a private mount namespace (their own /litefs, a fresh
//     tmpfs at /var/lib/litefs, ports 20202/8080/8000): the primaries run their
//     apps for real (the Python app behind litefs-proxy serve, the Fastify app);
//     replicas, alone (their primary's name does not resolve here), mount as
//     non-candidates and try to reach it; Consul ones ask Consul.
// Nodes on the host's mount table are torn down as lib/testing/litefs-cluster.ts
// does: SIGTERM, wait, SIGKILL, then `fusermount3 -u`, then `-uz`; namespaced
// ones vanish with their namespace once their process group is killed.
import t from 'tap'
import Database from 'better-sqlite3'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { runConfig } from '../../lib/cli/config.js'
import { findLitefs } from '../../lib/testing/litefs-cluster.js'
import { leavesNothingBehind } from './leftovers.js'

const root = new URL('../../', import.meta.url).pathname
const ex = (p: string): string => join(root, 'examples', p)
const litefs = findLitefs() as string
const started = Date.now()
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`

// --- Processes and mounts ---------------------------------------------------------

interface Litefs {
  child: ChildProcess
  logs: string[]
  exited: Promise<number | null>
  /** The FUSE mount on the host's mount table, or undefined for a namespaced node. */
  mount?: string
}

const live = new Set<Litefs>()

function isMounted (dir: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === dir)
}

function unmountSync (dir: string): void {
  for (const args of [['-u', dir], ['-uz', dir]]) {
    if (!isMounted(dir)) return
    try { execFileSync('fusermount3', args, { stdio: 'ignore', timeout: 5_000 }) } catch {}
  }
}

// A crash of this test must not leave LiteFS processes or mounts behind.
process.on('exit', () => {
  for (const n of live) {
    try { process.kill(-(n.child.pid as number), 'SIGKILL') } catch {}
    if (n.mount !== undefined) unmountSync(n.mount)
  }
})

function watch (child: ChildProcess, mount?: string): Litefs {
  const logs: string[] = []
  for (const s of [child.stdout, child.stderr]) s?.on('data', (b: Buffer) => logs.push(...b.toString().split('\n').filter(Boolean)))
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const n = { child, logs, exited, mount }
  live.add(n)
  return n
}

/** `litefs mount -config <config>` on the host's mount table; `mount` is its fuse.dir. */
function startHost (config: string, mount: string, env: Record<string, string> = {}): Litefs {
  const child = spawn(litefs, ['mount', '-config', config], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  return watch(child, mount)
}

/**
 * `litefs mount -config <config>` in a private mount namespace: its own /litefs,
 * a tmpfs at /var/lib/litefs, both gone with the namespace.
 */
function startNamespaced (config: string, env: Record<string, string> = {}): Litefs {
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
    'mount -t tmpfs tmpfs /var/lib/litefs && exec "$LITEFS" mount -config "$1"', 'sh', config], {
    cwd: root, env: { ...process.env, ...env, LITEFS: litefs }, detached: true, stdio: ['ignore', 'pipe', 'pipe']
  })
  return watch(child)
}

/** SIGTERM, up to `wait` ms for the exit, then SIGKILL to the process group; then unmount. Returns the exit code (null: killed). */
async function stop (n: Litefs, wait = 10_000): Promise<number | null> {
  if (n.child.exitCode === null && n.child.signalCode === null) {
    n.child.kill('SIGTERM')
    const timer = setTimeout(() => { try { process.kill(-(n.child.pid as number), 'SIGKILL') } catch {} }, wait)
    await n.exited
    clearTimeout(timer)
  }
  // Whatever LiteFS ran (exec:) shares its process group.
  try { process.kill(-(n.child.pid as number), 'SIGKILL') } catch {}
  if (n.mount !== undefined) {
    unmountSync(n.mount)
    if (isMounted(n.mount)) throw new Error(`could not unmount ${n.mount}`)
  }
  live.delete(n)
  return n.child.exitCode
}

async function until (what: string, cond: () => Promise<boolean> | boolean, n?: Litefs, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    try { if (await cond()) return } catch {}
    if (n !== undefined && n.child.exitCode !== null) throw new Error(`LiteFS exited (${n.child.exitCode}) while waiting for ${what}:\n${n.logs.slice(-30).join('\n')}`)
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}${n === undefined ? '' : '\n' + n.logs.slice(-30).join('\n')}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function portTaken (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createConnection({ port, host: '127.0.0.1' })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

async function json (url: string): Promise<any> {
  const res = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 })
  return await res.body.json()
}

function config (argv: string[]): void {
  let err = ''
  const code = runConfig(argv, { out: () => {}, err: s => { err += s }, env: {} })
  if (code !== 0) throw new Error(`litefs-proxy config ${argv.join(' ')}: ${err}`)
}

const base = realpathSync(mkdtempSync(join(tmpdir(), 'litefs-proxy-config-')))
t.teardown(() => {
  for (const n of live) { try { process.kill(-(n.child.pid as number), 'SIGKILL') } catch {} ; if (n.mount !== undefined) unmountSync(n.mount) }
  if (![...live].some(n => n.mount !== undefined && isMounted(n.mount))) rmSync(base, { recursive: true, force: true })
})

// --- 1. A 3-node static set --------------------------------------------------------

t.test('a generated 3-node static set: node-1 primary, replicas connect, a write replicates', async t => {
  const t0 = Date.now()
  const names = ['node-1', 'node-2', 'node-3']
  const ports = [await freePort(), await freePort(), await freePort()]
  const dirs = names.map(n => join(base, 'static', n))
  for (const [i, name] of names.entries()) {
    mkdirSync(join(dirs[i], 'mnt'), { recursive: true })
    config(['--node', name, '--primary', 'node-1', '--nodes', names.join(','),
      '--fuse-dir', join(dirs[i], 'mnt'), '--data-dir', join(dirs[i], 'data'),
      '--http-addr', `127.0.0.1:${ports[i]}`, '--advertise-url', `http://127.0.0.1:${ports[0]}`,
      '--out', join(dirs[i], 'litefs.yml')])
  }
  const api = (i: number): string => `http://127.0.0.1:${ports[i]}`
  const nodes: Litefs[] = []
  t.teardown(async () => { for (const n of nodes.reverse()) await stop(n) })

  nodes.push(startHost(join(dirs[0], 'litefs.yml'), join(dirs[0], 'mnt')))
  await until('node-1 holds the lease (GET /info isPrimary)', async () => (await json(`${api(0)}/info`)).isPrimary === true, nodes[0])
  for (const i of [1, 2]) nodes.push(startHost(join(dirs[i], 'litefs.yml'), join(dirs[i], 'mnt')))
  for (const i of [1, 2]) {
    await until(`${names[i]} connects to node-1`, async () => (await json(`${api(i)}/info`)).primary.hostname === 'node-1' &&
      readFileSync(join(dirs[i], 'mnt', '.primary'), 'utf8') === 'node-1\n', nodes[i])
  }
  const info = await Promise.all([0, 1, 2].map(async i => await json(`${api(i)}/info`)))
  t.match(info[0], { isPrimary: true, candidate: true }, 'node-1: primary, the only candidate')
  for (const i of [1, 2]) t.match(info[i], { isPrimary: false, candidate: false, primary: { hostname: 'node-1' } }, `${names[i]}: replica of node-1`)
  for (const i of [1, 2]) t.equal(readFileSync(join(dirs[i], 'mnt', '.primary'), 'utf8'), 'node-1\n', `${names[i]}: .primary names node-1`)
  t.notOk(existsSync(join(dirs[0], 'mnt', '.primary')), 'the primary has no .primary file')
  const ready = Date.now() - t0

  const db = new Database(join(dirs[0], 'mnt', 'app.db'))
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)')
  db.prepare('INSERT INTO notes (text) VALUES (?)').run('written on node-1')
  db.close()
  const pos = (i: number): string => readFileSync(join(dirs[i], 'mnt', 'app.db-pos'), 'utf8')
  const w0 = Date.now()
  for (const i of [1, 2]) await until(`${names[i]} reaches node-1's position`, () => pos(i) === pos(0), nodes[i], 10_000)
  const replicated = Date.now() - w0
  for (const i of [1, 2]) {
    const replica = new Database(join(dirs[i], 'mnt', 'app.db'), { fileMustExist: true })
    try {
      t.same(replica.prepare('SELECT text FROM notes').all(), [{ text: 'written on node-1' }], `${names[i]} reads node-1's write`)
    } finally { replica.close() }
  }
  for (const n of [...nodes].reverse()) t.equal(await stop(n), 0, 'LiteFS stops cleanly on SIGTERM')
  nodes.length = 0
  t.comment(`3 nodes up in ${ready} ms; write replicated to both replicas in ${replicated} ms; total ${Date.now() - t0} ms`)
})

// --- 2. proxy: and exec: -----------------------------------------------------------

t.test('a generated config with a proxy: section and exec: is accepted by LiteFS', async t => {
  const t0 = Date.now()
  const dir = join(base, 'proxy')
  mkdirSync(join(dir, 'mnt'), { recursive: true })
  const [apiPort, proxyPort, appPort] = [await freePort(), await freePort(), await freePort()]
  writeFileSync(join(dir, 'app.mjs'), `import { createServer } from 'node:http'
createServer((req, res) => res.end('app saw ' + req.method + ' ' + req.url)).listen(Number(process.argv[2]), '127.0.0.1')
`)
  config(['--node', 'solo', '--primary', 'solo', '--fuse-dir', join(dir, 'mnt'), '--data-dir', join(dir, 'data'),
    '--http-addr', `127.0.0.1:${apiPort}`, '--retention', '1m', '--exit-on-error',
    '--proxy-addr', `127.0.0.1:${proxyPort}`, '--proxy-target', `127.0.0.1:${appPort}`, '--proxy-db', 'app.db',
    '--proxy-passthrough', '/static/*', '--proxy-always-forward', '/login', '--proxy-primary-redirect-timeout', '2s', '--proxy-max-lag', '10s',
    '--exec', `${process.execPath} ${join(dir, 'app.mjs')} ${appPort}`, '--out', join(dir, 'litefs.yml')])
  const text = readFileSync(join(dir, 'litefs.yml'), 'utf8')
  t.match(text, /\nproxy:\n {2}addr: /)
  t.match(text, /\nexec:\n {2}- cmd: /)
  const n = startHost(join(dir, 'litefs.yml'), join(dir, 'mnt'))
  t.teardown(async () => { await stop(n) })
  const proxied = async (path: string): Promise<string> => await (await request(`http://127.0.0.1:${proxyPort}${path}`, { headersTimeout: 3_000 })).body.text()
  await until("LiteFS's proxy serves the exec'd app", async () => (await proxied('/hello')) === 'app saw GET /hello', n)
  t.equal(await proxied('/static/a.css'), 'app saw GET /static/a.css', 'passthrough')
  t.ok(n.logs.some(l => l.includes(`proxy server listening on: http://127.0.0.1:${proxyPort}`)), "LiteFS started its proxy on proxy.addr")
  t.ok(n.logs.some(l => l.includes('starting background subprocess')), 'LiteFS ran exec:')
  t.notOk(n.logs.some(l => l.startsWith('ERROR')), 'no error')
  t.equal(await stop(n), 0, 'SIGTERM reaches the app through LiteFS; LiteFS exits 0')
  t.comment(`proxy/exec node: ${Date.now() - t0} ms`)
})

// --- 3. Consul: accepted, and Consul asked -----------------------------------------

t.test('a generated consul config is accepted; LiteFS asks Consul at the given URL and key (no Consul here)', async t => {
  const dir = join(base, 'consul')
  mkdirSync(join(dir, 'mnt'), { recursive: true })
  const [apiPort, consulPort] = [await freePort(), await freePort()] // nothing listens on consulPort
  config(['--lease', 'consul', '--node', '${NODE}', '--candidate=${NODE == PRIMARY_CANDIDATE}', '--promote',
    '--consul-url', `http://127.0.0.1:${consulPort}`, '--consul-key', 'litefs/${APP}', '--consul-ttl', '10s', '--consul-lock-delay', '1s',
    '--fuse-dir', join(dir, 'mnt'), '--data-dir', join(dir, 'data'), '--http-addr', `127.0.0.1:${apiPort}`, '--out', join(dir, 'litefs.yml')])
  const n = startHost(join(dir, 'litefs.yml'), join(dir, 'mnt'), { NODE: 'node-7', PRIMARY_CANDIDATE: 'node-7', APP: 'cfgtest' })
  t.teardown(async () => { await stop(n, 1_000) })
  const asked = `Get "http://127.0.0.1:${consulPort}/v1/kv/litefs/cfgtest/clusterid"`
  await until('LiteFS asks Consul for the cluster ID', () => n.logs.some(l => l.includes('cannot fetch cluster ID from \\"consul\\" lease') && l.includes(asked.replace(/"/g, '\\"'))), n)
  t.notOk(n.logs.some(l => l.startsWith('ERROR')), 'config parsed and validated: no ERROR')
  // A consul node blocked on its lease ignores SIGTERM: stop() kills it and unmounts.
  await stop(n, 1_000)
  t.pass('stopped and unmounted')
})

// --- 4. The committed example files ------------------------------------------------

t.test('the committed example litefs.yml files start real LiteFS', async t => {
  for (const port of [20202, 8080, 8000]) {
    if (await portTaken(port)) return t.fail(`port ${port} is taken: the examples use it (free it and run again)`)
  }
  mkdirSync('/litefs', { recursive: true }) // mount points; what is mounted on them stays in each namespace
  mkdirSync('/var/lib/litefs', { recursive: true })
  // `litefs-proxy` as the image installs it (npm i -g), for notes-start.
  const bin = join(base, 'bin')
  mkdirSync(bin, { recursive: true })
  writeFileSync(join(bin, 'litefs-proxy'), `#!/bin/sh\nexec "${process.execPath}" "${join(root, 'dist/esm/cli/main.js')}" "$@"\n`)
  chmodSync(join(bin, 'litefs-proxy'), 0o755)
  const PATH = `${ex('docker-compose/python')}:${bin}:${process.env.PATH ?? ''}`
  const portsFree = async (): Promise<void> => {
    for (const port of [20202, 8080, 8000]) await until(`port ${port} free again`, async () => !(await portTaken(port)), undefined, 10_000)
  }
  const health = async (): Promise<any> => await json('http://127.0.0.1:8080/litefs/health')

  await t.test('docker-compose, Python app behind litefs-proxy serve: node-1 serves notes', async t => {
    const t0 = Date.now()
    const file = ex('docker-compose/litefs/sidecar/node-1.yml')
    const n = startNamespaced(file, { PATH, LITEFS_CONFIG: file })
    t.teardown(async () => { await stop(n); await portsFree() })
    await until('litefs-proxy serve answers on :8080', async () => (await health()).role === 'primary', n, 30_000)
    const post = await request('http://127.0.0.1:8080/notes', { method: 'POST', body: JSON.stringify({ user: 'ada', text: 'from python' }) })
    t.equal(post.statusCode, 201)
    t.same(await post.body.json(), { id: 1 })
    const cookie = String(post.headers['set-cookie']).split(';')[0]
    t.match(cookie, /^__txid=[0-9a-f]{16}$/, "litefs-proxy serve set the cookie (LiteFS's proxy's name, serve's default)")
    const read = await request('http://127.0.0.1:8080/notes?user=ada', { headers: { cookie } })
    t.same(await read.body.json(), { notes: [{ id: 1, text: 'from python' }] })
    t.ok(n.logs.some(l => /listening on .*:8080, app at 127\.0\.0\.1:8000, database notes\.db in \/litefs, LiteFS API http:\/\/localhost:20202/.test(l)), "serve took fuse.dir and http.addr from the node's litefs.yml")
    t.equal(await stop(n), 0, 'SIGTERM: notes-start stops both, LiteFS exits 0')
    t.comment(`sidecar node-1: ${Date.now() - t0} ms`)
  })

  for (const [label, file, env] of [
    ['docker-compose, Fastify: node-1', ex('docker-compose/litefs/fastify/node-1.yml'), {}],
    ['kubernetes, static lease: pod app-0', ex('kubernetes/static/litefs.yml'), { POD_NAME: 'app-0' }]
  ] as const) {
    await t.test(`${label} is the primary and runs the Fastify app`, async t => {
      const t0 = Date.now()
      const n = startNamespaced(file, env)
      t.teardown(async () => { await stop(n); await portsFree() })
      await until('the app answers on :8080 as the primary', async () => (await health()).role === 'primary', n, 30_000)
      const post = await request('http://127.0.0.1:8080/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'ada', text: 'x' }) })
      t.equal(post.statusCode, 201)
      t.equal(await stop(n), 0, 'LiteFS and the app stop cleanly')
      t.comment(`${label}: ${Date.now() - t0} ms`)
    })
  }

  for (const [label, file, env, primaryApi] of [
    ['docker-compose, Python: node-2', ex('docker-compose/litefs/sidecar/node-2.yml'), { PATH }, 'http://node-1:20202'],
    ['docker-compose, Python: node-3', ex('docker-compose/litefs/sidecar/node-3.yml'), { PATH }, 'http://node-1:20202'],
    ['docker-compose, Fastify: node-2', ex('docker-compose/litefs/fastify/node-2.yml'), {}, 'http://node-1:20202'],
    ['docker-compose, Fastify: node-3', ex('docker-compose/litefs/fastify/node-3.yml'), {}, 'http://node-1:20202'],
    ['kubernetes, static lease: pod app-1', ex('kubernetes/static/litefs.yml'), { POD_NAME: 'app-1' }, 'http://app-0.app.default.svc.cluster.local:20202']
  ] as const) {
    await t.test(`${label}: a non-candidate replica looking for its primary`, async t => {
      const t0 = Date.now()
      const n = startNamespaced(file, env)
      t.teardown(async () => { await stop(n, 1_000); await portsFree() })
      await until('GET /info answers', async () => (await json('http://127.0.0.1:20202/info')).candidate === false, n)
      t.match(await json('http://127.0.0.1:20202/info'), { isPrimary: false, candidate: false })
      await until(`LiteFS tries ${primaryApi}`, () => n.logs.some(l => l.includes(primaryApi)), n)
      t.notOk(n.logs.some(l => l.startsWith('ERROR')), 'no ERROR')
      await stop(n, 1_000) // waiting for its primary, LiteFS ignores SIGTERM
      t.comment(`${label}: ${Date.now() - t0} ms`)
    })
  }

  const consulPort = await freePort()
  for (const [label, file, env, asked] of [
    ['kubernetes, consul lease: pod app-1', ex('kubernetes/consul/litefs.yml'), { POD_NAME: 'app-1' }, 'http://consul.consul.svc.cluster.local:8500/v1/kv/litefs/app/clusterid'],
    ['fly.io, consul lease', ex('fly/litefs.yml'), { FLY_MACHINE_ID: '148e21ea', FLY_APP_NAME: 'cfgtest', FLY_REGION: 'ams', PRIMARY_REGION: 'ams', FLY_CONSUL_URL: `http://127.0.0.1:${consulPort}` }, `http://127.0.0.1:${consulPort}/v1/kv/litefs/cfgtest/clusterid`]
  ] as const) {
    await t.test(`${label}: accepted; LiteFS asks Consul`, async t => {
      const t0 = Date.now()
      const n = startNamespaced(file, env)
      t.teardown(async () => { await stop(n, 1_000); await portsFree() })
      await until(`LiteFS asks ${asked}`, () => n.logs.some(l => l.includes('cannot fetch cluster ID from \\"consul\\" lease') && l.includes(asked)), n)
      t.notOk(n.logs.some(l => l.startsWith('ERROR')), 'no ERROR')
      await stop(n, 1_000)
      t.comment(`${label}: ${Date.now() - t0} ms`)
    })
  }
})

t.teardown(() => { t.comment(`test/litefs/config.test.ts: ${elapsed()}`) })

leavesNothingBehind(t)
