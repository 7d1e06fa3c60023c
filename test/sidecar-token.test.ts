// `serve --token-path` (issue 22 item 4, token-endpoint.ts): a job outside
// HTTP behind `serve` POSTs for the token after its write and GETs to wait for
// one before it reads, through real sockets, on two fake LiteFS nodes.
import t from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { createSidecar, type Sidecar, type SidecarOptions } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { serveOptions } from '../lib/sidecar/settings.js'
import { run, type Io } from '../lib/cli/run.js'
import { NodeState } from '../lib/core/node-state.js'
import { SetMount } from './helpers/set-mount.js'
import { fakePair, startSidecar } from './helpers/sidecars.js'

type Test = typeof t

const PATH = '/litefs/token'
const SECRET = 'job-secret-0123456789'

interface App { url: string, port: number, seen: string[], server: Server }

/** The app behind a sidecar: records each request's method and path; a POST commits on its node's fake LiteFS. */
async function app (t: Test, fake: FakeLitefs | undefined): Promise<App> {
  const seen: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => {
      seen.push(`${req.method as string} ${req.url as string}`)
      if (req.method === 'POST' && fake !== undefined) fake.advance(fake.txid + 1n, { event: false })
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'text/plain' }).end('app')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  const port = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${port}`, port, seen, server }
}

const sidecar = startSidecar

interface Pair { pfake: FakeLitefs, rfake: FakeLitefs, papp: App, rapp: App, primary: Sidecar, replica: Sidecar, lines: string[] }

/** A primary (TXID 10) and a replica (TXID 5), each with serve and an app; `opts` on both, `replicaOpts` on the replica. */
async function pair (t: Test, opts: Partial<SidecarOptions> = { tokenPath: PATH }, replicaOpts: Partial<SidecarOptions> = {}): Promise<Pair> {
  const { pfake, rfake } = await fakePair(t)
  const papp = await app(t, pfake)
  const rapp = await app(t, rfake)
  const lines: string[] = []
  const primary = await sidecar(t, pfake, `localhost:${papp.port}`, opts, lines)
  const replica = await sidecar(t, rfake, `127.0.0.1:${rapp.port}`, { primaryUrl: () => primary.url, ...opts, ...replicaOpts }, lines)
  return { pfake, rfake, papp, rapp, primary, replica, lines }
}

const lineOf = (lines: string[], url: string, method: string, role?: string): Record<string, unknown> | undefined =>
  lines.map(l => JSON.parse(l) as Record<string, unknown>).find(l => l.msg === 'request' && l.path === url && l.method === method && (role === undefined || l.role === role))

t.test('POST on the primary: the token its cookie carries after the commit just before the call; never the app', async t => {
  const { pfake, papp, primary, lines } = await pair(t)
  // A job commits (its own connection to SQLite), then asks: the position includes that commit.
  pfake.advance(12n, { event: false })
  const res = await request(`${primary.url}${PATH}`, { method: 'POST' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const text = await res.body.text()
  t.notOk(text.includes('\n'), 'one line')
  t.same(JSON.parse(text), { token: '000000000000000c', txid: '000000000000000c' })
  t.equal(res.headers['litefs-txid'], '000000000000000c', 'the token header, as any write')
  t.same(res.headers['set-cookie'], '__txid=000000000000000c; Path=/; HttpOnly; SameSite=Lax; Max-Age=300', 'and the cookie')
  // The same value an app write's cookie carries after its commit.
  const write = await request(`${primary.url}/notes`, { method: 'POST', body: 'x' })
  await write.body.dump()
  const cookie = /__txid=([0-9a-f]+)/.exec(String(write.headers['set-cookie']))?.[1]
  const after = await request(`${primary.url}${PATH}`, { method: 'POST', body: 'a body is ignored' })
  t.equal((await after.body.json() as { token: string }).token, cookie, 'equal to what the cookie carried after that commit')
  t.same(papp.seen, ['POST /notes'], 'the app never saw the token path')
  t.match(lineOf(lines, PATH, 'POST'), { status: 200, kind: 'write', role: 'primary', txid: '000000000000000c' }, 'a line as for any request')
})

t.test('POST on a replica: forwarded to the primary\'s serve, which answers its position', async t => {
  const { pfake, papp, rapp, replica, lines } = await pair(t)
  pfake.advance(20n, { event: false })
  const res = await request(`${replica.url}${PATH}`, { method: 'POST' })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { token: '0000000000000014', txid: '0000000000000014' })
  t.equal(res.headers['litefs-txid'], '0000000000000014')
  t.same([...papp.seen, ...rapp.seen], [], 'no app saw it')
  const forwarded = lines.map(l => JSON.parse(l) as Record<string, unknown>).filter(l => l.path === PATH)
  t.equal(forwarded.length, 2, 'a line on each node')
  t.same(forwarded.map(l => [l.role, l.kind, l.status]), [['primary', 'write', 200], ['replica', 'write', 200]], 'served on the primary, for the replica')
})

t.test('GET with the token on a replica: held until the replica has it, then 200; without one, at once', async t => {
  const { rfake, rapp, replica, primary, lines } = await pair(t)
  const token = (await (await request(`${primary.url}${PATH}`, { method: 'POST' })).body.json() as { token: string }).token
  t.equal(token, '000000000000000a')
  for (const [how, headers] of [['token header', { 'litefs-txid': token }], ['cookie', { cookie: `__txid=${token}` }]] as const) {
    rfake.advance(5n)
    await until(() => replica.core.state.position('app.db') === 5n)
    let done = false
    const wait = request(`${replica.url}${PATH}`, { headers }).then(r => { done = true; return r })
    await until(() => replica.core.state.waiterCount === 1)
    t.notOk(done, `${how}: held`)
    rfake.advance(10n)
    const res = await wait
    t.equal(res.statusCode, 200, how)
    const body = await res.body.json() as Record<string, unknown>
    t.match(body, { reached: true, txid: token, waitedMs: Number }, how)
    t.same(Object.keys(body), ['reached', 'txid', 'waitedMs'])
  }
  const none = await request(`${replica.url}${PATH}`)
  t.same(await none.body.json(), { reached: true, txid: null, waitedMs: 0 }, 'no token: at once')
  const head = await request(`${replica.url}${PATH}`, { method: 'HEAD', headers: { 'litefs-txid': token } })
  t.equal(head.statusCode, 200, 'HEAD as GET')
  t.equal(await head.body.text(), '')
  // On the primary: at once, as a read there.
  const there = await request(`${primary.url}${PATH}`, { headers: { 'litefs-txid': 'ffffff0000000000' } })
  t.match(await there.body.json(), { reached: true })
  t.same(rapp.seen, [], 'never the app')
  t.match(lineOf(lines, PATH, 'GET'), { status: 200, kind: 'read', role: 'replica' })
})

t.test('a token the replica does not reach within --txid-timeout: 504 LITEFS_READ_TIMEOUT; primary is a 504 too; stale is 200 with stale', async t => {
  for (const action of ['error', 'primary'] as const) {
    const { replica, lines } = await pair(t, { tokenPath: PATH }, { readTimeout: 100, readTimeoutAction: action })
    const res = await request(`${replica.url}${PATH}`, { headers: { 'litefs-txid': '000000000000000a' } })
    t.equal(res.statusCode, 504, action)
    t.match(await res.body.json(), { code: 'LITEFS_READ_TIMEOUT', error: /did not reach TXID 000000000000000a/ }, action)
    t.notOk(lineOf(lines, PATH, 'GET')?.forwardedTo, `${action}: not forwarded (the primary has it; this node does not)`)
    t.equal(lines.filter(l => l.includes(PATH) && l.includes('"msg":"request"')).length, 1, `${action}: the primary's serve never saw it`)
    // A plain read still goes to the primary with 'primary'.
    if (action === 'primary') {
      const read = await request(`${replica.url}/page`, { headers: { 'litefs-txid': '000000000000000a' } })
      t.equal(read.statusCode, 200)
      t.ok(lineOf(lines, '/page', 'GET', 'primary'), 'other reads are forwarded as before')
    }
  }
  const { replica } = await pair(t, { tokenPath: PATH }, { readTimeout: 100, readTimeoutAction: 'stale' })
  const res = await request(`${replica.url}${PATH}`, { headers: { 'litefs-txid': '000000000000000a' } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['litefs-stale'], /txid=000000000000000a; position=0000000000000005/)
  t.match(await res.body.json(), { reached: false, txid: '000000000000000a', stale: true })
})

