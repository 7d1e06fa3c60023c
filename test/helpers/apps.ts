// The same small app in each adapter (Fastify plugin, Express middleware,
// node:http wrapper), on a real loopback port, so one behaviour suite runs
// against all three.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import express from 'express'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { litefs as fastifyLitefs } from '../../lib/fastify.js'
import { litefs as expressLitefs } from '../../lib/express.js'
import { wrap } from '../../lib/http.js'
import type { LitefsOptions } from '../../lib/core/options.js'
import type { LitefsCore, LitefsInfo } from '../../lib/core/proxy.js'
import type { NodeState } from '../../lib/core/node-state.js'
import { until, type FakeLitefs } from './fake-litefs.js'

export type AdapterName = 'fastify' | 'express' | 'http'
export const ADAPTERS: readonly AdapterName[] = ['fastify', 'express', 'http']

export interface Ctx {
  method: string
  url: string
  headers: IncomingHttpHeaders
  raw: IncomingMessage
  body: Buffer
  litefs: LitefsInfo | undefined
}

export interface Reply {
  status?: number
  headers?: Record<string, string | string[]>
  body?: unknown // JSON unless a string
}

export interface RouteDef {
  method: string
  /** An exact path, or a prefix ending in `*`. */
  path: string
  /** Route-level setting: `false` is passthrough. */
  setting?: false | { alwaysForward: true } | { durability: boolean }
  handler?: (ctx: Ctx) => Reply | Promise<Reply>
  /** Take over the raw response (server-sent events). */
  stream?: (res: ServerResponse) => void
  /** The body is read only once this resolves (a slow reader). */
  bodyAfter?: Promise<void>
}

export interface Served {
  adapter: AdapterName
  url: string
  state: NodeState
  /** POST /items handled here. */
  writes: number
  /** The adapter's stats(). */
  stats: () => import('../../lib/core/observe.js').LitefsStats
  /** The adapter's core. */
  core: LitefsCore<FastifyReply> | LitefsCore<ServerResponse>
  close: () => Promise<void>
  server: Server
}

export interface ServeOptions {
  routes?: RouteDef[]
  /** Largest body the app accepts (Fastify's bodyLimit; the Express and http test apps take any). */
  bodyLimit?: number
  trustProxy?: boolean
  /** Wait until the app's state follows the fake's API (subscribed, primary confirmed). Default: when the app uses the fake's API. */
  ready?: boolean
}

const quiet = { debug () {}, info () {}, warn () {}, error () {} }

/**
 * A request aborted mid-body (a replica giving up on a forward, a client gone)
 * rejects the app's body read with `aborted`: nobody is left to answer, so the
 * test apps drop the response, as a node:http app would. Handed to Express, it
 * would print the error's stack (its default handler logs outside env 'test').
 */
export function requestAborted (err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET' && (err as Error).message === 'aborted'
}

