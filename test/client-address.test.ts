// Issue 18, kind 7: the client's address, as the primary's app sees it. A write
// that landed on a replica carried one more X-Forwarded-For entry than the same
// write sent to the primary, so with Express's `trust proxy 1` (one balancer)
// the primary's app took the balancer for the client, and Django REST
// framework's NUM_PROXIES had no value right for both paths behind serve. Now
// the primary's app sees the same client whichever node the request landed on,
// under every trust setting that trusts the replicas (a hop count does; an
// address list or a function must name them), while a replica passes on only
// the part of the chain its own setting believes.
//
// Addresses on loopback: the balancer is 127.0.0.2 (the test's client binds it
// and sends the real client's address), the replicas forward from 127.0.0.1,
// a client without balancer connects from 127.0.0.3.
import t from 'tap'
import { Agent, request } from 'undici'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pair, type Flavour } from './helpers/pairs.js'

const BALANCER = '127.0.0.2'
const REPLICA = '127.0.0.1'
const DIRECT = '127.0.0.3'
const CLIENT = '203.0.113.7'
const FORGED = '6.6.6.6'

const from = (address: string): Agent => new Agent({ localAddress: address })
const agents = { [BALANCER]: from(BALANCER), [DIRECT]: from(DIRECT) }
t.teardown(async () => { await Promise.all(Object.values(agents).map(async a => await a.close())) })

/** The app's idea of the client: the framework's (req.ip), or, without one, the chain counted as Django REST framework's NUM_PROXIES does. */
function clientOf (numProxies: number | undefined) {
  return (req: IncomingMessage & { ip?: string }, res: ServerResponse): void => {
    req.resume()
    req.on('end', () => {
      let client = req.ip
      if (numProxies !== undefined) {
        const xff = req.headers['x-forwarded-for']
        const addrs = typeof xff === 'string' ? xff.split(',').map(s => s.trim()) : []
        client = addrs.length === 0 ? req.socket.remoteAddress : addrs[addrs.length - Math.min(numProxies, addrs.length)]
      }
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ client, xff: req.headers['x-forwarded-for'] ?? null }))
    })
  }
}

interface Scenario {
  name: string
  flavour: Flavour
  /** Framework options (trust settings), on both nodes. */
  framework?: Record<string, unknown>
  /** litefs-proxy options, on both nodes (node:http's trustProxy, serve's --trust-proxy). */
  litefs?: Record<string, unknown>
  /** The app counts hops itself (node:http, and Django behind serve). */
  numProxies?: number
  /** Where the request comes from, and the X-Forwarded-For it carries. */
  source: string
  xff?: string
  /** The client the primary's app sees, for a request sent to the primary and to a replica. */
  expect: string
  /** What the app sees instead for a request forwarded by a replica, where no setting can help. */
  forwarded?: string
}

const express = (value: unknown): Record<string, unknown> => ({ express: (app: { set: (k: string, v: unknown) => void }) => app.set('trust proxy', value) })
const fastify = (value: unknown): Record<string, unknown> => ({ fastify: { trustProxy: value } })
const ONE = `${FORGED}, ${CLIENT}` // a forged entry, then what one balancer appended
const TWO = `${FORGED}, ${CLIENT}, 10.0.0.1` // …and a second balancer in front of the first

const SCENARIOS: Scenario[] = [
  { name: 'trust proxy 1, one balancer (the issue)', flavour: 'express', framework: express(1), source: BALANCER, xff: ONE, expect: CLIENT },
  { name: 'trust proxy 2, two balancers', flavour: 'express', framework: express(2), source: BALANCER, xff: TWO, expect: CLIENT },
  { name: 'trust proxy true: the leftmost, forged or not, both ways', flavour: 'express', framework: express(true), source: BALANCER, xff: ONE, expect: FORGED },
  { name: 'trust proxy: a list naming the balancer and the replicas', flavour: 'express', framework: express([BALANCER, REPLICA]), source: BALANCER, xff: ONE, expect: CLIENT },
  { name: 'trust proxy: a function of the address', flavour: 'express', framework: express((ip: string) => ip === BALANCER || ip === REPLICA), source: BALANCER, xff: ONE, expect: CLIENT },
  { name: 'trust proxy: a function of the hop index', flavour: 'express', framework: express((_ip: string, i: number) => i < 1), source: BALANCER, xff: ONE, expect: CLIENT },
  { name: 'trust proxy: a list, no balancer: the client connects itself', flavour: 'express', framework: express([BALANCER, REPLICA]), source: DIRECT, xff: FORGED, expect: DIRECT },
  { name: 'trust proxy 1, no balancer (a misconfiguration: the forged entry, both ways)', flavour: 'express', framework: express(1), source: DIRECT, xff: FORGED, expect: FORGED },
  { name: 'trust proxy off: the socket peer, which for a forwarded request is the replica', flavour: 'express', framework: express(false), source: BALANCER, xff: ONE, expect: BALANCER, forwarded: REPLICA },
  // Fastify ≥ 5.12.1 trusts nothing for a hop count (GHSA-3m5p-2c4r-xxw2): as trust off.
  { name: 'trustProxy 1 (a hop count: trusts nothing in Fastify ≥ 5.12.1)', flavour: 'fastify', framework: fastify(1), source: BALANCER, xff: ONE, expect: BALANCER, forwarded: REPLICA },
  { name: 'trustProxy true', flavour: 'fastify', framework: fastify(true), source: BALANCER, xff: ONE, expect: FORGED },
  { name: 'trustProxy: addresses', flavour: 'fastify', framework: fastify(`${BALANCER},${REPLICA}`), source: BALANCER, xff: ONE, expect: CLIENT },
  { name: 'trustProxy: a function', flavour: 'fastify', framework: fastify((ip: string) => ip === BALANCER || ip === REPLICA), source: BALANCER, xff: ONE, expect: CLIENT },
  { name: 'trustProxy: addresses, no balancer', flavour: 'fastify', framework: fastify(`${BALANCER},${REPLICA}`), source: DIRECT, expect: DIRECT },
  { name: 'trustProxy: true; the app counts one proxy itself', flavour: 'http', litefs: { trustProxy: true }, numProxies: 1, source: BALANCER, xff: ONE, expect: CLIENT },
  { name: 'trustProxy: true; no balancer', flavour: 'http', litefs: { trustProxy: true }, numProxies: 1, source: DIRECT, expect: DIRECT },
  { name: '--trust-proxy; Django NUM_PROXIES = 2 (the balancer and serve)', flavour: 'serve', litefs: { trustProxy: true }, numProxies: 2, source: BALANCER, xff: ONE, expect: CLIENT },
  { name: '--trust-proxy; two balancers, NUM_PROXIES = 3', flavour: 'serve', litefs: { trustProxy: true }, numProxies: 3, source: BALANCER, xff: TWO, expect: CLIENT },
  { name: 'no --trust-proxy behind a balancer (as the README warns): a forwarded write carries the balancer as its client', flavour: 'serve', numProxies: 2, source: BALANCER, xff: ONE, expect: CLIENT, forwarded: BALANCER }
]

