// Path rules (alwaysForward, passthrough, the health path) match every spelling
// the app's router takes for the same path: percent-escapes (`/%6fauth/callback`)
// and the absolute form (`GET http://x/oauth/callback`), in each flavour. Behind
// `serve` and node:http the app's router is not litefs-proxy's to ask: the app
// here decodes as WSGI does (Django's router sees PATH_INFO decoded), so a
// spelling the classifier missed would run a writing view on the replica.
// Also `serve`'s request targets that are not paths: `OPTIONS *` and `GET *`.
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { frameworkApp } from './helpers/framework-apps.js'
import { RawConnection, type RawAnswer } from './helpers/raw-http.js'
import { FLAVOURS, type Flavour } from './helpers/pairs.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { wrap } from '../lib/http.js'
import type { NodeState } from '../lib/core/node-state.js'

type Test = typeof t
const quiet = { debug () {}, info () {}, warn () {}, error () {} }

interface Node { url: string, hits: string[], lines: string[] }

/** What a WSGI app routes on: the path of an absolute-form target, each valid escape decoded (Python's unquote). */
function wsgiPath (url: string): string {
  const path = url.startsWith('/') ? url.split('?')[0] : new URL(url).pathname
  return path.replace(/(?:%[0-9a-fA-F]{2})+/g, run => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'))
}

/** The app's router, as Django's: `oauth/…` (any rest) and `hook`, on decoded paths. */
function wsgiRouter (hits: string[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = wsgiPath(req.url as string)
    const key = path.startsWith('/oauth/') ? `${req.method as string} /oauth/callback` : path === '/hook' ? `${req.method as string} /hook` : undefined
    req.resume()
    if (key === undefined) { res.writeHead(404).end(); return }
    hits.push(key)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ran: key, kind: req.litefs?.kind ?? null }))
  }
}

async function listen (t: Test, listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function node (t: Test, flavour: Flavour, role: 'primary' | 'replica', litefs: Record<string, unknown>): Promise<Node> {
  const fake = await FakeLitefs.start({ role, primary: 'node-a', txid: role === 'primary' ? 10n : 5n })
  t.teardown(async () => { await fake.close() })
  const hits: string[] = []
  const lines: string[] = []
  const opts = { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...litefs }
  let url: string
  let state: NodeState
  if (flavour === 'serve') {
    const sidecar = createSidecar({ addr: '127.0.0.1:0', target: await listen(t, wsgiRouter(hits)), logger: lineLogger('info', 'json', l => lines.push(l)), ...opts })
    await sidecar.listen()
    t.teardown(async () => { await sidecar.close() })
    url = sidecar.url
    state = sidecar.core.state
  } else if (flavour === 'http') {
    const listener = wrap(wsgiRouter(hits), { logger: quiet, ...opts } as any)
    t.teardown(async () => { await listener.close() })
    url = `http://${await listen(t, listener)}`
    state = listener.core.state
  } else {
    const hit = (key: string) => async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      hits.push(key)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ran: key, kind: req.litefs?.kind ?? null }))
    }
    const app = await frameworkApp(flavour, opts, { routes: { 'GET /oauth/callback': hit('GET /oauth/callback'), 'POST /hook': hit('POST /hook') } })
    t.teardown(async () => { await app.close() })
    url = app.url
    state = app.state
  }
  await until(() => state.litefs === 'up' && (role === 'primary' ? state.role === 'primary' : state.primaryHostname === 'node-a'), `the ${role} follows LiteFS`)
  return { url, hits, lines }
}

