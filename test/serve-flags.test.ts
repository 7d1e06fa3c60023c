// `litefs-proxy serve` as a newcomer meets it: `--api false` and the role
// (`--role`, LITEFS_ROLE, 503 LITEFS_ROLE_UNKNOWN, health `role-unknown`),
// core option errors said as the flags that set them, and --help's words on
// durations and the cookie name.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { run, type Io } from '../lib/cli/run.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { flagMessage } from '../lib/sidecar/flag-errors.js'
import { LitefsOptionsError } from '../lib/core/option-checks.js'

type Test = typeof t

function io (env: NodeJS.ProcessEnv = {}): Io & { stdout: string, stderr: string } {
  const o = { stdout: '', stderr: '', env, out: (s: string) => { o.stdout += s }, err: (s: string) => { o.stderr += s } }
  return o
}

/** The app behind serve: counts what reaches it; a POST commits on the fake LiteFS. */
async function app (t: Test, fake: FakeLitefs): Promise<{ port: number, seen: string[] }> {
  const seen: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => {
      seen.push(`${req.method as string} ${req.url as string}`)
      if (req.method === 'POST') fake.advance(fake.txid + 1n, { event: false })
      res.writeHead(req.method === 'POST' ? 201 : 200).end('ok')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { port: (server.address() as AddressInfo).port, seen }
}

/** `litefs-proxy serve` as a process; stop() sends SIGTERM and resolves with its exit code (killed at teardown if still running). */
async function serve (t: Test, args: string[]): Promise<{ url: string, output: () => string, stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [...process.execArgv, new URL('../lib/cli/main.ts', import.meta.url).pathname, 'serve', '--addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { out += b })
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    return await exited
  }
  t.teardown(stop)
  await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out) || child.exitCode !== null, 'listening')
  return { url: /listening on (http:\/\/\S+),/.exec(out)?.[1] as string, output: () => out, stop }
}

async function get (url: string, method = 'GET'): Promise<{ status: number, body: string }> {
  const res = await request(url, { method, body: method === 'POST' ? 'x' : undefined })
  return { status: res.statusCode, body: await res.body.text() }
}

// Each of its tests starts `serve` as a process (Node and tsx: seconds each on a loaded machine).
t.setTimeout(120_000)

t.test('--api false on a primary without --role: said once at startup, health 503 role-unknown, a write 503 naming --role', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 4n, api: false })
  t.teardown(async () => { await fake.close() })
  const target = await app(t, fake)
  const s = await serve(t, ['--target', `127.0.0.1:${target.port}`, '--db', 'app.db', '--mount', fake.mount, '--api', 'false', '--primary-redirect-timeout', '50ms'])
  await until(() => s.output().includes('code=LITEFS_ROLE'), 'the warning')
  const warned = s.output().split('\n').filter(l => l.includes('code=LITEFS_ROLE'))
  t.equal(warned.length, 1, 'one line')
  // In serve's terms: its flags, not the JavaScript options (Logger.words).
  t.match(warned[0], /^\S+ WARN {2}litefs-proxy: --api false and no --role option: .* has no \.primary file, so this node is the primary or a replica cut off from it .*Set --role to "primary" on the primary/)
  t.notMatch(warned[0], /"role"|api: false/, 'no JavaScript option names')

  const health = await get(`${s.url}/litefs/health`)
  t.equal(health.status, 503, 'not ok: this node cannot answer a write as the primary would')
  t.same(JSON.parse(health.body), { status: 'role-unknown', role: 'unknown', primary: null, lag: 0, txid: '0000000000000004' })

  const write = await get(`${s.url}/notes`, 'POST')
  t.equal(write.status, 503)
  const body = JSON.parse(write.body)
  t.equal(body.code, 'LITEFS_ROLE_UNKNOWN')
  t.match(body.error, /^this node's role is unknown: with api: false, .* has no \.primary file \(a primary, or a replica cut off from its primary\) and no "role" option says which \(serve: --role\); set it to "primary" on the primary\. Nothing was applied$/)
  t.notMatch(body.error, /no primary became available/)
  await until(() => /litefs-proxy: this node's role is unknown \(api: false and no "role" given\); a write was not served role=unknown/.test(s.output()), 'its log line')
  t.same(target.seen, [], 'nothing reached the app')
  await get(`${s.url}/litefs/health`)
  t.equal(s.output().split('\n').filter(l => /code=LITEFS_ROLE(\s|$)/.test(l)).length, 1, 'said once, however often asked (the request lines say LITEFS_ROLE_UNKNOWN)')
  t.equal(await s.stop(), 0, 'stops cleanly on SIGTERM')
})

