// Issue 18, kind 5: whether a request is sent again after the server closed the
// connection as it went out depended on how it closed (a reset: yes; a clean
// close, FIN: never), not on whether the request is safe to send twice. Gunicorn
// closes idle connections on its own clock, and behind serve reads got sporadic
// 502s. The rule now: a request the server may have read is sent again only if
// it is safe twice — a read by method (GET, HEAD, OPTIONS) that is not routed as
// a write, or any request with an Idempotency-Key — at most twice; a reset
// before any answer is what it was (nothing read: any request is sent again).
import t from 'tap'
import { request } from 'undici'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import diagnostics from 'node:diagnostics_channel'
import type { AddressInfo, Socket } from 'node:net'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS } from './helpers/apps.js'
import { pair } from './helpers/pairs.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { RESENDS } from '../lib/core/resend.js'

/**
 * An app that meets the first attempt of each request (by its `x-id`) with a
 * clean close (FIN) once it has read it, without answering: what a client sees
 * when the server closed its idle connection as the request went out. `x-reset`
 * resets instead, on a fresh connection (on a kept-alive one it closes, as
 * above: a reset there is the one taken for "not read"; graceful-primary.test.ts).
 * `/always-close` is closed every time.
 */
function closingApp (): (req: IncomingMessage, res: ServerResponse) => void {
  const seen = new Set<string>()
  const served = new WeakMap<object, number>() // requests per connection
  return (req, res) => {
    const id = req.headers['x-id'] as string | undefined
    const first = id !== undefined && !seen.has(id)
    if (id !== undefined) seen.add(id)
    const n = (served.get(req.socket) ?? 0) + 1
    served.set(req.socket, n)
    if (first && req.headers['x-reset'] !== undefined && n === 1) { req.socket.resetAndDestroy(); return }
    req.resume()
    req.on('end', () => {
      if (first || req.url === '/always-close') { req.socket.end(); return }
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'text/plain' }).end(req.method === 'HEAD' ? undefined : 'answered')
    })
  }
}
let ids = 0

interface Case { method: string, path: string, headers?: Record<string, string>, resent: boolean, why: string }