async function send (url: string, method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<RawAnswer> {
  const c = await RawConnection.open(url)
  c.send(method, target, { connection: 'close', ...headers }, body)
  try {
    return await c.answer(method)
  } finally {
    c.socket.destroy()
  }
}

// Spellings of /oauth/callback, and the flavours whose router routes each to its handler.
const ALL = FLAVOURS
const DECODING: readonly Flavour[] = ['fastify', 'http', 'serve'] // find-my-way decodes (decodeURI); WSGI decodes everything
const WSGI: readonly Flavour[] = ['http', 'serve']
const OAUTH: Array<[string, readonly Flavour[]]> = [
  ['/oauth/callback', ALL],
  ['http://x/oauth/callback', ALL],
  ['HTTP://x:80/oauth/callback?a=1', ALL],
  ['/%6fauth/callback', DECODING],
  ['/%6Fauth/callback', DECODING],
  ['/oauth/%63allback', DECODING],
  ['http://x/%6fauth/callback', DECODING],
  ['/oauth%2Fcallback', WSGI], // %2F is `/` to Go's URL.Path and to WSGI; find-my-way keeps it
  ['/%6fauth/%zz', WSGI] // an invalid escape stays as sent, the rest decoded (Python's unquote)
]

t.test('alwaysForward: every spelling the router routes to the handler runs on the primary', async t => {
  for (const flavour of FLAVOURS) {
    await t.test(flavour, async t => {
      const primary = await node(t, flavour, 'primary', {})
      const replica = await node(t, flavour, 'replica', { primaryUrl: () => primary.url, alwaysForward: ['/oauth/*'] })
      for (const [target, routedBy] of OAUTH) {
        const before = primary.hits.length
        const res = await send(replica.url, 'GET', target)
        t.same(replica.hits, [], `${target}: nothing ran on the replica`)
        if (routedBy.includes(flavour)) {
          t.equal(res.status, 200, `${target}: routed`)
          t.same(primary.hits.slice(before), ['GET /oauth/callback'], `${target}: ran on the primary`)
        } else {
          t.not(res.status, 200, `${target}: ${flavour}'s router routes it nowhere (${res.status})`)
          t.equal(primary.hits.length, before)
        }
      }
    })
  }
})

t.test('passthrough and the health path: the same spellings', async t => {
  const HOOK: Array<[string, readonly Flavour[]]> = [['/%68ook', WSGI], ['http://x/hook', ALL], ['/hook', ALL]]
  const HEALTH: Array<[string, readonly Flavour[]]> = [['/litefs/%68ealth', DECODING], ['http://x/litefs/health', ALL], ['/litefs%2Fhealth', WSGI]]
  for (const flavour of FLAVOURS) {
    await t.test(flavour, async t => {
      const primary = await node(t, flavour, 'primary', {})
      const replica = await node(t, flavour, 'replica', { primaryUrl: () => primary.url, passthrough: ['/hook'] })
      for (const [target, routedBy] of HOOK) {
        if (!routedBy.includes(flavour)) continue
        const before = replica.hits.length
        const res = await send(replica.url, 'POST', target, {}, 'x')
        t.equal(res.status, 200, `POST ${target}`)
        t.same(replica.hits.slice(before), ['POST /hook'], `POST ${target}: passthrough — handled on the replica, untouched`)
        if (flavour !== 'serve') t.equal(JSON.parse(res.body).kind, 'passthrough')
      }
      t.same(primary.hits, [], 'nothing forwarded')
      for (const [target, routedBy] of HEALTH) {
        const res = await send(replica.url, 'GET', target)
        if (routedBy.includes(flavour)) t.equal(JSON.parse(res.body).status, 'ok', `GET ${target}: the health check`)
        else t.equal(res.status, 404, `GET ${target}: ${flavour}'s router routes it nowhere`)
      }
      t.same(replica.hits.filter(h => h.startsWith('GET')), [], 'the app never saw a health spelling')
    })
  }
})

t.test('serve: OPTIONS * is answered as Go answers it; other targets that are not paths get a 400 of their own', async t => {
  const replica = await node(t, 'serve', 'replica', { primaryUrl: 'http://127.0.0.1:9' })
  const c = await RawConnection.open(replica.url)
  t.teardown(() => { c.socket.destroy() })
  c.send('OPTIONS', '*')
  const options = await c.answer('OPTIONS')
  t.equal(options.status, 200)
  t.same(options.headers['content-length'], ['0'])
  t.equal(options.body, '')
  c.send('OPTIONS', '*', {}, 'a body is read and dropped')
  t.equal((await c.answer('OPTIONS')).status, 200, 'the connection goes on, body and all')
  c.send('GET', '/oauth/x')
  t.equal((await c.answer()).status, 200, 'and its next request reaches the app')
  t.same(replica.hits, ['GET /oauth/callback'], 'OPTIONS * never reached the app')

  for (const [method, headers] of [['GET', {}], ['POST', {}], ['GET', { upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }]] as const) {
    const res = await send(replica.url, method, '*', headers, method === 'POST' ? 'x' : undefined)
    t.equal(res.status, 400, `${method} * ${headers.upgrade ?? ''}`)
    t.same(JSON.parse(res.body), { error: '"*" is not a request target litefs-proxy serve can send the app: a path starting with / (or OPTIONS *)', code: 'LITEFS_BAD_TARGET' })
    t.same(res.headers['content-type'], ['application/json; charset=utf-8'])
  }
  t.same(replica.hits, ['GET /oauth/callback'], 'nothing reached the app')
  const said = replica.lines.filter(l => l.includes('LITEFS_BAD_TARGET'))
  t.equal(said.length, 3, 'a log line each')
  t.match(said[0], /refused a request whose target is not a path; nothing reached the app/)
})

t.test('serve: a request with two Host headers is answered 400, as RFC 9112 §3.2 asks, and reaches no app', async t => {
  const replica = await node(t, 'serve', 'replica', { primaryUrl: 'http://127.0.0.1:9' })
  const c = await RawConnection.open(replica.url)
  t.teardown(() => { c.socket.destroy() })
  c.socket.write('GET /oauth/x HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n')
  const res = await c.answer()
  t.equal(res.status, 400)
  t.same(JSON.parse(res.body), { error: 'the request has more than one Host header; nothing reached the app', code: 'LITEFS_BAD_REQUEST' })
  t.same(res.headers.connection, ['close'], 'its connection is closed')
  t.same(replica.hits, [], 'nothing reached the app')
  t.ok(replica.lines.some(l => l.includes('more than one Host header')), 'a line says it')
})