t.test('--log-format json: every line it prints is JSON, the listening line included', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 4n, api: false })
  t.teardown(async () => { await fake.close() })
  const target = await app(t, fake)
  const s = await serve(t, ['--target', `127.0.0.1:${target.port}`, '--db', 'app.db', '--mount', fake.mount, '--api', 'false', '--role', 'primary', '--log-format', 'json'])
  t.equal((await get(`${s.url}/notes`, 'POST')).status, 201)
  await until(() => /"status":201/.test(s.output()), 'its request line')
  t.equal(await s.stop(), 0)
  const lines = s.output().trim().split('\n')
  for (const line of lines) t.doesNotThrow(() => JSON.parse(line), line)
  t.match(JSON.parse(lines[0]), { level: 'info', msg: /^litefs-proxy serve: listening on http:\/\/127\.0\.0\.1:\d+, app at /, url: s.url, target: `127.0.0.1:${target.port}`, db: 'app.db', mount: fake.mount, api: false })
})

t.test('runtime warnings name flags: an --api nothing answers at, a --db the mount does not have', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 4n })
  t.teardown(async () => { await fake.close() })
  const target = await app(t, fake)
  const dead = await serve(t, ['--target', `127.0.0.1:${target.port}`, '--db', 'app.db', '--mount', fake.mount, '--api', 'http://127.0.0.1:9'])
  await until(() => dead.output().includes('code=LITEFS_API_UNREACHABLE'), 'the API warning')
  t.match(dead.output(), /is LiteFS running, and is --api its http\.addr\?/)
  t.notMatch(dead.output(), /"api"/, 'not the JavaScript option')
  t.equal(await dead.stop(), 0)
  const typo = await serve(t, ['--target', `127.0.0.1:${target.port}`, '--db', 'ap.db', '--mount', fake.mount, '--api', fake.apiUrl])
  await until(() => typo.output().includes('code=LITEFS_DB'), 'the database warning')
  t.match(typo.output(), /no database "ap\.db" under .*: is --db the file name your app opens\?/, 'the database name stays quoted; the option is the flag')
  t.notMatch(typo.output(), /"db"/, 'not the JavaScript option')
  fake.advanceDb('ap.db', 3n) // the database appears after all: said clear, once (was never said)
  await until(() => /ap\.db-pos exists now: writes are cookied/.test(typo.output()), 'the warning clears')
  t.equal(typo.output().match(/code=LITEFS_DB/g)?.length, 2, 'said, and cleared, once each')
  t.equal(await typo.stop(), 0)
  // Several: a database started before it exists is said, then cleared once a write creates it.
  const later = await serve(t, ['--target', `127.0.0.1:${target.port}`, '--db', 'app.db,new.db', '--mount', fake.mount, '--api', fake.apiUrl])
  await until(() => later.output().includes('code=LITEFS_DB'), 'the database warning')
  t.match(later.output(), /no database "new\.db" under /)
  fake.advanceDb('new.db', 1n)
  await until(() => /new\.db-pos exists now: tokens include it/.test(later.output()), 'the warning clears')
  t.equal(await later.stop(), 0)
})

t.test('--api false --role primary: health ok, writes served here, nothing to warn', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 4n, api: false })
  t.teardown(async () => { await fake.close() })
  const target = await app(t, fake)
  const s = await serve(t, ['--target', `127.0.0.1:${target.port}`, '--db', 'app.db', '--mount', fake.mount, '--api', 'false', '--role', 'primary'])
  const health = await get(`${s.url}/litefs/health`)
  t.equal(health.status, 200)
  t.match(JSON.parse(health.body), { status: 'ok', role: 'primary' })
  t.equal((await get(`${s.url}/notes`, 'POST')).status, 201)
  t.same(target.seen, ['POST /notes'])
  await until(() => /status=201/.test(s.output()), 'its request line')
  t.notMatch(s.output(), /LITEFS_ROLE/)
  t.equal(await s.stop(), 0, 'stops cleanly on SIGTERM')
})