const KEY = { 'idempotency-key': '8e03978e-40d5-43e8-bc93-6894a57f9324' }

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: a forward the primary closes before answering is sent again only when safe twice`, async t => {
    const app = closingApp()
    const paths = ['/page', '/oauth/callback', '/always-close']
    const routes = (): Record<string, typeof app> => Object.fromEntries(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'DELETE'].flatMap(m => paths.map(p => [`${m} ${p}`, app])))
    const { primary, replica } = await pair(t, adapter, { routes, replica: { readTimeout: 20, readTimeoutAction: 'primary', alwaysForward: ['/oauth/callback'] }, framework: { unread: true, fastify: { exposeHeadRoutes: false } } })
    const has = (): string => `litefs-txid=${primary.fake.txid.toString(16).padStart(16, '0')}` // the primary has it; the replica never will: reads go there after readTimeout
    const cases: Case[] = [
      { method: 'GET', path: '/page', resent: true, why: 'a read' },
      { method: 'HEAD', path: '/page', resent: true, why: 'a read' },
      { method: 'OPTIONS', path: '/page', resent: true, why: 'a read (a CORS preflight)' },
      { method: 'GET', path: '/oauth/callback', resent: false, why: 'a GET routed as a write (alwaysForward): it may write' },
      { method: 'POST', path: '/page', resent: false, why: 'a write' },
      { method: 'PUT', path: '/page', resent: false, why: 'idempotent by RFC 9110, but the app may not make it so' },
      { method: 'DELETE', path: '/page', resent: false, why: 'the same' },
      { method: 'POST', path: '/page', headers: KEY, resent: true, why: 'its client says the server applies it once' },
      { method: 'PUT', path: '/page', headers: KEY, resent: true, why: 'the same' },
      { method: 'DELETE', path: '/page', headers: KEY, resent: true, why: 'the same' },
      { method: 'POST', path: '/page', headers: { 'x-reset': '1' }, resent: false, why: 'a reset before any answer on a fresh connection: the app may have read it' }
    ]
    const history: Array<{ request: string, status: number, attempts: number }> = []
    for (const c of cases) {
      const before = primary.hits.length
      const res = await request(`${replica.url}${c.path}`, { method: c.method, headers: { cookie: has(), 'x-id': String(ids++), ...c.headers }, body: ['POST', 'PUT', 'DELETE'].includes(c.method) ? 'x' : undefined })
      const text = await res.body.text()
      history.push({ request: `${c.method} ${c.path}${c.headers === undefined ? '' : ' ' + Object.keys(c.headers).join(',')}`, status: res.statusCode, attempts: primary.hits.length - before })
      if (c.resent) {
        t.ok(res.statusCode < 300, `${c.method} ${c.path} (${c.why}): sent again, answered (${res.statusCode} ${text})`)
      } else {
        t.equal(res.statusCode, 502, `${c.method} ${c.path} (${c.why}): never sent twice`)
        t.match(JSON.parse(text), { code: 'LITEFS_FORWARD_FAILED', error: /not retried/ })
      }
    }
    t.same(history.map(h => h.attempts), cases.map(c => c.resent ? 2 : 1), `reached the app twice only when sent again (${JSON.stringify(history)})`)
    const before = primary.hits.length
    const res = await request(`${replica.url}/always-close`, { headers: { cookie: has() } })
    t.equal(res.statusCode, 502, 'a read the app closes every time: given up')
    t.match(await res.body.json(), { code: 'LITEFS_FORWARD_FAILED', error: /closed the connection before answering/ })
    t.equal(primary.hits.length - before, 1 + RESENDS, `sent ${1 + RESENDS} times, no more`)
  })
}

t.test('serve: an app that closes idle connections (FIN) as a request goes out; reads are sent again, writes never', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  t.teardown(async () => { await fake.close() })
  const hits: string[] = []
  const app = closingApp()
  const server = createServer((req, res) => { hits.push(`${req.method as string} ${req.url as string}`); app(req, res) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(server.address() as AddressInfo).port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, passthrough: ['/static/*'], logger: lineLogger('silent', 'text') })
  await s.listen()
  t.teardown(async () => { await s.close() })
  await until(() => s.core.state.role === 'primary')
  const history: Array<[string, number, number]> = []
  for (const [method, path, headers, resent] of [
    ['GET', '/page', {}, true], ['HEAD', '/page', {}, true], ['OPTIONS', '/page', {}, true], ['GET', '/static/app.css', {}, true],
    ['POST', '/page', {}, false], ['PUT', '/page', {}, false], ['DELETE', '/page', {}, false], ['PUT', '/page', KEY, true]
  ] as const) {
    const before = hits.length
    const res = await request(`${s.url}${path}`, { method, headers: { 'x-id': String(ids++), ...headers }, body: method === 'PUT' || method === 'POST' ? 'x' : undefined })
    const text = await res.body.text()
    history.push([`${method} ${path}`, res.statusCode, hits.length - before])
    if (resent) t.ok(res.statusCode < 300, `${method} ${path}: sent again (${text})`)
    else t.match({ status: res.statusCode, body: JSON.parse(text) }, { status: 502, body: { code: 'LITEFS_TARGET_FAILED' } }, `${method} ${path}: never sent twice`)
  }
  t.same(history.map(h => h[2]), [2, 2, 2, 2, 1, 1, 1, 2], `attempts per request (${JSON.stringify(history)})`)
})

t.test('serve: the app closes connections (FIN) as reads go out on them, in a bounded loop: none answered 502', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 3n })
  t.teardown(async () => { await fake.close() })
  // As Gunicorn closes a connection idle past its keepalive, racing the next
  // request serve sends on it: here the app's side closes (FIN) the moment undici
  // writes a request on a kept-alive connection (its diagnostics channel says so).
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')) })
  server.on('connection', (socket: Socket) => { sockets.add(socket); socket.once('close', () => sockets.delete(socket)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  let armed = false
  const race = ({ request: r }: { request: { origin?: string } }): void => {
    if (!armed || r.origin !== origin) return
    armed = false
    for (const socket of sockets) socket.end()
  }
  diagnostics.subscribe('undici:client:sendHeaders', race as (m: unknown) => void)
  t.teardown(() => { diagnostics.unsubscribe('undici:client:sendHeaders', race as (m: unknown) => void) })
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(server.address() as AddressInfo).port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: lineLogger('silent', 'text') })
  await s.listen()
  t.teardown(async () => { await s.close() })
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    await (await request(`${s.url}/page`)).body.dump() // leaves serve a kept-alive connection to the app
    armed = true
    const res = await request(`${s.url}/page`, { method: i % 2 === 0 ? 'GET' : 'HEAD' })
    await res.body.dump()
    statuses.push(res.statusCode)
  }
  t.same(statuses.filter(s => s !== 200), [], `every read answered 200 (${statuses.length} raced)`)
})