for (const s of SCENARIOS) {
  t.test(`${s.flavour}, ${s.name}`, async t => {
    const routes = (): Record<string, ReturnType<typeof clientOf>> => ({ 'POST /who': clientOf(s.numProxies) })
    const { primary, replica } = await pair(t, s.flavour, { routes, primary: s.litefs, replica: s.litefs, framework: { unread: true, ...s.framework } })
    const seen: Record<string, { client: string, xff: string | null }> = {}
    for (const [where, node] of [['primary', primary], ['replica', replica]] as const) {
      const res = await request(`${node.url}/who`, { method: 'POST', body: 'x', headers: s.xff === undefined ? {} : { 'x-forwarded-for': s.xff }, dispatcher: agents[s.source as keyof typeof agents] })
      t.equal(res.statusCode, 201)
      seen[where] = await res.body.json() as { client: string, xff: string | null }
    }
    t.equal(primary.hits.length, 2, 'both answered by the primary')
    t.equal(seen.primary.client, s.expect, `sent to the primary: the client is ${s.expect} (X-Forwarded-For ${String(seen.primary.xff)})`)
    t.equal(seen.replica.client, s.forwarded ?? s.expect, `landed on the replica: ${s.forwarded ?? 'the same client'} (X-Forwarded-For ${String(seen.replica.xff)})`)
  })
}

t.test('what a replica vouches for: never more of the chain than its own setting believes', async t => {
  // The replica trusts one hop, the primary everything (a setting that differs
  // between nodes): the forged entry, which the replica did not believe, does
  // not reach the primary through it.
  const routes = (): Record<string, ReturnType<typeof clientOf>> => ({ 'POST /who': clientOf(undefined) })
  const { replica } = await pair(t, 'express', { routes, framework: { unread: true, ...express(1) }, primaryFramework: express(true) })
  const res = await request(`${replica.url}/who`, { method: 'POST', body: 'x', headers: { 'x-forwarded-for': ONE }, dispatcher: agents[BALANCER] })
  t.same(await res.body.json(), { client: CLIENT, xff: CLIENT }, 'the chain from the client the replica believes; its peer (the balancer) not added')
})

t.test('serve and X-Forwarded-Proto: the balancer\'s is believed with --trust-proxy only (else http: Django\'s SECURE_SSL_REDIRECT would loop)', async t => {
  const proto = (req: IncomingMessage, res: ServerResponse): void => { req.resume(); req.on('end', () => res.writeHead(200).end(String(req.headers['x-forwarded-proto']))) }
  for (const trustProxy of [false, true]) {
    const { primary, replica } = await pair(t, 'serve', { routes: () => ({ 'GET /proto': proto, 'POST /proto': proto }), primary: { trustProxy }, replica: { trustProxy } })
    for (const [node, method] of [[primary, 'GET'], [replica, 'GET'], [replica, 'POST']] as const) {
      const res = await request(`${node.url}/proto`, { method, body: method === 'POST' ? 'x' : undefined, headers: { 'x-forwarded-proto': 'https' }, dispatcher: agents[BALANCER] })
      t.equal(await res.body.text(), trustProxy ? 'https' : 'http', `--trust-proxy ${String(trustProxy)}: ${method} on the ${node === primary ? 'primary' : 'replica'}`)
    }
  }
})
