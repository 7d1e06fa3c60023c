// Fault kinds found by replaying failures users of LiteFS's proxy, of Node
// reverse proxies and of Fastify/Express middleware reported in public (issue
// 10), each tested for its other inputs too, in every adapter it concerns,
// through real sockets: a primary app and a replica app, each on its own fake LiteFS.
import t from 'tap'
import express from 'express'
import { connect as h2connect } from 'node:http2'
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, type AdapterName } from './helpers/apps.js'
import { frameworkApp, type FrameworkApp, type FrameworkOptions, type Handler } from './helpers/framework-apps.js'

type Test = typeof t

interface Reply { status: number, body: any, headers: Record<string, any> }

async function call (url: string, init: { method?: string, headers?: Record<string, string>, body?: string | Buffer } = {}): Promise<Reply> {
  const res = await request(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body })
  const text = await res.body.text()
  let body: any = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.statusCode, body, headers: res.headers }
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

interface Node extends FrameworkApp { fake: FakeLitefs, hits: Record<string, number> }

/**
 * One node: its own fake LiteFS and app. `routes` are built with the node's
 * fake (a handler commits with `fake.advance`) and its hit counter.
 */
async function node (t: Test, adapter: AdapterName, role: 'primary' | 'replica', litefs: Record<string, unknown>, build: (fake: FakeLitefs, hit: (name: string) => void) => FrameworkOptions, txid = 5n): Promise<Node> {
  const fake = await FakeLitefs.start({ role, primary: 'node-a', txid })
  const hits: Record<string, number> = {}
  const hit = (name: string): void => { hits[name] = (hits[name] ?? 0) + 1 }
  const app = await frameworkApp(adapter, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, ...litefs }, build(fake, hit))
  t.teardown(async () => { await app.close(); await fake.close() })
  await until(() => app.state.litefs === 'up' && (role === 'primary' ? app.state.role === 'primary' : app.state.primaryHostname === 'node-a'), 'following LiteFS')
  return Object.assign(app, { fake, hits })
}

/** The routes of an echo app: what reached it, committed as a write. */
function echoRoutes (paths: string[]) {
  return (fake: FakeLitefs, hit: (name: string) => void): FrameworkOptions => {
    const routes: Record<string, Handler> = {}
    for (const key of paths) {
      routes[key] = (req, res, body) => {
        hit(key)
        if (req.method !== 'GET') fake.advance(fake.txid + 1n, { event: false })
        json(res, req.method === 'POST' ? 201 : 200, { path: req.url, headers: req.headers, bytes: body.length, litefs: req.litefs ?? null })
      }
    }
    return { routes }
  }
}

async function pair (t: Test, adapter: AdapterName, replicaLitefs: Record<string, unknown>, build: (fake: FakeLitefs, hit: (name: string) => void) => FrameworkOptions, primaryBuild = build): Promise<{ primary: Node, replica: Node }> {
  const primary = await node(t, adapter, 'primary', {}, fb => ({ ...primaryBuild(fb, name => { primary.hits[name] = (primary.hits[name] ?? 0) + 1 }), trust: true }), 10n)
  const replica = await node(t, adapter, 'replica', { primaryUrl: () => primary.url, ...replicaLitefs }, build)
  return { primary, replica }
}