t.test('the primary behind the token (lost in a failover, forged): 200 unreachable, as a read served then', async t => {
  const { replica } = await pair(t)
  const res = await request(`${replica.url}${PATH}`, { headers: { 'litefs-txid': '00000000000000ff' } })
  t.equal(res.statusCode, 200)
  t.match(await res.body.json(), { reached: true, unreachable: true, txid: '00000000000000ff' })
})

t.test('--secret: the token is signed, a wait honours it, a forged or malformed one is no token', async t => {
  const { rfake, primary, replica } = await pair(t, { tokenPath: PATH, secret: [SECRET] })
  const res = await request(`${replica.url}${PATH}`, { method: 'POST' })
  const { token } = await res.body.json() as { token: string }
  t.match(token, /^000000000000000a\.[A-Za-z0-9_-]+$/, 'signed')
  t.equal(res.headers['litefs-txid'], token, 'the token header carries the same value')
  const wait = request(`${replica.url}${PATH}`, { headers: { 'litefs-txid': token } })
  await until(() => replica.core.state.waiterCount === 1)
  rfake.advance(10n)
  t.match(await (await wait).body.json(), { reached: true, txid: '000000000000000a' })
  for (const bad of ['00000000000000ff.' + token.split('.')[1], '000000000000000f', 'not a token']) {
    const r = await request(`${replica.url}${PATH}`, { headers: { 'litefs-txid': bad } })
    t.same(await r.body.json(), { reached: true, txid: null, waitedMs: 0 }, `${bad}: as a read treats it, no token`)
  }
  t.ok(primary)
})

