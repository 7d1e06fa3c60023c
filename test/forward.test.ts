// Writes that land on a replica reach the primary: two real servers on
// loopback, each with the adapter under test and its own fake LiteFS.
import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { request } from 'undici'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type AdapterName, type RouteDef, type Served } from './helpers/apps.js'
import { FORWARDED_HEADER } from '../lib/core/forward.js'
import { CHANNELS } from '../lib/core/observe.js'
import diagnostics from 'node:diagnostics_channel'

type Test = typeof t

async function rawRequest (url: string, method: string, headers: Record<string, string>, body: string): Promise<{ statusCode: number, headers: IncomingHttpHeaders, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { text += chunk })
      res.on('end', () => resolve({ statusCode: res.statusCode as number, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

type Hits = Record<string, number>

interface Node extends Served { fake: FakeLitefs, hits: Hits }
interface Pair {
  primary: Node & { release: () => void }
  replica: Node
  urls: Record<string, string>
  /** Hostnames the replica looked up, one per forwarding attempt. */
  tried: string[]
}

/** The routes both nodes run (the same app everywhere, as in production); `hits` counts where they ran. */
function appRoutes (fake: FakeLitefs, hits: Hits, hold: Promise<void>): RouteDef[] {
  const hit = (name: string): void => { hits[name] = (hits[name] ?? 0) + 1 }
  return [
    {
      method: 'POST',
      path: '/hash',
      handler: ctx => {
        hit('hash')
        return { body: { sha256: createHash('sha256').update(ctx.body).digest('hex'), bytes: ctx.body.length } }
      }
    },
    {
      method: 'POST',
      path: '/full',
      handler: ctx => {
        hit('full')
        fake.advance(fake.txid + 1n, { event: false })
        const echo = ctx.body.length > 0 && String(ctx.headers['content-type']).includes('json') ? JSON.parse(ctx.body.toString()) : null
        return { status: 201, headers: { 'x-custom': 'yes', 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'] }, body: { echo, headers: ctx.headers } }
      }
    },
    {
      method: 'GET',
      path: '/sse',
      setting: { alwaysForward: true },
      stream: res => {
        hit('sse')
        res.once('close', () => hit('sse-closed'))
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: 1\n\n')
        void hold.then(() => res.end('data: 2\n\n'))
      }
    },
    {
      method: 'GET',
      path: '/big',
      setting: { alwaysForward: true },
      stream: res => {
        // 64 MB, written only as fast as it is taken: more than every buffer between here and a client that does not read.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(64 << 20) })
        const chunk = Buffer.alloc(1 << 20, 7)
        let sent = 0
        const more = (): void => {
          while (sent < 64) {
            sent++
            if (!res.write(chunk)) { hit('big-blocked'); res.once('drain', more); return }
          }
          res.end()
        }
        more()
      }
    },
    {
      method: 'POST',
      path: '/hints',
      stream: res => {
        hit('hints')
        res.writeEarlyHints({ link: '</app.css>; rel=preload' }) // a 103 before the answer
        res.writeHead(200, { 'content-type': 'text/plain' }).end('after the hints')
      }
    },
    {
      method: 'POST',
      path: '/die',
      handler: async ctx => {
        hit('die')
        ctx.raw.socket.destroy() // the primary goes away mid-request
        return await new Promise(() => {})
      }
    },
    {
      method: 'POST',
      path: '/slow',
      handler: async ctx => {
        hit('slow')
        ctx.raw.socket.once('close', () => hit('slow-abandoned'))
        await hold
        return { body: 'late' }
      }
    },
    // Reads its body only once released: the replica must stop pulling from its client meanwhile.
    { method: 'POST', path: '/slow-body', bodyAfter: hold, handler: ctx => ({ body: { bytes: ctx.body.length } }) }
  ]
}

async function node (t: Test, adapter: AdapterName, fake: FakeLitefs, opts: Record<string, unknown>, hold: Promise<void>, bodyLimit?: number): Promise<Node> {
  const hits: Hits = {}
  const served = await serve(adapter, fake, opts, { routes: appRoutes(fake, hits, hold), bodyLimit })
  t.teardown(async () => { await served.close() })
  return Object.assign(served, { fake, hits })
}

/** A primary (node-a) and a replica pointing at it, the replica's primaryUrl mapped through `urls`. */
async function pair (t: Test, adapter: AdapterName, replicaOpts: Record<string, unknown> = {}): Promise<Pair> {
  let release = (): void => {}
  const hold = new Promise<void>(resolve => { release = resolve })
  t.teardown(() => release())
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await rfake.close(); await pfake.close() })
  const primary = await node(t, adapter, pfake, {}, hold, 64 << 20)
  const urls: Record<string, string> = { 'node-a': primary.url }
  const tried: string[] = []
  const primaryUrl = (host: string): string => { tried.push(host); return urls[host] ?? `http://${host}.invalid` }
  const replica = await node(t, adapter, rfake, { primaryUrl, ...replicaOpts }, hold)
  await until(() => primary.state.role === 'primary' && replica.state.primaryHostname === 'node-a', 'roles known')
  return { primary: Object.assign(primary, { release }), replica, urls, tried }
}

for (const adapter of ADAPTERS) {
  t.test(adapter, async t => {
    t.test('a POST to a replica runs exactly once, on the primary; the answer comes back whole', async t => {
      const { primary, replica } = await pair(t, adapter)
      // node:http sends these headers as given (undici would rewrite Connection itself).
      const res = await rawRequest(`${replica.url}/full`, 'POST', {
        'content-type': 'application/json', cookie: 'x=1', connection: 'x-drop, keep-alive', 'x-drop': 'secret', 'proxy-authorization': 'Basic Zm9v', 'x-forwarded-for': '10.9.8.7'
      }, JSON.stringify({ hello: 'world' }))
      const body = JSON.parse(res.body)
      t.equal(res.statusCode, 201, 'status from the primary')
      t.equal(res.headers['x-custom'], 'yes')
      t.same(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/', 'litefs-txid=000000000000000b; Path=/; HttpOnly; SameSite=Lax; Max-Age=300'],
        "both of the app's cookies and the primary's TXID cookie")
      t.same(body.echo, { hello: 'world' })
      t.equal(primary.hits.full, 1, 'ran once on the primary')
      t.same(replica.hits, {}, 'ran nowhere else')
      t.equal(body.headers.host, new URL(replica.url).host, "the client's Host is kept")
      t.equal(body.headers['x-drop'], undefined, 'headers named by Connection are dropped')
      t.equal(body.headers['proxy-authorization'], undefined, 'Proxy-* headers are dropped')
      t.equal(body.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For: the client this replica believes (it trusts no proxy: its peer), not a chain it cannot vouch for')
      t.equal(body.headers['x-forwarded-proto'], 'http')
      t.equal(body.headers['x-forwarded-host'], new URL(replica.url).host)
      t.type(body.headers[FORWARDED_HEADER], 'string', 'marked as forwarded')
    })

    t.test('a 5 MB body arrives intact, streamed', async t => {
      const { primary, replica } = await pair(t, adapter)
      const big = Buffer.alloc(5 << 20)
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff
      const expected = createHash('sha256').update(big).digest('hex')
      const chunks = function * (): Generator<Buffer> { for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536) }
      for (const [label, headers] of [['chunked', {}], ['with length', { 'content-length': String(big.length) }]] as const) {
        const res = await request(`${replica.url}/hash`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', ...headers },
          body: Readable.from(chunks())
        })
        const body = await res.body.json() as any
        t.equal(res.statusCode, 200, `${label}: no limit of the replica's own (the primary's app takes 64 MiB)`)
        t.equal(body.bytes, big.length)
        t.equal(body.sha256, expected, 'same bytes on the primary')
      }
      t.equal(primary.hits.hash, 2)
      const capped = await serve(adapter, replica.fake, { primaryUrl: () => primary.url, forwardBodyLimit: 1 << 20 })
      t.teardown(() => capped.close())
      for (const [label, headers] of [['chunked', {}], ['with length', { 'content-length': String(big.length) }]] as const) {
        const res = await request(`${capped.url}/hash`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body: Readable.from(chunks()) })
        t.equal(res.statusCode, 413, `${label}: past forwardBodyLimit, when the user asks for one: 413`)
        t.equal((await res.body.json() as any).code, 'LITEFS_BODY_TOO_LARGE')
      }
      t.equal(primary.hits.hash, 2, 'the primary never ran the handler for a body past the limit')
    })

    t.test('backpressure: a primary that reads slowly slows the client down, nothing piles up', async t => {
      const { primary, replica: small } = await pair(t, adapter)
      const replica = await serve(adapter, small.fake, { primaryUrl: () => primary.url })
      t.teardown(() => replica.close())
      let raw: import('node:http').IncomingMessage | undefined
      replica.server.on('request', (req: import('node:http').IncomingMessage) => { raw = req })
      await until(() => replica.state.primaryHostname === 'node-a')
      const chunk = Buffer.alloc(1 << 20, 1)
      const body = async function * (): AsyncGenerator<Buffer> { for (let i = 0; i < 48; i++) yield chunk }
      const pending = request(`${replica.url}/slow-body`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Readable.from(body()) })
      await until(() => raw?.isPaused() === true, 'the replica paused its client')
      primary.release()
      const res = await pending
      t.same(await res.body.json(), { bytes: 48 << 20 })
    })

    t.test('a large answer to a client that reads late: the replica waits for it, then all arrives', async t => {
      const { replica } = await pair(t, adapter, { alwaysForward: ['/big'] })
      let toClient: import('node:http').ServerResponse | undefined
      replica.server.on('request', (_req: unknown, r: import('node:http').ServerResponse) => { toClient = r })
      const res = await new Promise<import('node:http').IncomingMessage>(resolve => httpRequest(`${replica.url}/big`, { agent: false }, resolve).end())
      res.pause()
      await until(() => toClient?.writableNeedDrain === true, 'the replica\'s answer to the client is backed up')
      let bytes = 0
      res.on('data', (c: Buffer) => { bytes += c.length })
      res.resume()
      await new Promise(resolve => res.on('end', resolve))
      t.equal(bytes, 64 << 20, 'all of it arrived once read')
    })

    t.test('a server-sent-events answer arrives event by event', async t => {
      const { primary, replica } = await pair(t, adapter)
      const res = await request(`${replica.url}/sse`)
      t.equal(res.headers['content-type'], 'text/event-stream')
      const it = res.body[Symbol.asyncIterator]()
      const first = await it.next()
      t.equal(Buffer.from(first.value).toString(), 'data: 1\n\n', 'the first event before the primary sent the second')
      primary.release()
      let rest = ''
      for (let r = await it.next(); r.done !== true; r = await it.next()) rest += Buffer.from(r.value).toString()
      t.equal(rest, 'data: 2\n\n')
      t.equal(primary.hits.sse, 1)
    })

    t.test('a client that leaves mid-answer closes the stream from the primary too', async t => {
      const { primary, replica } = await pair(t, adapter)
      const res = await new Promise<import('node:http').IncomingMessage>(resolve => httpRequest(`${replica.url}/sse`, { agent: false }, resolve).end())
      const first = await new Promise<string>(resolve => res.once('data', chunk => resolve(String(chunk))))
      t.equal(first, 'data: 1\n\n')
      res.destroy()
      await until(() => primary.hits['sse-closed'] === 1, 'the primary\'s stream ended')
      t.pass('the replica let go of both ends')
    })

    t.test('primary gone, a new one announced within the window: the write lands once', async t => {
      const { primary, replica, urls } = await pair(t, adapter)
      replica.fake.losePrimary()
      await until(() => replica.state.primaryHostname === undefined)
      const pending = request(`${replica.url}/full`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })
      await until(() => replica.state.waiterCount === 1, 'write held for a primary')
      urls['node-b'] = primary.url
      replica.fake.becomeReplica('node-b')
      const res = await pending
      const body = await res.body.json() as any
      t.equal(res.statusCode, 201)
      t.same(body.echo, { n: 1 })
      t.equal(primary.hits.full, 1, 'exactly once')
    })

    t.test('a client that gives up while its write waits for a primary leaves nothing behind', async t => {
      const { primary, replica } = await pair(t, adapter)
      replica.fake.losePrimary()
      await until(() => replica.state.primaryHostname === undefined)
      const client = httpRequest(`${replica.url}/full`, { method: 'POST', agent: false })
      client.on('error', () => {})
      client.end('{}')
      await until(() => replica.state.waiterCount === 1)
      client.destroy()
      await until(() => replica.state.waiterCount === 0, 'waiter gone')
      t.equal(primary.hits.full, undefined)
    })

    t.test('this node promoted while a write waits: served here', async t => {
      const { primary, replica } = await pair(t, adapter)
      replica.fake.losePrimary()
      await until(() => replica.state.primaryHostname === undefined)
      const pending = request(`${replica.url}/items`, { method: 'POST' })
      await until(() => replica.state.waiterCount === 1)
      replica.fake.becomePrimary()
      const res = await pending
      const body = await res.body.json() as any
      t.equal(res.statusCode, 200)
      t.equal(body.litefs.local, true)
      t.equal(replica.writes, 1, 'the new primary ran it')
      t.equal(primary.writes, 0)
      t.match(res.headers['set-cookie'], /^litefs-txid=0000000000000006;/)
    })

    t.test('no primary for the whole window: 503 with Retry-After', async t => {
      const { primary, replica } = await pair(t, adapter, { primaryRedirectTimeout: 30 })
      replica.fake.losePrimary()
      await until(() => replica.state.primaryHostname === undefined)
      const res = await request(`${replica.url}/full`, { method: 'POST', body: 'x' })
      t.equal(res.statusCode, 503)
      t.equal(res.headers['retry-after'], '1')
      t.equal((await res.body.json() as any).code, 'LITEFS_NO_PRIMARY')
      t.equal(primary.hits.full, undefined)
    })

    t.test('a connection refused before sending is retried against a fresh primary', async t => {
      const { primary, replica, urls, tried } = await pair(t, adapter)
      const closed = createServer()
      await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
      const deadPort = (closed.address() as AddressInfo).port
      await new Promise(resolve => closed.close(resolve))
      urls['node-a'] = `http://127.0.0.1:${deadPort}` // the old primary: nothing listens there any more
      const pending = request(`${replica.url}/full`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":2}' })
      await until(() => tried.length === 1, 'the old primary tried (and refused)')
      urls['node-b'] = primary.url
      replica.fake.becomeReplica('node-b')
      const res = await pending
      t.equal(res.statusCode, 201)
      t.same((await res.body.json() as any).echo, { n: 2 }, 'the body survived the refused attempt')
      t.equal(primary.hits.full, 1, 'once')
      t.equal(tried[0], 'node-a')
      t.equal(tried.at(-1), 'node-b')
    })

    t.test('a client that leaves while a refused forward is retried: no further attempt reaches the primary', async t => {
      const { primary, replica, urls } = await pair(t, adapter)
      const closed = createServer()
      await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
      const deadPort = (closed.address() as AddressInfo).port
      await new Promise(resolve => closed.close(resolve))
      urls['node-a'] = `http://127.0.0.1:${deadPort}`
      const ends: Array<{ outcome: string, code?: string }> = []
      const onEnd = (m: unknown): void => { ends.push(m as { outcome: string, code?: string }) }
      diagnostics.subscribe(CHANNELS.forwardEnd, onEnd)
      t.teardown(() => { diagnostics.unsubscribe(CHANNELS.forwardEnd, onEnd) })
      const client = httpRequest(`${replica.url}/full`, { method: 'POST', agent: false })
      client.on('error', () => {})
      client.end('{"n":3}')
      await until(() => ends.some(e => e.code === 'LITEFS_NO_PRIMARY'), 'refused once')
      client.destroy()
      urls['node-a'] = primary.url // reachable again: a retry would now deliver the write
      await until(() => ends.some(e => e.outcome === 'gone'), 'the next attempt saw the client gone')
      t.equal(primary.hits.full, undefined, 'nothing reached the primary')
      t.equal(ends.filter(e => e.outcome === 'sent').length, 0)
    })

    t.test('a refused connection past the window: 503', async t => {
      const { replica, urls } = await pair(t, adapter, { primaryRedirectTimeout: 150 })
      urls['node-a'] = 'http://127.0.0.1:9'
      const res = await request(`${replica.url}/full`, { method: 'POST', body: 'x' })
      t.equal(res.statusCode, 503)
      const body = await res.body.json() as any
      t.equal(body.code, 'LITEFS_NO_PRIMARY')
      t.match(body.error, /could not be reached \(ECONNREFUSED\)/)
    })

    t.test('an informational 103 from the primary is skipped; the final answer comes through', async t => {
      const { primary, replica } = await pair(t, adapter)
      const res = await request(`${replica.url}/hints`, { method: 'POST', body: '{}' })
      t.equal(res.statusCode, 200)
      t.equal(await res.body.text(), 'after the hints')
      t.equal(primary.hits.hints, 1)
    })

    t.test('the primary dies mid-request: 502, and the write is not retried', async t => {
      const { primary, replica } = await pair(t, adapter)
      const res = await request(`${replica.url}/die`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      t.equal(res.statusCode, 502)
      const body = await res.body.json() as any
      t.equal(body.code, 'LITEFS_FORWARD_FAILED')
      t.match(body.error, /not retried/)
      t.equal(primary.hits.die, 1, 'the handler ran once: no second attempt')
    })

    t.test('past forwardTimeout: 504', async t => {
      const { primary, replica } = await pair(t, adapter, { forwardTimeout: 30 })
      const res = await request(`${replica.url}/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      t.equal(res.statusCode, 504)
      t.equal((await res.body.json() as any).code, 'LITEFS_FORWARD_TIMEOUT')
      t.equal(primary.hits.slow, 1)
    })

    t.test('a client that leaves mid-forward: nothing is answered, nothing is left', async t => {
      const { primary, replica } = await pair(t, adapter)
      const client = httpRequest(`${replica.url}/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false })
      client.on('error', () => {})
      client.end('{}')
      await until(() => primary.hits.slow === 1, 'reached the primary')
      client.destroy() // the client hangs up while the primary works
      await until(() => primary.hits['slow-abandoned'] === 1, 'the replica dropped its request to the primary')
      const after = await request(`${replica.url}/full`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      await after.body.dump()
      t.equal(primary.hits.slow, 1, 'and did not send it again')
    })

    t.test('loop guard: a forwarded write reaching a replica goes on to the primary once, never in a circle', async t => {
      const { primary, replica } = await pair(t, adapter, { primaryRedirectTimeout: 200 })
      // Forwarded by one node that took this one for the primary (demoted meanwhile): nothing
      // was applied on the way, so it goes on to the primary this node knows.
      const onward = await request(`${replica.url}/full`, { method: 'POST', headers: { [FORWARDED_HEADER]: 'node-x', 'content-type': 'application/json' }, body: '{}' })
      const echoed = await onward.body.json() as any
      t.equal(onward.statusCode, 201, 'answered by the primary')
      t.equal(primary.hits.full, 1, 'applied once, on the primary')
      t.match(echoed.headers[FORWARDED_HEADER], /^node-x, \S+$/, 'the marker names both forwarders')
      // Forwarded by two nodes already (or a client forging that): never a third time.
      for (const marker of ['node-x, node-y', ['node-x', 'node-y'], 'forged, by, a client']) {
        const res = await request(`${replica.url}/full`, { method: 'POST', headers: { [FORWARDED_HEADER]: marker, 'content-type': 'application/json' }, body: '{}' })
        t.equal(res.statusCode, 503)
        t.equal((await res.body.json() as any).code, 'LITEFS_NO_PRIMARY')
      }
      t.equal(primary.hits.full, 1, 'not forwarded again')
      t.equal(replica.writes, 0, 'never written locally on a replica')
      // A client that gives up while held leaves nothing behind.
      const ac = new AbortController()
      const gone = request(`${replica.url}/full`, { method: 'POST', headers: { [FORWARDED_HEADER]: 'node-x, node-y' }, body: '{}', signal: ac.signal })
      await until(() => replica.state.waiterCount === 1)
      ac.abort()
      await t.rejects(gone)
      await until(() => replica.state.waiterCount === 0)
      // Held for the primary role: if this node is promoted meanwhile, it serves the write.
      const pending = request(`${replica.url}/items`, { method: 'POST', headers: { [FORWARDED_HEADER]: 'node-x, node-y' } })
      await until(() => replica.state.waiterCount === 1)
      replica.fake.becomePrimary()
      const res = await pending
      t.equal(res.statusCode, 200)
      t.equal(replica.writes, 1)
    })

    t.test('a forwarded request on the primary is served there', async t => {
      const { primary } = await pair(t, adapter)
      const res = await request(`${primary.url}/items`, { method: 'POST', headers: { [FORWARDED_HEADER]: 'node-b' } })
      await res.body.dump()
      t.equal(res.statusCode, 200)
      t.equal(primary.writes, 1)
    })

    t.test('fly-replay: the exact header, and nothing else runs', async t => {
      const { primary, replica } = await pair(t, adapter, { forward: 'fly-replay' })
      const res = await request(`${replica.url}/full`, { method: 'POST', body: 'x' })
      t.equal(res.statusCode, 200)
      t.equal(res.headers['fly-replay'], 'instance=node-a')
      t.equal(await res.body.text(), '')
      t.equal(primary.hits.full, undefined)
    })

    t.test('readTimeoutAction primary: a read the replica cannot serve in time goes to the primary', async t => {
      const { replica } = await pair(t, adapter, { readTimeout: 20, readTimeoutAction: 'primary' })
      const res = await request(`${replica.url}/items`, { headers: { cookie: 'litefs-txid=0000000000000009' } })
      const body = await res.body.json() as any
      t.equal(res.statusCode, 200)
      t.equal(body.litefs.role, 'primary', 'answered by the primary')
      t.equal(body.litefs.awaitedTxid, '0000000000000009')
    })
  })
}