for (const adapter of ADAPTERS) {
  t.test(adapter, async t => {
    t.test('1. the cookie goes on whatever sends the head of a write', async t => {
      const committed = (fake: FakeLitefs, send: (res: ServerResponse) => void): Handler => (_req, res) => {
        fake.advance(fake.txid + 1n, { event: false }) // the handler's commit, before the head
        send(res)
      }
      const n = await node(t, adapter, 'primary', {}, fake => ({
        routes: {
          'POST /raw': committed(fake, res => { res.writeHead(201, { 'content-type': 'text/plain' }); res.end('raw') }),
          'POST /raw-array': committed(fake, res => { res.writeHead(201, ['content-type', 'text/plain', 'set-cookie', 'mine=1']); res.end('raw') }),
          'POST /raw-array-plain': committed(fake, res => { res.writeHead(201, ['content-type', 'text/plain']); res.end('raw') }),
          'POST /implicit-end': committed(fake, res => { res.statusCode = 202; res.end('implicit') }),
          'POST /implicit-write': committed(fake, res => { res.write('first chunk '); res.end('then more') }),
          'POST /flush': committed(fake, res => { res.setHeader('content-type', 'text/plain'); res.flushHeaders(); res.end('flushed') }),
          'POST /sse': committed(fake, res => {
            res.writeHead(200, { 'content-type': 'text/event-stream' })
            res.write('data: 1\n\n')
            setTimeout(() => res.end('data: 2\n\n'), 5)
          }),
          'POST /ndjson': committed(fake, res => {
            res.setHeader('content-type', 'application/x-ndjson')
            res.write('{"a":1}\n')
            res.end('{"b":2}\n')
          })
        }
      }))
      for (const path of ['/raw', '/raw-array', '/raw-array-plain', '/implicit-end', '/implicit-write', '/flush', '/sse', '/ndjson']) {
        const before = n.fake.txid
        const res = await call(`${n.url}${path}`, { method: 'POST', body: 'x' })
        const cookies = ([] as string[]).concat(res.headers['set-cookie'] ?? [])
        const txid = (before + 1n).toString(16).padStart(16, '0')
        t.ok(cookies.some(c => c.startsWith(`litefs-txid=${txid};`)), `${path}: cookie at the handler's commit (${cookies.join(' | ')})`)
        if (path === '/raw-array') t.ok(cookies.includes('mine=1'), "the app's own cookie stays")
      }
    })

    if (adapter === 'fastify') {
      t.test('1. Fastify: heads from hooks, hijacked replies and reply.send from a stream', async t => {
        const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
        const { default: Fastify } = await import('fastify')
        const { litefs } = await import('../lib/fastify.js')
        const { Readable } = await import('node:stream')
        const app = Fastify()
        t.teardown(async () => { await app.close(); await fake.close() })
        await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl })
        const commit = (): void => fake.advance(fake.txid + 1n, { event: false })
        app.post('/hook', { preHandler: async (_req, reply) => { commit(); await reply.code(200).send({ from: 'preHandler' }) } }, async () => ({ never: true }))
        app.post('/hijack', async (_req, reply) => { commit(); reply.hijack(); reply.raw.writeHead(201); reply.raw.end('hijacked') })
        app.post('/stream', async (_req, reply) => { commit(); return await reply.type('text/plain').send(Readable.from(['a', 'b'])) })
        app.addHook('onRequest', async (request, reply) => {
          if (request.url === '/early') { commit(); await reply.code(200).send('answered from onRequest') }
        })
        app.post('/early', async () => 'never')
        await app.listen({ port: 0, host: '127.0.0.1' })
        await until(() => app.litefs.state.role === 'primary')
        const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
        for (const path of ['/hook', '/hijack', '/stream', '/early']) {
          const before = fake.txid
          const res = await call(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })
          t.match(String(res.headers['set-cookie']), new RegExp(`litefs-txid=${(before + 1n).toString(16).padStart(16, '0')};`), `${path}: cookied`)
        }
      })
    }

    t.test('2. a stalled upload to a replica is bounded: 408, and the primary sees the request aborted', async t => {
      const { primary, replica } = await pair(t, adapter, { forwardTimeout: 100 }, echoRoutes(['POST /upload']))
      const res = await new Promise<{ status: number, body: any }>((resolve, reject) => {
        const req = httpRequest(`${replica.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': '100' } }, r => {
          let text = ''
          r.on('data', c => { text += c })
          r.on('end', () => resolve({ status: r.statusCode as number, body: JSON.parse(text) }))
        })
        req.on('error', reject)
        req.write(Buffer.alloc(10)) // …and nothing more
      })
      t.equal(res.status, 408)
      t.equal(res.body.code, 'LITEFS_BODY_TIMEOUT')
      t.equal(primary.hits['POST /upload'], undefined, 'the handler never ran on a body that never came')
    })

    t.test('3. forwarded metadata is what the replica vouches for under its own trust setting', async t => {
      const forged = {
        'content-type': 'text/plain',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        'x-forwarded-port': '443',
        'x-forwarded-prefix': '/admin',
        'x-forwarded-for': '6.6.6.6',
        forwarded: 'for=6.6.6.6;proto=https;host=evil.example'
      }
      const untrusting = await pair(t, adapter, {}, echoRoutes(['POST /echo']))
      const host = new URL(untrusting.replica.url).host
      let res = await call(`${untrusting.replica.url}/echo`, { method: 'POST', headers: forged, body: 'x' })
      t.equal(res.status, 201)
      const seen = res.body.headers
      t.equal(seen['x-forwarded-host'], host, 'not the forged host: the Host the replica received')
      t.equal(seen['x-forwarded-proto'], 'http', 'not the forged scheme')
      t.equal(seen['x-forwarded-port'], host.split(':')[1])
      t.equal(seen['x-forwarded-prefix'], undefined, 'other forwarded metadata is dropped')
      t.equal(seen.forwarded, `for=127.0.0.1;proto=http;host="${host}"`)
      t.equal(seen['x-forwarded-for'], '127.0.0.1', 'a chain the replica does not trust is not passed on: the client it believes (its peer) alone')
      t.notMatch(String(res.headers['set-cookie']), /Secure/, 'no Secure cookie on plain HTTP: the browser keeps it')

      const trusting = await node(t, adapter, 'replica', { primaryUrl: () => untrusting.primary.url }, fake => ({ ...echoRoutes(['POST /echo'])(fake, () => {}), trust: true }))
      res = await call(`${trusting.url}/echo`, { method: 'POST', headers: forged, body: 'x' })
      t.equal(res.body.headers['x-forwarded-host'], 'evil.example', 'a replica that trusts its client passes on what it believed')
      t.equal(res.body.headers['x-forwarded-proto'], 'https')
      t.equal(res.body.headers['x-forwarded-for'], '6.6.6.6', 'the chain from the client it believes; its peer not added (it stands in for it)')
      t.match(String(res.headers['set-cookie']), /; Secure/)
    })

    t.test('4. a replica refuses nothing the primary accepts: no body limit of its own unless asked', async t => {
      const big = Buffer.alloc(3 << 20, 1)
      const { primary, replica } = await pair(t, adapter, {}, echoRoutes(['POST /upload']))
      for (const n of [primary, replica]) {
        const res = await call(`${n.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big })
        t.equal(res.status, 201, `the same answer on the ${n === primary ? 'primary' : 'replica'}`)
        t.equal(res.body.bytes, big.length)
      }
      const capped = await node(t, adapter, 'replica', { primaryUrl: () => primary.url, forwardBodyLimit: 1 << 20 }, echoRoutes(['POST /upload']))
      const res = await call(`${capped.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big })
      t.equal(res.status, 413, 'forwardBodyLimit, when set, is a cap of the replica\'s own')
      t.equal(res.body.code, 'LITEFS_BODY_TOO_LARGE')
    })

    t.test('7. a cookie no node will reach is served at about one round trip to the primary, not after readTimeout', async t => {
      const { primary, replica } = await pair(t, adapter, { readTimeout: 60_000 }, echoRoutes(['GET /page']))
      primary.fake.advance(1n) // a failover lost TXIDs 2–4: the primary is at 1…
      replica.fake.advance(1n) // …and the replica too
      await until(() => replica.state.position('app.db') === 1n)
      const lost = await call(`${replica.url}/page`, { headers: { cookie: 'litefs-txid=0000000000000004' } })
      t.equal(lost.status, 200)
      t.equal(lost.body.litefs.unreachable, true, 'served because the primary is behind the cookie, not by a timeout (60 s)')
      t.equal(replica.state.waiterCount, 0)

      primary.fake.advance(10n)
      const pending = call(`${replica.url}/page`, { headers: { cookie: 'litefs-txid=0000000000000007' } })
      await until(() => replica.state.waiterCount === 1)
      await new Promise(resolve => setTimeout(resolve, 100)) // the primary has been asked: it has TXID 7 (not a timing assertion)
      t.equal(replica.state.waiterCount, 1, 'a TXID the primary has is waited for')
      replica.fake.advance(7n)
      const reached = await pending
      t.equal(reached.status, 200)
      t.equal(reached.body.litefs.unreachable, undefined)
    })
  })
}

t.test('2. Express: a body read before the proxy gets an immediate 500 naming the middleware order, said once', async t => {
  const readers: Array<[string, (app: express.Express) => void, string?]> = [
    ['express.json', app => app.use(express.json())],
    ['express.raw', app => app.use(express.raw({ type: '*/*' }))],
    ['express.text', app => app.use(express.text({ type: '*/*' }))],
    ['express.urlencoded', app => app.use(express.urlencoded({ extended: false })), 'application/x-www-form-urlencoded'],
    ['a logging middleware that reads the body', app => app.use((req: IncomingMessage, _res: ServerResponse, next: () => void) => { req.on('data', () => {}); req.on('end', next) })],
    ['a middleware that reads part of it', app => app.use((req: IncomingMessage, _res: ServerResponse, next: () => void) => { req.once('data', () => { req.pause(); next() }) })]
  ]
  const primaryFake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  let applied = 0
  const primary = await frameworkApp('express', { db: 'app.db', mount: primaryFake.mount, api: primaryFake.apiUrl }, { routes: { 'POST /notes': (_req, res) => { applied++; json(res, 201, {}) } } })
  t.teardown(async () => { await primary.close(); await primaryFake.close() })
  for (const [name, mount, type = 'application/json'] of readers) {
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    const errors: string[] = []
    const warnings: string[] = []
    const logger = { debug () {}, info () {}, warn: (_o: object, msg: string) => { warnings.push(msg) }, error: (_o: object, msg: string) => { errors.push(msg) } }
    const replica = await frameworkApp('express', { db: 'app.db', mount: fake.mount, api: fake.apiUrl, primaryUrl: () => primary.url }, { routes: {}, express: mount, logger })
    t.teardown(async () => { await replica.close(); await fake.close() })
    await until(() => replica.state.primaryHostname === 'node-a')
    for (let i = 0; i < 2; i++) {
      const res = await call(`${replica.url}/notes`, { method: 'POST', headers: { 'content-type': type }, body: type === 'application/json' ? '{"text":"' + 'x'.repeat(70_000) + '"}' : 'text=' + 'x'.repeat(70_000) })
      t.equal(res.status, 500, name)
      t.equal(res.body.code, 'LITEFS_BODY_CONSUMED')
      t.match(res.body.error, /mount litefs-proxy before any body parser/)
    }
    t.equal(errors.length, 1, `${name}: said once in the log`)
    // The first write: that one line alone; the second: a line of its own, which says nothing was forwarded.
    t.same(warnings, ['litefs-proxy: a write on this replica was not forwarded: its body was read before litefs-proxy'], `${name}: no line says forwarding failed`)
  }
  t.equal(applied, 0, 'nothing reached the primary')
})

t.test('5. path options match every spelling the router routes to the same handler', async t => {
  const routes = echoRoutes(['GET /oauth/callback', 'GET /hook', 'POST /hook'])
  const check = async (t: Test, adapter: AdapterName, replicaOpts: FrameworkOptions extends infer _ ? Partial<FrameworkOptions> : never, spellings: string[], routed: boolean): Promise<void> => {
    const build = (fake: FakeLitefs, hit: (n: string) => void): FrameworkOptions => ({ ...routes(fake, hit), ...replicaOpts })
    const { primary, replica } = await pair(t, adapter, { alwaysForward: ['/oauth/callback'], passthrough: ['/hook'] }, build)
    for (const path of spellings) {
      const before = primary.hits['GET /oauth/callback'] ?? 0
      const res = await call(`${replica.url}${path}`)
      if (!routed) {
        t.equal(res.status, 404, `${adapter} ${path}: the router does not route it; neither node does anything else`)
        continue
      }
      t.equal(res.status, 200, `${adapter} ${path}`)
      t.equal(primary.hits['GET /oauth/callback'], before + 1, `${adapter} ${path}: alwaysForward — ran on the primary`)
    }
  }
  await t.test('Fastify decodes: /oauth/%63allback', async t => await check(t, 'fastify', {}, ['/oauth/callback', '/oauth/%63allback', '/%6Fauth/callback'], true))
  await t.test('Fastify, case-insensitive, ignoring trailing and duplicate slashes', async t =>
    await check(t, 'fastify', { fastify: { routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true } } as any },
      ['/OAuth/Callback', '/oauth/callback/', '//oauth//callback', '/OAUTH/%63ALLBACK/'], true))
  await t.test('Express defaults: case-insensitive, optional trailing slash', async t => await check(t, 'express', {}, ['/oauth/callback/', '/OAuth/Callback', '/OAUTH/CALLBACK/'], true))
  await t.test('Express with case sensitive and strict routing: those spellings are routed nowhere', async t =>
    await check(t, 'express', { express: app => { app.set('case sensitive routing', true); app.set('strict routing', true) } }, ['/oauth/callback/', '/OAuth/Callback'], false))
  await t.test('node:http has no router: the exact path', async t => await check(t, 'http', {}, ['/oauth/callback'], true))

  await t.test('passthrough and the health check, the same way', async t => {
    for (const [adapter, opts, spellings] of [
      ['express', {}, ['/Hook', '/hook/']],
      ['fastify', { fastify: { routerOptions: { caseSensitive: false, ignoreTrailingSlash: true } } as any }, ['/HOOK', '/hook/']]
    ] as const) {
      const build = (fake: FakeLitefs, hit: (n: string) => void): FrameworkOptions => ({ ...routes(fake, hit), ...opts })
      const { primary, replica } = await pair(t, adapter, { passthrough: ['/hook'] }, build)
      for (const path of spellings) {
        const res = await call(`${replica.url}${path}`, { method: 'POST', body: 'x' })
        t.equal(res.status, 201, `${adapter} POST ${path}`)
        t.equal(res.body.litefs.kind, 'passthrough', `${adapter} POST ${path}: passthrough — handled here, untouched`)
      }
      t.equal(primary.hits['POST /hook'], undefined)
      for (const path of ['/LiteFS/Health', '/litefs/health/']) {
        const res = await call(`${replica.url}${path}`)
        t.equal(res.body.status, 'ok', `${adapter} ${path}: the health check`)
      }
      if (adapter === 'fastify') {
        // Passthrough comes first (DESIGN §3): the health route itself then answers.
        const covered = await node(t, adapter, 'replica', { passthrough: ['/litefs/*'] }, build)
        t.equal((await call(`${covered.url}/litefs/health`)).body.status, 'ok', 'Fastify: the health route answers under a passthrough glob')
      }
    }
  })
})

t.test('6. HTTP/2 clients: a write on a replica is forwarded in the protocol the primary speaks', async t => {
  // The same app on both nodes (an h2c-only server: HTTP/2 it is), then a
  // cluster whose primary speaks HTTP/1.1 only: forwardProtocol says so.
  for (const [adapter, opts, primaryOpts, replicaLitefs, version] of [
    ['fastify', { fastify: { http2: true } as any }, { fastify: { http2: true } as any }, {}, '2.0'],
    ['http', { http2: true }, { http2: true }, {}, '2.0'],
    ['fastify', { fastify: { http2: true } as any }, {}, { forwardProtocol: 'http1' }, '1.1'],
    ['http', { http2: true }, {}, { forwardProtocol: 'http1' }, '1.1']
  ] as const) {
    const echo = (fake: FakeLitefs, hit: (n: string) => void, o: object): FrameworkOptions => {
      const built = echoRoutes(['POST /notes'])(fake, hit)
      const handler = built.routes['POST /notes']
      return { ...built, ...o, routes: { 'POST /notes': (req, res, body) => { (req.headers as Record<string, string>)['x-version'] = req.httpVersion; return handler(req, res, body) } } }
    }
    const { primary, replica } = await pair(t, adapter, replicaLitefs, (f, h) => echo(f, h, opts), (f, h) => echo(f, h, primaryOpts))
    const session = h2connect(replica.url)
    t.teardown(() => session.close())
    const res = await new Promise<{ status: number, body: any, cookie: unknown }>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/notes', 'content-type': 'text/plain' })
      let status = 0
      let cookie: unknown
      let text = ''
      stream.on('response', h => { status = h[':status'] as number; cookie = h['set-cookie'] })
      stream.on('data', c => { text += c })
      stream.on('end', () => resolve({ status, body: JSON.parse(text), cookie }))
      stream.on('error', reject)
      stream.end('hello')
    })
    t.equal(res.status, 201, `${adapter} → HTTP/${version}: answered by the primary`)
    t.equal(primary.hits['POST /notes'], 1)
    t.equal(res.body.headers['x-version'], version, `the primary was spoken to in HTTP/${version}`)
    const authority = version === '2.0' ? res.body.headers[':authority'] : res.body.headers.host
    t.equal(authority, new URL(replica.url).host, 'the host the client asked for')
    if (version === '1.1') t.notOk(Object.keys(res.body.headers).some(k => k.startsWith(':')), 'no pseudo-header reached an HTTP/1.1 primary')
    t.equal(res.body.bytes, 5)
    t.match(String(res.cookie), /litefs-txid=/)
    session.close()
  }
})