/** The standard routes: GET/POST /items (a POST commits one transaction on the fake), passthrough and alwaysForward examples. */
function standardRoutes (fake: FakeLitefs, served: { writes: number }): RouteDef[] {
  const show = (ctx: Ctx): Reply => ({ body: { litefs: ctx.litefs ?? null } })
  return [
    { method: 'GET', path: '/items', handler: show },
    {
      method: 'POST',
      path: '/items',
      handler: ctx => {
        served.writes++
        fake.advance(fake.txid + 1n, { event: false }) // the handler's commit: -pos moves now, the event comes later
        return show(ctx)
      }
    },
    { method: 'GET', path: '/static/*', handler: show },
    { method: 'POST', path: '/static/*', handler: show },
    { method: 'GET', path: '/oauth/callback', handler: show },
    { method: 'GET', path: '/opt-out', setting: false, handler: show },
    { method: 'GET', path: '/to-primary', setting: { alwaysForward: true }, handler: show },
    { method: 'OPTIONS', path: '/items', handler: () => ({ status: 204 }) }
  ]
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function matches (route: RouteDef, method: string, path: string): boolean {
  if (route.method !== method) return false
  return route.path.endsWith('*') ? path.startsWith(route.path.slice(0, -1)) : path === route.path
}

/** Run a route on Node's req/res (Express and node:http). */
async function runRaw (route: RouteDef | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (route === undefined) {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
    return
  }
  if (route.stream !== undefined) return route.stream(res)
  await route.bodyAfter
  const body = await readBody(req)
  const reply = await (route.handler as NonNullable<RouteDef['handler']>)({ method: req.method as string, url: req.url as string, headers: req.headers, raw: req, body, litefs: req.litefs })
  const text = typeof reply.body === 'string' ? reply.body : reply.body === undefined ? '' : JSON.stringify(reply.body)
  res.writeHead(reply.status ?? 200, { 'content-type': typeof reply.body === 'string' ? 'text/plain' : 'application/json', ...reply.headers })
  res.end(text)
}

export async function serve (adapter: AdapterName, fake: FakeLitefs, opts: Partial<LitefsOptions> = {}, extra: ServeOptions = {}): Promise<Served> {
  const served = { writes: 0 }
  const routes = [...(extra.routes ?? []), ...standardRoutes(fake, served)]
  const options = { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...opts }
  const find = (method: string, url: string): RouteDef | undefined => {
    const path = url.split('?')[0]
    return routes.find(r => matches(r, method, path))
  }
  let server: Server
  let state: NodeState
  let close: () => Promise<void>
  let stats: Served['stats']
  let core: Served['core']

  if (adapter === 'fastify') {
    // An answer given before a body was read leaves Node draining it on a keep-alive
    // connection; tests close servers at once rather than wait for it to idle.
    const app: FastifyInstance = Fastify({ bodyLimit: extra.bodyLimit, trustProxy: extra.trustProxy, forceCloseConnections: true })
    await app.register(fastifyLitefs, options)
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    for (const route of routes) {
      app.route({
        method: route.method as 'GET',
        url: route.path,
        config: route.setting === undefined ? {} : { litefs: route.setting },
        preParsing: async (_request, _reply, payload) => { await route.bodyAfter; return payload },
        handler: async (request, reply) => {
          if (route.stream !== undefined) { reply.hijack(); route.stream(reply.raw); return reply }
          const r = await (route.handler as NonNullable<RouteDef['handler']>)({ method: request.method, url: request.url, headers: request.headers, raw: request.raw, body: (request.body as Buffer | undefined) ?? Buffer.alloc(0), litefs: request.litefs ?? undefined })
          void reply.code(r.status ?? 200)
          for (const [k, v] of Object.entries(r.headers ?? {})) void reply.header(k, v)
          return await reply.send(r.body ?? '')
        }
      })
    }
    await app.listen({ port: 0, host: '127.0.0.1' })
    server = app.server
    state = app.litefs.state
    stats = () => app.litefs.stats()
    core = app.litefs
    close = async () => { await app.close() }
  } else if (adapter === 'express') {
    const proxy = expressLitefs({ logger: quiet, ...options }) // a test's own logger wins
    const app = express()
    app.set('trust proxy', extra.trustProxy === true)
    // Route-level settings: mounted before the proxy, as the README shows.
    for (const route of routes) {
      if (route.setting === false) app.use(route.path, expressLitefs.skip())
      else if (route.setting !== undefined && 'durability' in route.setting) app.use(route.path, expressLitefs.durable(route.setting.durability))
      else if (route.setting !== undefined) app.use(route.path, expressLitefs.alwaysForward())
    }
    app.use(proxy)
    app.use((req, res, next) => { runRaw(find(req.method, req.originalUrl), req, res).catch(err => { if (requestAborted(err)) res.destroy(); else next(err) }) })
    app.use(expressLitefs.errorHandler())
    server = createServer(app)
    state = proxy.core.state
    stats = proxy.stats
    core = proxy.core
    close = async () => { await proxy.close(); await closeServer(server) } // as the README shows: the proxy first, its held requests answered
    await listen(server)
  } else {
    // node:http has no router: route-level settings become the equivalent path options.
    const passthrough = routes.filter(r => r.setting === false).map(r => r.path)
    const alwaysForward = routes.filter(r => r.setting !== undefined && r.setting !== false && 'alwaysForward' in r.setting).map(r => r.path)
    // A request aborted mid-body (a replica giving up on a forward) rejects the body read.
    const listener = wrap((req, res) => { runRaw(find(req.method as string, req.url as string), req, res).catch(() => res.destroy()) }, {
      ...options,
      passthrough: [...(options.passthrough ?? []), ...passthrough],
      alwaysForward: [...(options.alwaysForward ?? []), ...alwaysForward],
      trustProxy: extra.trustProxy,
      logger: (options as { logger?: unknown }).logger ?? quiet // a test's own logger wins
    })
    server = createServer(listener)
    state = listener.core.state
    stats = listener.stats
    core = listener.core
    close = async () => { await listener.close(); await closeServer(server) }
    await listen(server)
  }
  if (extra.ready ?? (options.api === fake.apiUrl && fake.listening)) {
    await until(() => state.litefs === 'up' && (fake.role === 'primary' ? state.role === 'primary' : state.primaryHostname === fake.primary), 'the app follows LiteFS')
  }
  return Object.assign(served, {
    stats,
    core,
    adapter,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close,
    server
  })
}

async function listen (server: Server): Promise<void> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
}

async function closeServer (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise(resolve => server.close(resolve))
}