t.test('other methods: 405 with a code and Allow, a line, nothing reaches the app or LiteFS', async t => {
  const { replica, rapp, papp, lines } = await pair(t)
  for (const method of ['PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const res = await request(`${replica.url}${PATH}?x=1`, { method, body: method === 'PUT' ? 'x' : undefined })
    t.equal(res.statusCode, 405, method)
    t.equal(res.headers.allow, 'GET, HEAD, POST')
    const text = await res.body.text()
    t.notOk(text.includes('\n'))
    t.match(JSON.parse(text), { code: 'LITEFS_METHOD_NOT_ALLOWED', error: new RegExp(`takes POST .* not ${method}`) })
    t.match(lineOf(lines, `${PATH}?x=1`, method), { status: 405 }, `${method}: the request line`)
    t.ok(lines.some(l => l.includes('"code":"LITEFS_METHOD_NOT_ALLOWED"') && l.includes(`"method":"${method}"`)), `${method}: the line that says why`)
  }
  t.same([...rapp.seen, ...papp.seen], [])
  // Another path, and a path that only starts with it, are the app's.
  await (await request(`${replica.url}${PATH}/more`)).body.dump()
  t.same(rapp.seen, [`GET ${PATH}/more`])
})

t.test('without --token-path the path is the app\'s (off by default: no route shadowed)', async t => {
  const { replica, primary, rapp, papp } = await pair(t, {})
  await (await request(`${replica.url}${PATH}`)).body.dump()
  const post = await request(`${primary.url}${PATH}`, { method: 'POST' })
  t.equal(await post.body.text(), 'app')
  t.same(rapp.seen, [`GET ${PATH}`])
  t.same(papp.seen, [`POST ${PATH}`])
})

const Mount = SetMount

t.test('no position on the primary: 500 LITEFS_NO_POSITION; a mount gone with it: the write path\'s 502 LITEFS_OUTCOME_UNKNOWN', async t => {
  for (const [how, answers, status, code] of [['no -pos (a wrong --db)', true, 500, 'LITEFS_NO_POSITION'], ['the mount does not answer', false, 502, 'LITEFS_OUTCOME_UNKNOWN']] as const) {
    const mount = new Mount()
    const state = new NodeState(mount)
    state.setRole('primary')
    const a = await app(t, undefined)
    const lines: string[] = []
    const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${a.port}`, db: 'app.db', state, tokenPath: PATH, logger: lineLogger('info', 'json', l => lines.push(l)) })
    await s.listen()
    t.teardown(async () => { await s.close() })
    const ok = await request(`${s.url}${PATH}`, { method: 'POST' })
    t.same(await ok.body.json(), { token: '0000000000000005', txid: '0000000000000005' }, `${how}: before, the token`)
    mount.pos = undefined
    mount.answers = answers
    const res = await request(`${s.url}${PATH}`, { method: 'POST' })
    t.equal(res.statusCode, status, how)
    const body = await res.body.json() as { code: string, error: string }
    t.equal(body.code, code, how)
    t.equal(res.headers['set-cookie'], undefined, `${how}: no cookie`)
    if (answers) t.match(body.error, /no position for app\.db in .* after the write/)
    t.ok(lines.some(l => l.includes('"level":"warn"')), `${how}: said in the log`)
    t.same(a.seen, [])
  }
})

t.test('settings: --token-path, and a path the core already answers or hands the app is refused in flag terms', async t => {
  t.match(serveOptions(['--addr', ':1', '--target', 'x:1', '--db', 'd', '--token-path', PATH], {}, () => {}), { tokenPath: PATH })
  t.equal(serveOptions(['--addr', ':1', '--target', 'x:1', '--db', 'd'], {}, () => {})?.tokenPath, undefined, 'off by default')
  const io = (): Io & { stderr: string } => {
    const o = { stderr: '', out: () => {}, err: (s: string) => { o.stderr += s }, env: {} }
    return o
  }
  const base = ['serve', '--addr', '127.0.0.1:0', '--target', 'x:1', '--db', 'd', '--api', 'false', '--mount', '/nonexistent']
  for (const [args, said] of [
    [['--token-path', 'litefs/token'], '--token-path: expected a path starting with / (no query, fragment, space or *), got "litefs/token"'],
    [['--token-path', '/t?x'], '--token-path: expected a path starting with / (no query, fragment, space or *), got "/t?x"'],
    [['--token-path', '/litefs/health'], "--token-path: expected a path of its own, not the health check's path (--health-path), got \"/litefs/health\""],
    [['--token-path', '/litefs/peers'], "--token-path: expected a path of its own, not the peers' endpoint, got \"/litefs/peers\""],
    [['--token-path', '/litefs/token', '--passthrough', '/litefs/*'], '--token-path: expected a path of its own, not a --passthrough path (handed to the app untouched), got "/litefs/token"'],
    [['--token-path', '/litefs/token', '--always-forward', '/litefs/token'], '--token-path: expected a path of its own, not an --always-forward path (its reads are writes), got "/litefs/token"']
  ] as const) {
    const o = io()
    t.equal(await run([...base, ...args], o), 2, args.join(' '))
    t.equal(o.stderr, `litefs-proxy serve: ${said}\n`)
  }
})