t.test('--api false on a replica without --role: fine while .primary names its primary; warned while it does not', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 4n, api: false })
  t.teardown(async () => { await fake.close() })
  const target = await app(t, fake) // an app that answers: health speaks of it too
  const lines: string[] = []
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${target.port}`, db: 'app.db', mount: fake.mount, api: false, forward: 'fly-replay', logger: lineLogger('info', 'json', l => lines.push(l)) })
  await s.listen()
  t.teardown(async () => { await s.close() })
  const said = (): Array<{ level: string, code: string, msg: string }> => lines.map(l => JSON.parse(l)).filter(l => l.code === 'LITEFS_ROLE')
  let health = await get(`${s.url}/litefs/health`)
  t.match(JSON.parse(health.body), { status: 'ok', role: 'replica', primary: 'node-a' })
  t.same(said(), [], 'a replica needs no role: .primary says it')
  fake.losePrimary() // cut off: no .primary, as on a primary
  health = await get(`${s.url}/litefs/health`)
  t.equal(health.status, 503)
  t.match(JSON.parse(health.body), { status: 'role-unknown', role: 'unknown' })
  t.match(said(), [{ level: 'warn', msg: /api: false and no "role" option/ }])
  fake.announcePrimary('node-b')
  await get(`${s.url}/litefs/health`)
  await get(`${s.url}/litefs/health`)
  t.match(said(), [{ level: 'warn' }, { level: 'info', msg: /\.primary names the primary \(node-b\): this node is a replica, its role known/ }], 'cleared once')
})

t.test('bad flags: one line naming the flag and the value as typed, exit 2', async t => {
  const base = ['serve', '--addr', ':1', '--target', 'x:1']
  for (const [args, line] of [
    [['--db', '/litefs/app.db'], /^--db: expected a database file name in the mount \(app\.db\), several separated by commas .*; each a file name of at most 100 characters percent-encoded, got "\/litefs\/app\.db"$/],
    [['--db', 'app.db,app.db'], /^--db: expected .*\(app\.db,\*\), each named once, got "app\.db,app\.db"$/],
    [['--db', '*,app.db'], /^--db: expected .*; "\*" may only come last, got "\*,app\.db"$/],
    [['--db', 'app.db', '--passthrough', '/ok', '--passthrough', 'static/*'], /^--passthrough: expected a path glob starting with \/, without \? or # \(the query is not compared\), e\.g\. '\/static\/\*' \(\* spans \/\), got "\/ok", "static\/\*"$/],
    [['--db', 'app.db', '--always-forward', 'cb'], /^--always-forward: expected a path glob starting with \//],
    [['--db', 'app.db', '--durable-path', 'x'], /^--durable-path: expected a path glob starting with \/.*, got "x"$/],
    [['--db', 'app.db', '--txid-timeout', '0'], /^--txid-timeout: expected a positive duration such as 5s, 500ms or 1m30s \(a bare number is milliseconds\), got "0"$/],
    [['--db', 'app.db', '--cookie-max-age', '0s'], /^--cookie-max-age: expected a duration of at least 1s, such as 5m \(a Max-Age of 0 deletes the cookie; a bare number is milliseconds\), got "0s"$/],
    [['--db', 'app.db', '--cookie-max-age', '300'], /^--cookie-max-age: expected a duration of at least 1s.*, got "300"$/],
    [['--db', 'app.db', '--secret', 'short', '--secret', 'alsoshort'], /^--secret: expected at least 16 characters \(repeat the flag to rotate: the first signs\), got one of 5 characters, one of 9 characters$/],
    [['--db', 'app.db', '--peer-cookie', 'foo'], /^--peer-cookie: expected __txid \(LiteFS's proxy\) or txnum \(litefs-js\), got "foo"$/],
    [['--db', 'app.db', '--health-path', 'x'], /^--health-path: expected a path starting with \/ \(no query, fragment or space\), or false, got "x"$/],
    [['--db', 'app.db', '--health-path', '/h?x'], /^--health-path: expected a path .*, got "\/h\?x"$/],
    [['--db', 'app.db', '--primary-url', 'http://{host}:8080'], /^--primary-url: expected a URL whose placeholders are "\{hostname\}" and "\{port\}" \(not "\{host\}"\), got "http:\/\/\{host\}:8080"$/],
    [['--db', 'app.db', '--primary-url', 'node-1=http://a:1,node-1=http://b:1'], /^--primary-url: "node-1" is mapped twice \(http:\/\/a:1 and http:\/\/b:1\); give each node one URL$/],
    [['--db', 'app.db', '--primary-url', 'node-1=ftp://a:1'], /^--primary-url: expected a URL, a template with \{hostname\}, or host=url pairs separated by commas, got "node-1=ftp:\/\/a:1"$/],
    [['--db', 'app.db', '--cookie-name', 'a;b'], /^--cookie-name: expected a cookie name/],
    [['--db', 'app.db', '--token-header', 'a b'], /^--token-header: expected a header name .*, or false, got "a b"$/],
    [['--db', 'app.db', '--token-header', 'Content-Type'], /^--token-header: expected a header name of its own .*such as content-type\), or false, got "Content-Type"$/],
    [['--db', 'app.db', '--token-header', 'litefs-stale'], /^--token-header: expected a header name of its own .*, or false, got "litefs-stale"$/], // was accepted: a stale answer carried litefs-stale twice
    [['--db', 'app.db', '--peer-name='], /^--peer-name: expected this node's name among its peers \(1–253 characters\), got ""$/],
    [['--db', 'app.db', '--mount='], /^--mount: expected a directory path/],
    [['--db', 'app.db', '--api', 'ftp://x'], /^--api: expected LiteFS's API as an http\(s\) URL \(its http\.addr\), or false, got "ftp:\/\/x"$/],
    [['--db', 'app.db', '--consul-url', 'http://c:1', '--consul-key', 'k', '--consul-lock-delay', '100ms'], /^--consul-lock-delay: expected a duration of at least 300ms.*, got "100ms"$/],
    [['--db', 'app.db', '--consul-url', 'nope', '--consul-key', 'k'], /^--consul-url: expected Consul's http\(s\) URL/],
    [['--db', 'app.db', '--txid-timeout', '720h'], /^--txid-timeout: expected a duration at most 24\.8 days \(2147483647 ms, the longest timer Node keeps\), got "720h"$/],
    [['--db', 'app.db', '--idle-timeout', '30000h'], /^--idle-timeout: expected a duration at most 24\.8 days/],
    [['--db', 'app.db', '--target-timeout', '3000000000'], /^--target-timeout: expected a duration at most 24\.8 days/],
    [['--db', 'app.db', '--consul-url', 'http://c:1', '--consul-key', '/'], /^--consul-key: expected the lease key/],
    [['--db', 'app.db', '--api', 'false', '--consul-url', 'http://c:1', '--consul-key', 'k'], /^lease\.hostname in --config is needed with --api false \(/],
    [['--db', 'app.db', '--role', 'boss', '--api', 'false'], /^--role: expected primary or replica, got "boss"$/],
    [['--db', 'app.db', '--role', 'primary'], /^--role applies only with --api false \(with its API, LiteFS says the role\)$/],
    [['--db', 'a.db,b.db', '--durability', '--peer-secret', 'aaaaaaaaaaaaaaaa'], /^--durability needs --db to name one database, got "a\.db,b\.db": replica reports/],
    [['--db', '*', '--peer-secret', 'aaaaaaaaaaaaaaaa'], /^--peer-secret \(replica reports\) follows the main database: name it first in --db, e.g\. "app\.db,\*"$/],
    [['--db', 'app.db', '--peer-secret', 'short'], /^--peer-secret: expected at least 16 characters .*, got one of 5 characters$/]
  ] as const) {
    const o = io()
    t.equal(await run([...base, ...args], o), 2, args.join(' '))
    t.match(o.stderr, /^litefs-proxy serve: [^\n]*\n$/, 'one line')
    t.match(o.stderr.slice('litefs-proxy serve: '.length, -1), line, args.join(' '))
    t.notMatch(o.stderr, /option "|short|alsoshort/, 'no JavaScript option name, no secret')
  }
  for (const [args, line] of [
    [['--addr', 'x', '--target', 'x:1', '--db', 'd'], 'litefs-proxy serve: --addr: expected where to listen: :port or host:port, e.g. :8080, got "x"\n'],
    [['--addr', ':1', '--target', 'x', '--db', 'd'], 'litefs-proxy serve: --target: expected the app\'s host:port or http://host:port, e.g. localhost:8000, got "x"\n']
  ] as const) {
    const o = io()
    t.equal(await run(['serve', ...args], o), 2)
    t.equal(o.stderr, line)
  }
})

t.test('values from --config or the environment: the flag, and where the value came from', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'serve-flags-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const yml = join(dir, 'litefs.yml')
  writeFileSync(yml, 'proxy:\n  addr: ":1"\n  target: "x:1"\n  db: "app.db"\n  passthrough: ["static/*"]\n')
  let o = io()
  t.equal(await run(['serve', '--config', yml], o), 2)
  t.equal(o.stderr, 'litefs-proxy serve: --passthrough (proxy.passthrough in --config): expected a path glob starting with /, without ? or # (the query is not compared), e.g. \'/static/*\' (* spans /), got "static/*"\n')
  writeFileSync(yml, 'fuse:\n  dir: "/litefs"\nlease:\n  type: consul\n  hostname: n1\n  consul:\n    url: "http://c:1"\n    key: k\n    lock-delay: 10ms\nproxy:\n  addr: ":1"\n  target: "x:1"\n  db: "app.db"\n')
  o = io()
  t.equal(await run(['serve', '--config', yml], o), 2)
  t.match(o.stderr, /^litefs-proxy serve: --consul-lock-delay \(lease\.consul\.lock-delay in --config\): expected a duration of at least 300ms.*, got "10ms"\n$/)
  writeFileSync(yml, 'fuse:\n  dir: ""\nproxy:\n  addr: ":1"\n  target: "x:1"\n  db: "app.db"\n')
  o = io()
  t.equal(await run(['serve', '--config', yml], o), 2)
  t.match(o.stderr, /^litefs-proxy serve: --mount \(fuse\.dir in --config\): expected a directory path/)
  o = io({ LITEFS_PROXY_SECRET: 'short', LITEFS_PROXY_PEER_SECRET: 'tiny' })
  t.equal(await run(['serve', '--addr', ':1', '--target', 'x:1', '--db', 'app.db'], o), 2)
  t.equal(o.stderr, 'litefs-proxy serve: --secret (LITEFS_PROXY_SECRET): expected at least 16 characters (repeat the flag to rotate: the first signs), got one of 5 characters\n')
  o = io({ LITEFS_PROXY_PEER_SECRET: 'tiny' })
  t.equal(await run(['serve', '--addr', ':1', '--target', 'x:1', '--db', 'app.db'], o), 2)
  t.match(o.stderr, /^litefs-proxy serve: --peer-secret \(LITEFS_PROXY_PEER_SECRET\): expected at least 16 characters .*, got one of 4 characters\n$/)
})

t.test('every value read from --config says where it came from when it is wrong', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'serve-flags-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const yml = join(dir, 'litefs.yml')
  const base: Record<string, string> = { addr: '":1"', target: '"x:1"', db: '"app.db"' }
  // Each key of the proxy: section (settings.ts FLAGS' yaml), then the rest of the file serve reads.
  const proxyCases: Array<[string, string, RegExp]> = [
    ['addr', '"nowhere"', /^--addr \(proxy\.addr in --config\): expected where to listen.*, got "nowhere"$/],
    ['target', '"ftp://x:1"', /^--target \(proxy\.target in --config\): expected the app's host:port.*, got "ftp:\/\/x:1"$/],
    ['db', '"a/b.db"', /^--db \(proxy\.db in --config\): expected a database file name.*, got "a\/b\.db"$/],
    ['passthrough', '["static/*"]', /^--passthrough \(proxy\.passthrough in --config\): expected a path glob/],
    ['always-forward', '["oauth/*"]', /^--always-forward \(proxy\.always-forward in --config\): expected a path glob.*, got "oauth\/\*"$/],
    ['primary-redirect-timeout', '"abc"', /^--primary-redirect-timeout \(proxy\.primary-redirect-timeout in --config\): expected a duration such as 10s.*, got "abc"$/],
    ['primary-redirect-timeout', '"9999h"', /^--primary-redirect-timeout \(proxy\.primary-redirect-timeout in --config\): expected a duration .*, got "9999h"$/],
    ['max-lag', '"abc"', /^--max-lag \(proxy\.max-lag in --config\): expected a duration such as 10s.*, got "abc"$/],
    ['read-timeout', '"abc"', /^--read-timeout \(proxy\.read-timeout in --config\): expected a duration/],
    ['read-header-timeout', '"abc"', /^--read-header-timeout \(proxy\.read-header-timeout in --config\): expected a duration/],
    ['write-timeout', '"abc"', /^--write-timeout \(proxy\.write-timeout in --config\): expected a duration/],
    ['idle-timeout', '"abc"', /^--idle-timeout \(proxy\.idle-timeout in --config\): expected a duration/],
    ['debug', '"yes"', /^--config \S+: proxy\.debug must be true or false$/]
  ]
  const said = async (text: string): Promise<string> => {
    writeFileSync(yml, text)
    const o = io()
    t.equal(await run(['serve', '--config', yml], o), 2, text)
    return o.stderr.replace(/^litefs-proxy serve: /, '').replace(/\n$/, '')
  }
  const proxyOf = (key: string, value: string): string => 'proxy:\n' + Object.entries({ ...base, [key]: value }).map(([k, v]) => `  ${k}: ${v}\n`).join('')
  for (const [key, value, message] of proxyCases) t.match(await said(proxyOf(key, value)), message, `proxy.${key}: ${value}`)
  const lease = (consul: string): string => `lease:\n  type: consul\n  hostname: n1\n  consul:\n${consul}` + proxyOf('db', '"app.db"')
  t.match(await said(lease('    url: "http://c:1"\n    key: k\n    lock-delay: abc\n')), /^--consul-lock-delay \(lease\.consul\.lock-delay in --config\): expected a duration such as 10s.*, got "abc"$/)
  t.match(await said(lease('    url: "ftp://c"\n    key: k\n')), /^--consul-url \(lease\.consul\.url in --config\): expected Consul's http\(s\) URL.*, got "ftp:\/\/c"$/)
  t.match(await said(lease('    url: "http://c:1"\n    key: ""\n')), /^--consul-key \(lease\.consul\.key in --config\): expected the lease key.*, got ""$/)
  t.match(await said('http:\n  addr: "nohost"\n' + proxyOf('db', '"app.db"')), /^--config \S+: http\.addr "nohost" is not host:port$/)
  t.match(await said('http:\n  addr: "bad host:1"\n' + proxyOf('db', '"app.db"')), /^--api \(http\.addr in --config\): expected LiteFS's API as an http\(s\) URL.*, got "http:\/\/bad host:1"$/)
  // A flag wins over the file, and its error is the flag's own.
  writeFileSync(yml, proxyOf('max-lag', '"10s"'))
  const o = io()
  t.equal(await run(['serve', '--config', yml, '--max-lag', 'abc'], o), 2)
  t.equal(o.stderr, 'litefs-proxy serve: --max-lag: expected a duration such as 10s, 500ms or 1m30s, got "abc"\n')
})

t.test('flagMessage: what is not a core option error, or names no flag, passes in flag terms', async t => {
  t.equal(flagMessage(new Error('litefs-proxy: boom'), {}), 'boom')
  t.equal(flagMessage(new LitefsOptionsError('litefs-proxy: option "db" is missing'), {}), 'option "db" is missing', 'no option named: as it is')
  t.equal(flagMessage(new LitefsOptionsError('litefs-proxy: option "consul" applies to a LiteFS mount, not to a given "state"', 'consul'), {}), '--consul-url applies to a LiteFS mount, not to a given "state"')
  t.equal(flagMessage(new LitefsOptionsError('litefs-proxy: option "pollInterval" must be x, got 0', 'pollInterval', 'x'), {}), 'option "pollInterval" must be x, got 0', 'an option serve never sets: as it is')
  t.equal(flagMessage(new LitefsOptionsError('litefs-proxy: option "role" must be "primary" or "replica", got 1', 'role', '"primary" or "replica"'), {}), '--role: expected primary or replica', 'a value not given: what is expected')
})

t.test('--help: --role, durations without a unit, the cookie name', async t => {
  const o = io()
  t.equal(await run(['serve', '--help'], o), 0)
  t.match(o.stdout, /a bare number is\nmilliseconds \(--txid-timeout 5 is 5 ms, not 5 s\)/)
  t.match(o.stdout, /--role <value> +with --api false: primary or replica/)
  t.match(o.stdout, /--cookie-name <value> +the TXID cookie's name, default __txid \(LiteFS's proxy's\); the adapters' default is litefs-txid\n/)
})

t.test('durations that are never timers take any length: --max-lag, --cookie-max-age', async t => {
  const { serveOptions } = await import('../lib/sidecar/settings.js')
  const o = serveOptions(['--addr', ':8080', '--target', 'localhost:8081', '--db', 'app.db', '--max-lag', '720h', '--cookie-max-age', '9000h'], {}, () => {})
  t.equal(o?.maxLag, 720 * 3_600_000)
  t.equal(o?.cookieMaxAge, 9000 * 3_600_000)
})
