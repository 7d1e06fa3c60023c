// The guide's topology, run for real (issue 12): the Django guide's
// docker-compose setup without Docker. Three real LiteFS nodes (static lease,
// node 1 primary), one `litefs-proxy serve` per node (the built CLI, a child
// process) in front of a non-Node app, and nginx from Debian in front of the
// three sidecars: round-robin, no stickiness. Each node is a loopback address of
// its own (127.0.0.1, .2, .3) and uses it as its lease hostname, with the same
// ports on every node, as containers named node-1… would: so the sidecars find
// the primary's sidecar with the default `--primary-url http://{hostname}:{port}`.
//
// The apps: a stdlib WSGI app (wsgiref + sqlite3, test/litefs/guide/) run by
// LiteFS's exec, for the main measurement and the failover; a Django app
// (gunicorn, from PyPI into a venv cached under .cache/) beside it for a smaller
// round. Then the same workload behind LiteFS's own proxy (its proxy: section),
// for comparison. Every figure is printed with t.comment; GUIDE_DEBUG=1 logs
// the steps and LiteFS's output.
//
// Both apps keep a connection open: a process that closes its last SQLite
// connection and opens a new one re-initializes the WAL index (-shm), which on
// a LiteFS replica races LiteFS's rewrite of it and ends the process with
// SIGBUS (within seconds under this workload, Python's sqlite3 and better-sqlite3
// alike). So each app is stopped before its LiteFS is: by exec, or at the end
// of its round.
//
// Needs, beyond the LiteFS suite's own prerequisites: nginx, python3 with venv
// (and PyPI on the first run). Under CI a missing one fails with one line;
// elsewhere this file is skipped, visibly. scripts/install-test-deps.sh installs them.
import t from 'tap'
import Database from 'better-sqlite3'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { Agent, request } from 'undici'
import { findLitefs, startLitefsCluster, type LitefsCluster, type LitefsNode } from '../../lib/testing/litefs-cluster.js'
import { leavesNothingBehind } from './leftovers.js'

const ROOT = new URL('../../', import.meta.url).pathname
const GUIDE = join(ROOT, 'test', 'litefs', 'guide')
const CLI = join(ROOT, 'dist', 'esm', 'cli', 'main.js')
const DB = 'db.sqlite3'
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'] // node i's address and lease hostname
const DJANGO = '5.2.19' // the last Django for Python 3.11 (6.x needs 3.12)
const GUNICORN = '27.0.1'
const UNDER_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'

// --- Prerequisites ---------------------------------------------------------------

function which (name: string): string | undefined {
  // nginx lives in /usr/sbin, which a non-login PATH may lack.
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin']) {
    if (dir === '') continue
    try { accessSync(join(dir, name), constants.X_OK); return join(dir, name) } catch {}
  }
  return undefined
}

const NGINX = which('nginx')
const PYTHON = which('python3')
const missing: string[] = []
if (NGINX === undefined) missing.push('nginx not found (apt-get install -y nginx, or scripts/install-test-deps.sh)')
if (PYTHON === undefined) missing.push('python3 not found')
else if (spawnSync(PYTHON, ['-c', 'import venv, ensurepip, sqlite3, wsgiref'], { stdio: 'ignore' }).status !== 0) {
  missing.push('python3 lacks venv/ensurepip or sqlite3 (apt-get install -y python3-venv)')
}
if (findLitefs() === undefined) missing.push('the litefs binary (scripts/install-litefs.sh)')
if (!existsSync(CLI)) missing.push(`${CLI} (npm run build)`)


// --- Processes -------------------------------------------------------------------

interface Proc { name: string, child: ChildProcess, lines: string[], stopping?: boolean }
const procs = new Set<Proc>()

