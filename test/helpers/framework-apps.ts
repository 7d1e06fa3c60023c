// Apps built the way each framework's users build them — the framework's own
// router, its own settings (Fastify server options, Express settings and
// middleware order, HTTP/2) — with litefs-proxy in its documented place, on a
// real loopback port. For tests where the framework's own behaviour is the point.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import express, { type Express } from 'express'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createH2Server, type Http2Server } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { litefs as fastifyLitefs } from '../../lib/fastify.js'
import { litefs as expressLitefs } from '../../lib/express.js'
import { wrap } from '../../lib/http.js'
import type { Logger } from '../../lib/core/logger.js'
import type { NodeState } from '../../lib/core/node-state.js'
import type { LitefsStats } from '../../lib/core/observe.js'
import { requestAborted, type AdapterName } from './apps.js'

/** A handler on Node's req/res, whatever the framework; `body` is read for it. */
export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>

export interface FrameworkApp {
  url: string
  state: NodeState
  /** The adapter's stats(). */
  stats: () => LitefsStats
  close: () => Promise<void>
}

export interface FrameworkOptions {
  /** `'METHOD /path'` → handler, registered with the framework's router (node:http: exact match). */
  routes: Record<string, Handler>
  /** Fastify server options (http2, routerOptions, trustProxy…). */
  fastify?: FastifyServerOptions
  /** Express: settings and middleware mounted before the proxy. */
  express?: (app: Express) => void
  /** Handlers get the request with its body unread (they may answer before it has arrived). */
  unread?: boolean
  /** node:http: serve HTTP/2 (h2c) instead. */
  http2?: boolean
  /** Express `trust proxy` / node:http `trustProxy`. */
  trust?: boolean
  logger?: Logger
}

const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {} }

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

async function listen (server: Server | Http2Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

export async function frameworkApp (adapter: AdapterName, litefs: Record<string, unknown>, o: FrameworkOptions): Promise<FrameworkApp> {
  const routes = Object.entries(o.routes).map(([key, handler]) => {
    const [method, path] = key.split(' ')
    return { method, path, handler }
  })
  if (adapter === 'fastify') {
    const app: FastifyInstance = Fastify({ forceCloseConnections: true, trustProxy: o.trust, ...o.fastify }) as unknown as FastifyInstance
    await app.register(fastifyLitefs, { pollInterval: 1, ...litefs } as any)
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 << 20 }, (_req, body, done) => done(null, body))
    for (const r of routes) {
      app.route({
        method: r.method as 'GET',
        url: r.path,
        // After litefs-proxy's onRequest, before the body is parsed.
        onRequest: o.unread === true
          ? (request, reply, done) => {
              request.raw.litefs = request.litefs ?? undefined
              ;(request.raw as { ip?: string }).ip = request.ip // the client as Fastify believes it (trustProxy)
              reply.hijack()
              void r.handler(request.raw, reply.raw, Buffer.alloc(0))
              done()
            }
          : undefined,
        handler: async (request, reply) => {
          request.raw.litefs = request.litefs ?? undefined // what the other adapters put on req
          reply.hijack()
          await r.handler(request.raw, reply.raw, (request.body as Buffer | undefined) ?? Buffer.alloc(0))
        }
      })
    }
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    return { url: url.replace('localhost', '127.0.0.1'), state: app.litefs.state, stats: () => app.litefs.stats(), close: async () => { await app.close() } }
  }
  if (adapter === 'express') {
    const app = express()
    app.set('trust proxy', o.trust === true)
    o.express?.(app)
    const proxy = expressLitefs({ pollInterval: 1, logger: o.logger ?? quiet, ...litefs } as any)
    app.use(proxy)
    for (const r of routes) {
      (app as any)[r.method.toLowerCase()](r.path, (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
        if (o.unread === true) { void r.handler(req, res, Buffer.alloc(0)); return }
        readBody(req).then(async body => await r.handler(req, res, body)).catch(err => { if (requestAborted(err)) res.destroy(); else next(err) })
      })
    }
    app.use(expressLitefs.errorHandler())
    const server = createServer(app)
    const url = await listen(server)
    // As the README shuts down: the proxy first (held requests answered), then the server.
    return { url, state: proxy.core.state, stats: proxy.stats, close: async () => { await proxy.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) } }
  }
  const listener = wrap((req, res) => {
    const path = (req.url as string).split('?')[0]
    const r = routes.find(x => x.method === req.method && x.path === path)
    if (r === undefined) { res.writeHead(404).end(); return }
    if (o.unread === true) { void r.handler(req, res, Buffer.alloc(0)); return }
    readBody(req).then(async body => await r.handler(req, res, body)).catch(() => res.destroy())
  }, { pollInterval: 1, logger: o.logger ?? quiet, trustProxy: o.trust, ...litefs } as any)
  const server = o.http2 === true ? createH2Server(listener as any) : createServer(listener)
  const url = await listen(server)
  return {
    url,
    state: listener.core.state,
    stats: listener.stats,
    close: async () => {
      // As the README shuts down: the proxy first (held requests answered, idle connections and HTTP/2 sessions closed).
      await listener.close()
      if (o.http2 !== true) (server as Server).closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}