// Each child leads its own process group (gunicorn and nginx have workers): it is
// ended by signalling that group, by its id, never by name.
function signal (p: Proc, sig: NodeJS.Signals): void {
  if (p.child.pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return
  try { process.kill(-p.child.pid, sig) } catch {}
}
const killAll = (): void => { for (const p of procs) signal(p, 'SIGKILL') }
process.on('exit', killAll)
// 'exit' does not run when a signal ends the process (tap's timeout sends SIGTERM).
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => { killAll(); process.exit(128 + (sig === 'SIGHUP' ? 1 : sig === 'SIGINT' ? 2 : 15)) })
const exits: string[] = [] // processes that ended before teardown, for the report
const debug = (line: string): void => { if (process.env.GUIDE_DEBUG !== undefined) process.stderr.write(`[guide ${new Date().toISOString().slice(11, 23)}] ${line}\n`) }

async function stopProc (p: Proc): Promise<void> {
  p.stopping = true
  if (p.child.exitCode === null && p.child.signalCode === null) {
    const exited = new Promise(resolve => p.child.once('exit', resolve))
    signal(p, 'SIGTERM')
    const timer = setTimeout(() => signal(p, 'SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
  procs.delete(p)
}

/**
 * Spawn a process and resolve once `ready` matches a line it prints (stdout or
 * stderr) or `probe` answers true; reject when it exits first or after 30 s.
 */
async function startProc (name: string, cmd: string, args: string[], opts: { env?: Record<string, string>, cwd?: string, ready?: RegExp, probe?: () => Promise<boolean> }): Promise<Proc> {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...opts.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const p: Proc = { name, child, lines: [] }
  procs.add(p)
  child.once('exit', (code, sig) => { if (p.stopping !== true) exits.push(`${name} exited (${code ?? sig}): ${p.lines.slice(-3).join(' | ')}`) })
  let seen = false
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8')
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        p.lines.push(line)
        if (p.lines.length > 200) p.lines.shift()
        if (opts.ready?.test(line) === true) seen = true
      }
    })
  }
  const tail = (): string => `\n--- last lines of ${name} ---\n${p.lines.slice(-20).join('\n')}`
  const end = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready${tail()}`)
    if (seen || (opts.probe !== undefined && await opts.probe())) return p
    if (Date.now() > end) throw new Error(`${name} not ready within 30 s${tail()}`)
    await sleep(25)
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

async function until (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
    await sleep(20)
  }
}

async function listening (host: string, port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createConnection({ host, port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** `count` ports free on every address in HOSTS at once (a node's ports are the same on each node). */
async function sharedPorts (count: number): Promise<number[]> {
  const held: Server[] = []
  const bind = async (host: string, port: number): Promise<Server | undefined> => await new Promise(resolve => {
    const s = createServer()
    s.once('error', () => resolve(undefined))
    s.listen(port, host, () => resolve(s))
  })
  const ports: number[] = []
  try {
    while (ports.length < count) {
      const first = await bind(HOSTS[0], 0)
      if (first === undefined) continue
      held.push(first)
      const port = (first.address() as { port: number }).port
      const rest = await Promise.all(HOSTS.slice(1).map(async h => await bind(h, port)))
      for (const s of rest) if (s !== undefined) held.push(s)
      if (rest.every(s => s !== undefined)) ports.push(port)
    }
  } finally {
    await Promise.all(held.map(async s => await new Promise(resolve => s.close(resolve))))
  }
  return ports
}

// --- Python: the stdlib app, and Django in a cached venv ---------------------------

/** A venv with Django and gunicorn, pinned, made once per versions and Python under .cache/. */
function djangoVenv (): string {
  const py = spawnSync(PYTHON as string, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' }).stdout.trim()
  const dir = join(ROOT, '.cache', `django-${DJANGO}-gunicorn-${GUNICORN}-py${py}`)
  if (existsSync(join(dir, '.ready'))) return dir
  // A venv is not relocatable: built in place, and marked ready only when complete.
  rmSync(dir, { recursive: true, force: true })
  const steps: Array<[string, string[]]> = [
    [PYTHON as string, ['-m', 'venv', dir]],
    [join(dir, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', `Django==${DJANGO}`, `gunicorn==${GUNICORN}`]]
  ]
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 })
    if (r.status !== 0) throw new Error(`guide: ${cmd} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`)
  }
  writeFileSync(join(dir, '.ready'), `Django==${DJANGO} gunicorn==${GUNICORN}\n`)
  return dir
}

// --- The workload ------------------------------------------------------------------

interface Write {
  user: string
  text: string
  status: number // 0: no answer (a connection error)
  code?: string // the JSON body's code, for answers from a proxy
  error?: string // the body of a non-2xx answer
  upstream?: string // the node nginx sent the write to
  began: number
  ended: number
  read?: { status: number, seen: boolean }
}

const agent = new Agent({ connections: 64 })

function setCookies (jar: Map<string, string>, header: string | string[] | undefined): void {
  for (const c of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
    const pair = c.split(';')[0]
    const eq = pair.indexOf('=')
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
  }
}
const cookieHeader = (jar: Map<string, string>): Record<string, string> =>
  jar.size === 0 ? {} : { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') }

async function send (url: string, init: { method: string, body?: string, headers: Record<string, string> }): Promise<{ status: number, body: any, headers: Record<string, string | string[] | undefined> }> {
  try {
    // Bounded: a request nobody answers fails the run instead of hanging it.
    const res = await request(url, { ...init, dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000 })
    const text = await res.body.text()
    let body: any = text
    try { body = JSON.parse(text) } catch {}
    return { status: res.statusCode, body, headers: res.headers }
  } catch (err) {
    return { status: 0, body: String(err), headers: {} }
  }
}

/**
 * Virtual users, each with its own cookie jar, each doing write→read pairs in
 * turn: POST a unique note, then at once GET its notes with the cookies it holds.
 * Runs `perUser` pairs each, or until `running()` says stop.
 */
async function workload (base: string, prefix: string, users: number, opts: { perUser?: number, running?: () => boolean, log?: Write[] }): Promise<Write[]> {
  const writes = opts.log ?? []
  await Promise.all(Array.from({ length: users }, async (_, u) => {
    const user = `${prefix}-u${u}`
    const jar = new Map<string, string>()
    for (let i = 0; opts.perUser === undefined ? (opts.running?.() ?? false) : i < opts.perUser; i++) {
      const w: Write = { user, text: `${user}-${i}-${randomUUID()}`, status: 0, began: performance.now(), ended: 0 }
      writes.push(w)
      const res = await send(`${base}/notes`, { method: 'POST', body: JSON.stringify({ user, text: w.text }), headers: { 'content-type': 'application/json', ...cookieHeader(jar) } })
      w.ended = performance.now()
      w.status = res.status
      if (typeof res.body === 'object' && res.body !== null && typeof res.body.code === 'string') w.code = res.body.code
      w.upstream = String(res.headers['x-upstream'] ?? '')
      if (res.status < 200 || res.status > 299) w.error = (typeof res.body === 'string' ? res.body : JSON.stringify(res.body)).slice(0, 200)
      setCookies(jar, res.headers['set-cookie'])
      if (res.status < 200 || res.status > 299) {
        debug(`${w.text}: ${res.status} via ${w.upstream} ${w.error ?? ''}`)
        await sleep(100) // as a client would before trying again, instead of spinning
        continue
      }
      const read = await send(`${base}/notes?user=${user}`, { method: 'GET', headers: cookieHeader(jar) })
      setCookies(jar, read.headers['set-cookie'])
      w.read = { status: read.status, seen: read.status === 200 && Array.isArray(read.body?.notes) && read.body.notes.includes(w.text) }
    }
  }))
  return writes
}

/** How many times each note is in the primary's database, through its mount (opened, read, closed). */
function applied (node: LitefsNode, table: string, prefix: string): Map<string, number> {
  const db = new Database(join(node.mount, DB), { fileMustExist: true })
  try {
    const rows = db.prepare(`SELECT text, count(*) AS n FROM ${table} WHERE user LIKE ? GROUP BY text`).all(`${prefix}-%`) as Array<{ text: string, n: number }>
    return new Map(rows.map(r => [r.text, r.n]))
  } finally { db.close() }
}

interface Figures {
  writes: number
  ok: number // 2xx writes
  pairs: number // 2xx writes whose read was answered 200
  stale: number // 200 reads without the note, whose write is in the primary's database
  missedLost: number // 200 reads without the note, whose write never reached the primary
  lost: number // 2xx writes not in the primary's database
  doubled: number // notes in the primary's database more than once
  notOk: Record<string, number> // non-2xx writes by status (and code)
  readsNot200: Record<string, number>
  appliedNotOk: number // non-2xx writes that are in the database all the same
}

function figures (writes: Write[], rows: Map<string, number>): Figures {
  const f: Figures = { writes: writes.length, ok: 0, pairs: 0, stale: 0, missedLost: 0, lost: 0, doubled: 0, notOk: {}, readsNot200: {}, appliedNotOk: 0 }
  const bump = (o: Record<string, number>, k: string): void => { o[k] = (o[k] ?? 0) + 1 }
  for (const w of writes) {
    const n = rows.get(w.text) ?? 0
    if (n > 1) f.doubled++
    if (w.status >= 200 && w.status <= 299) {
      f.ok++
      if (n === 0) f.lost++
      if (w.read !== undefined && w.read.status === 200) {
        f.pairs++
        if (!w.read.seen) { if (n === 0) f.missedLost++; else f.stale++ }
      } else if (w.read !== undefined) bump(f.readsNot200, String(w.read.status))
    } else {
      bump(f.notOk, w.code === undefined ? String(w.status) : `${w.status} ${w.code}`)
      if (n > 0) f.appliedNotOk++
    }
  }
  return f
}

const show = (f: Figures): string =>
  `${f.writes} writes, ${f.ok} answered 2xx, ${f.pairs} write→read pairs; stale reads ${f.stale}, reads missing a write that was never applied ${f.missedLost}; lost writes ${f.lost}, doubled ${f.doubled}` +
  (Object.keys(f.notOk).length > 0 ? `; writes not 2xx: ${JSON.stringify(f.notOk)} (of which applied: ${f.appliedNotOk})` : '') +
  (Object.keys(f.readsNot200).length > 0 ? `; reads not 200: ${JSON.stringify(f.readsNot200)}` : '')

// --- The test ----------------------------------------------------------------------

function guide (): () => Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'litefs-guide-'))
  let cluster: LitefsCluster
  let litefsProxyPhase = false // when true, each node's litefs.yml gets LiteFS's own proxy: section
  let ports: { sidecar: number, djangoSidecar: number, litefsProxy: number, app: number, django: number, nginx: number, nginxDjango: number, nginxLitefs: number }
  const summary: string[] = []
  const appsListen = async (): Promise<boolean> => (await Promise.all(HOSTS.map(async h => await listening(h, ports.app)))).every(Boolean)

  let venv: string
  t.before(async () => {
    venv = djangoVenv()
    debug(`venv ${venv}`)
    const python = spawnSync(PYTHON as string, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim()
    const [app, django, sidecar, djangoSidecar, litefsProxy, nginx, nginxDjango, nginxLitefs] = await sharedPorts(8)
    ports = { sidecar, djangoSidecar, litefsProxy, app, django, nginx, nginxDjango, nginxLitefs }
    // The harness writes each node's litefs.yml and has no option for a proxy:
    // section, so LiteFS is started through a wrapper that appends this node's
    // section (from the environment) to the config before exec'ing LiteFS.
    const wrapper = join(dir, 'litefs-with-proxy')
    writeFileSync(wrapper, '#!/bin/sh\n# litefs mount -config <file>: append GUIDE_LITEFS_PROXY (a proxy: section) when set\n[ -n "$GUIDE_LITEFS_PROXY" ] && printf \'%s\\n\' "$GUIDE_LITEFS_PROXY" >> "$3"\nexec "$GUIDE_LITEFS_BIN" "$@"\n')
    chmodSync(wrapper, 0o755)
    cluster = await startLitefsCluster({
      nodes: 3,
      hostnames: HOSTS,
      binary: wrapper,
      // The WSGI app runs under LiteFS's exec, as LiteFS runs an app: started once
      // the node is ready, stopped (SIGTERM, waited for) before LiteFS unmounts.
      exec: () => `${python} ${join(GUIDE, 'wsgi_notes.py')}`,
      env: node => ({
        MOUNT: node.mount,
        HOST: HOSTS[node.index],
        PORT: String(ports.app),
        PYTHONDONTWRITEBYTECODE: '1',
        GUIDE_LITEFS_BIN: findLitefs() as string,
        GUIDE_LITEFS_PROXY: litefsProxyPhase
          ? `proxy:\n  addr: "${HOSTS[node.index]}:${ports.litefsProxy}"\n  target: "${HOSTS[node.index]}:${ports.app}"\n  db: "${DB}"`
          : ''
      }),
      log: (host, line) => { if (process.env.GUIDE_DEBUG !== undefined && !/^level=INFO msg="(\w+ )?(tx|txid|http:)/.test(line)) debug(`${host}: ${line}`) }
    })
    debug('cluster up')

    // The schema, once, through the primary's mount; the replicas receive it.
    const db = new Database(join(cluster.primary.mount, DB))
    db.pragma('journal_mode = WAL')
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, user TEXT NOT NULL, text TEXT NOT NULL); CREATE INDEX notes_user ON notes (user)')
    db.close()
    // Django's migration, once, on the primary (Django opens the file with mode=rw: it must exist).
    const migrate = spawnSync(join(venv, 'bin', 'python'), ['manage.py', 'migrate', '--noinput'], { cwd: join(GUIDE, 'django_notes'), env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', LITEFS_MOUNT: cluster.primary.mount }, encoding: 'utf8', timeout: 60_000 })
    if (migrate.status !== 0) throw new Error(`manage.py migrate failed: ${migrate.stderr}`)
    await cluster.waitReplicated(DB)
    await until('the WSGI apps listen', appsListen)

    await Promise.all(cluster.nodes.map(async (node, i) => {
      const host = HOSTS[i]
      for (const [port, target] of [[ports.sidecar, ports.app], [ports.djangoSidecar, ports.django]]) {
        await startProc(`serve@${host}:${port}`, process.execPath, [CLI, 'serve',
          '--addr', `${host}:${port}`, '--target', `${host}:${target}`, '--db', DB,
          '--mount', node.mount, '--api', node.apiUrl,
          '--primary-url', 'http://{hostname}:{port}', // the default, spelled out: lease hostname = node address
          '--primary-redirect-timeout', '10s', // as the guide recommends for failovers
          '--trust-proxy', '--log-level', 'warn'], { ready: /listening on/ })
      }
    }))
    // The Django sidecars' app (gunicorn) starts later: until then their health says so
    // (503 app-unavailable: a balancer keeps them out), with LiteFS's role all the same.
    await until('every sidecar follows LiteFS', async () => {
      for (const [port, appUp] of [[ports.sidecar, true], [ports.djangoSidecar, false]] as const) {
        for (const [i, host] of HOSTS.entries()) {
          const h = await send(`http://${host}:${port}/litefs/health`, { method: 'GET', headers: {} })
          if (h.status !== (appUp ? 200 : 503) || h.body.status !== (appUp ? 'ok' : 'app-unavailable') || h.body.role !== (i === 0 ? 'primary' : 'replica')) return false
        }
      }
      return true
    })

    // nginx, as the guide configures it: an upstream of the three nodes, no stickiness.
    const upstream = (name: string, port: number): string => `  upstream ${name} {\n${HOSTS.map(h => `    server ${h}:${port};\n`).join('')}  }\n`
    const server = (listen: number, name: string): string => `  server {\n    listen 127.0.0.1:${listen};\n    location / {\n      proxy_pass http://${name};\n      proxy_set_header Host $host;\n      proxy_set_header X-Real-IP $remote_addr;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n      proxy_set_header X-Forwarded-Proto $scheme;\n      add_header X-Upstream $upstream_addr always; # which node answered, for the report\n    }\n  }\n`
    const conf = join(dir, 'nginx.conf')
    const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    for (const sub of temps) mkdirSync(join(dir, sub))
    writeFileSync(conf, [
      process.getuid?.() === 0 ? 'user root;' : '', // workers write the temp dirs below
      'worker_processes 1;', // one worker: one round-robin over all requests
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'nginx-error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      ...temps.map(s => `  ${s}_temp_path ${join(dir, s)};`),
      upstream('sidecars', ports.sidecar) + server(ports.nginx, 'sidecars'),
      upstream('django_sidecars', ports.djangoSidecar) + server(ports.nginxDjango, 'django_sidecars'),
      upstream('litefs_proxies', ports.litefsProxy) + server(ports.nginxLitefs, 'litefs_proxies'),
      '}'
    ].join('\n') + '\n')
    await startProc('nginx', NGINX as string, ['-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', conf, '-g', 'daemon off;'], { probe: async () => await listening('127.0.0.1', ports.nginx) })
    debug('all up')
  })

  // What the leftover check closes first too; once (an undici Agent refuses a second close).
  let closing: Promise<void> | undefined
  const closeAll = async (): Promise<void> => {
    closing ??= (async () => {
      for (const p of [...procs]) await stopProc(p)
      await agent.close()
      await cluster?.close()
    })()
    await closing
  }
  t.teardown(async () => {
    if (exits.length > 0) t.comment(`processes that ended on their own:\n${exits.join('\n')}`)
    await closeAll()
    rmSync(dir, { recursive: true, force: true })
    t.comment(`guide: summary\n${summary.join('\n')}`)
  })

  /** One line per write the figures count against, to see what happened. */
  const details = (writes: Write[], rows: Map<string, number>): string[] => writes
    .filter(w => (w.status >= 200 && w.status <= 299 && (rows.get(w.text) ?? 0) !== 1) || (rows.get(w.text) ?? 0) > 1 || (w.read !== undefined && w.read.status === 200 && !w.read.seen))
    .slice(0, 10)
    .map(w => `  ${w.text}: write ${w.status} via ${w.upstream ?? '?'}, applied ${rows.get(w.text) ?? 0}×, read ${w.read?.status ?? '-'} ${w.read?.seen === true ? 'saw it' : 'did not see it'}`)

  t.test('the WSGI app behind litefs-proxy serve and nginx: write→read pairs', async t => {
    const writes = await workload(`http://127.0.0.1:${ports.nginx}`, 'wsgi', 10, { perUser: 60 })
    await cluster.waitReplicated(DB)
    const rows = applied(cluster.primary, 'notes', 'wsgi')
    const f = figures(writes, rows)
    t.comment(`litefs-proxy serve + WSGI: ${show(f)}`)
    summary.push(`litefs-proxy serve + WSGI (10 users x 60): ${show(f)}`)
    const odd = details(writes, rows)
    if (odd.length > 0) t.comment(odd.join('\n'))
    t.same(f.notOk, {}, `every write answered 2xx ${JSON.stringify(writes.filter(w => w.error !== undefined).slice(0, 3).map(w => w.error))}`)
    t.same(f.readsNot200, {}, 'every read answered 200')
    t.ok(f.pairs >= 500, `${f.pairs} write→read pairs (>= 500)`)
    t.equal(f.stale, 0, 'no stale read')
    t.equal(f.missedLost, 0, 'no read missing a lost write')
    t.equal(f.lost, 0, "every 2xx write is in the primary's database")
    t.equal(f.doubled, 0, 'none twice')
  })

  t.test('the Django app behind litefs-proxy serve and nginx', async t => {
    // Django beside the WSGI app, as its own processes for this round only: its
    // persistent connections keep files open in the mount, so it is stopped
    // before any LiteFS is.
    const django = await Promise.all(cluster.nodes.map(async (node, i) => await startProc(`django@${HOSTS[i]}`, join(venv, 'bin', 'python'),
      ['-m', 'gunicorn', '--bind', `${HOSTS[i]}:${ports.django}`, '--worker-class', 'gthread', '--threads', '8', '--no-control-socket', 'notes_site.wsgi'],
      { cwd: join(GUIDE, 'django_notes'), env: { LITEFS_MOUNT: node.mount }, ready: /Booting worker/ })))
    t.teardown(async () => { for (const p of django) await stopProc(p) })
    await until('the Django sidecars find their app up: health ok', async () => {
      for (const host of HOSTS) if ((await send(`http://${host}:${ports.djangoSidecar}/litefs/health`, { method: 'GET', headers: {} })).status !== 200) return false
      return true
    })
    const writes = await workload(`http://127.0.0.1:${ports.nginxDjango}`, 'django', 6, { perUser: 12 })
    await cluster.waitReplicated(DB)
    const rows = applied(cluster.primary, 'notes_note', 'django')
    const f = figures(writes, rows)
    t.comment(`litefs-proxy serve + Django ${DJANGO} (gunicorn): ${show(f)}`)
    summary.push(`litefs-proxy serve + Django ${DJANGO}/gunicorn (6 users x 12): ${show(f)}`)
    t.same(f.notOk, {}, `every write answered 2xx ${JSON.stringify(writes.filter(w => w.error !== undefined).slice(0, 3).map(w => w.error))}`)
    t.same(f.readsNot200, {}, 'every read answered 200')
    t.ok(f.pairs >= 50, `${f.pairs} write→read pairs (>= 50)`)
    t.equal(f.stale, 0, 'no stale read')
    t.equal(f.lost, 0, "every 2xx write is in the primary's database")
    t.equal(f.doubled, 0, 'none twice')
  })

  t.test("the primary's LiteFS stopped and started again while writes keep coming through nginx", async t => {
    const primary = cluster.primary
    await cluster.waitReplicated(DB)
    const writes: Write[] = []
    let running = true
    const USERS = 6
    const done = workload(`http://127.0.0.1:${ports.nginx}`, 'failover', USERS, { running: () => running, log: writes })
    t.teardown(async () => {
      running = false
      await done
      if (!primary.running) await primary.start() // for the next test, when a wait below failed
    })
    const answeredAfter = (after: number): number => writes.filter(w => w.began > after && w.ended > 0).length
    const pending = (): Write[] => writes.filter(w => w.ended === 0)
    await until('30 writes before the stop', () => answeredAfter(0) >= 30)
    const stopping = performance.now()
    debug('stopping the primary')
    await primary.stop() // LiteFS stops the app (exec), then itself, and unmounts
    const stopped = performance.now()
    debug('primary stopped')
    // No LiteFS primary now: writes already on their way and writes sent from
    // now on are held, on the replicas and on the stopped node alike.
    // Writes on their way to the stopped node's app when LiteFS stopped it
    // (exec) are held by its sidecar until the app is back. Writes sent from now
    // on are held too: three more users, one write each, once every sidecar
    // sees the primary gone (the stopped node: LiteFS unavailable; the replicas: no primary).
    await until('the sidecars see the primary gone', async () => {
      const health = await Promise.all(HOSTS.map(async h => (await send(`http://${h}:${ports.sidecar}/litefs/health`, { method: 'GET', headers: {} })).body))
      return health[0]?.status === 'unavailable' && health.slice(1).every(b => b?.primary === null)
    })
    const sentWhileDown = performance.now()
    const late = workload(`http://127.0.0.1:${ports.nginx}`, 'failover-late', 3, { perUser: 1, log: writes })
    await until('writes sent while the primary is down are held', () => pending().filter(w => w.began > sentWhileDown).length === 3)
    const held = pending()
    const restarting = performance.now()
    debug(`starting the primary (${held.length} writes held)`)
    await primary.start()
    const restarted = performance.now()
    debug('primary started')
    await until('30 writes begun and answered after the restart', () => answeredAfter(restarted) >= 30, 30_000)
    running = false
    await done
    await late
    await cluster.waitReplicated(DB)
    const rows = applied(primary, 'notes', 'failover')
    const f = figures(writes, rows)
    const during = figures(writes.filter(w => w.began > stopping && w.began < stopped), rows)
    const down = figures(writes.filter(w => w.began > stopped && w.began < restarting), rows)
    const through = figures(held, rows)
    const n503 = (g: Figures): number => Object.entries(g.notOk).filter(([k]) => k.startsWith('503')).reduce((n, [, v]) => n + v, 0)
    const outcome = `held while it was down: ${through.writes} (delivered 2xx after the restart: ${through.ok}, answered 503: ${n503(through)}); ` +
      `sent while LiteFS was stopping: ${during.writes} (2xx ${during.ok}), while it was down: ${down.writes} (2xx ${down.ok}, 503 ${n503(down)}); whole run: ${show(f)}`
    t.comment(`failover: ${outcome}`)
    const odd = details(writes, rows)
    if (odd.length > 0) t.comment(odd.join('\n'))
    summary.push(`failover (primary's LiteFS stopped and started, 6 users): ${outcome}`)
    t.ok(held.filter(w => w.began > stopped).length >= 3, 'writes sent while the primary was down were held')
    t.equal(through.ok + n503(through), through.writes, 'each held write was delivered or answered 503')
    t.ok(Object.keys(f.notOk).every(k => k.startsWith('503')), `every write was delivered or answered 503 ${JSON.stringify(writes.filter(w => w.error !== undefined && w.status !== 503).slice(0, 3).map(w => w.error))}`)
    t.ok(answeredAfter(restarted) >= 30, 'writes went on after the restart')
    t.equal(f.lost, 0, 'each 2xx write is applied')
    t.equal(f.doubled, 0, 'none applied twice')
    t.equal(f.appliedNotOk, 0, 'no 503 write applied')
    t.equal(f.stale, 0, 'no stale read')
  })

  t.test("the same workload behind LiteFS's own proxy (its proxy: section), for comparison", async t => {
    // LiteFS reads its config only at startup: stop the nodes, start them with proxy: sections.
    await cluster.waitReplicated(DB)
    litefsProxyPhase = true
    for (const node of [...cluster.nodes].reverse()) await node.stop()
    debug('stopped all')
    for (const node of cluster.nodes) await node.start()
    debug('started all with proxy: sections')
    await until("every LiteFS proxy and app answers", async () => {
      for (const host of HOSTS) if (!(await listening(host, ports.litefsProxy))) return false
      return await appsListen()
    })
    const writes = await workload(`http://127.0.0.1:${ports.nginxLitefs}`, 'litefs', 10, { perUser: 60 })
    debug('workload done')
    await cluster.waitReplicated(DB)
    const rows = applied(cluster.primary, 'notes', 'litefs')
    const f = figures(writes, rows)
    const replays = writes.filter(w => w.status === 200).length
    t.comment(`LiteFS's proxy + WSGI: ${show(f)}; writes answered 200 (a replica's fly-replay answer) ${replays}`)
    summary.push(`LiteFS v0.5.14's own proxy + WSGI (10 users x 60): ${show(f)}`)
    // What is true of it off Fly.io: a replica answers a write 2xx and drops it.
    t.ok(f.lost > 0, "LiteFS's proxy answered writes 2xx that never reached the primary")
    t.equal(f.doubled, 0, 'none twice')
  })
  return closeAll
}

if (missing.length > 0) {
  const line = `guide: cannot run the guide's topology: ${missing.join('; ')}`
  if (UNDER_CI) t.fail(line)
  else t.plan(0, `${line} — SKIPPED (under CI this fails)`)
} else {
  leavesNothingBehind(t, guide())
}
