// CORS and litefs-proxy's own answers (a 504 LITEFS_READ_TIMEOUT, a 503): a
// page on another origin can read them only if they carry the API's CORS
// headers. They do when the CORS layer runs first — `cors` before the Express
// middleware, `@fastify/cors` registered before the plugin, headers set before
// a wrap() listener runs — as the README says. Through real sockets, with the
// libraries users mount.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import express from 'express'
import cors from 'cors'
import Fastify from 'fastify'
import fastifyCors from '@fastify/cors'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { litefs as expressLitefs } from '../lib/express.js'
import fastifyLitefs from '../lib/fastify.js'
import { wrap } from '../lib/http.js'
import type { NodeState } from '../lib/core/node-state.js'

const SITE = 'https://app.example.com'
const quiet = { debug () {}, info () {}, warn () {}, error () {} }

type Made = { url: string, state: NodeState, close: () => Promise<void> }

const APPS: Record<string, (opts: Record<string, unknown>) => Promise<Made>> = {
  express: async opts => {
    const app = express()
    app.use(cors({ origin: SITE, exposedHeaders: ['litefs-txid'], allowedHeaders: ['content-type', 'litefs-txid'] }))
    const proxy = expressLitefs({ ...opts, logger: quiet } as any)
    app.use(proxy)
    app.get('/notes', (_req, res) => { res.json({ notes: [] }) })
    app.post('/notes', (_req, res) => { res.status(201).json({}) })
    app.use(expressLitefs.errorHandler()) // the README's: litefs-proxy's answers as JSON
    const server = createServer(app)
    return await listen(server, proxy.core.state, async () => { await proxy.close() })
  },
  fastify: async opts => {
    const app = Fastify()
    await app.register(fastifyCors, { origin: SITE, exposedHeaders: ['litefs-txid'], allowedHeaders: ['content-type', 'litefs-txid'] })
    await app.register(fastifyLitefs, opts as any)
    app.get('/notes', async () => ({ notes: [] }))
    app.post('/notes', async (_req, reply) => await reply.code(201).send({}))
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    return { url: url.replace('localhost', '127.0.0.1'), state: app.litefs.state, close: async () => { await app.close() } }
  },
  http: async opts => {
    const listener = wrap((req, res) => { res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' }).end('{}') }, { ...opts, logger: quiet } as any)
    // The CORS headers, set before the listener runs (as a wrapping function, or a CORS library, would).
    const server = createServer((req, res) => {
      res.setHeader('access-control-allow-origin', SITE)
      res.setHeader('access-control-expose-headers', 'litefs-txid')
      res.setHeader('vary', 'origin')
      void listener(req, res)
    })
    return await listen(server, listener.core.state, async () => { await listener.close() })
  }
}

async function listen (server: Server, state: NodeState, closeProxy: () => Promise<void>): Promise<Made> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close: async () => { await closeProxy(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) }
  }
}

for (const [name, make] of Object.entries(APPS)) {
  t.test(`${name}: with the CORS layer first, litefs-proxy's own answers carry its headers, so a page can read them`, async t => {
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    // No primary app answers: the read is held to its timeout, the write to its.
    const app = await make({ db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, readTimeout: 100, primaryRedirectTimeout: 100, primaryUrl: 'http://127.0.0.1:9' })
    t.teardown(async () => { await app.close(); await fake.close() })
    await until(() => app.state.primaryHostname === 'node-a')
    const read = await request(`${app.url}/notes`, { headers: { origin: SITE, 'litefs-txid': '0000000000000009' } })
    t.equal(read.statusCode, 504)
    t.equal((await read.body.json() as { code: string }).code, 'LITEFS_READ_TIMEOUT')
    t.equal(read.headers['access-control-allow-origin'], SITE, 'the 504 is readable by the page')
    t.match(read.headers['access-control-expose-headers'], /litefs-txid/)
    const write = await request(`${app.url}/notes`, { method: 'POST', headers: { origin: SITE, 'content-type': 'application/json' }, body: '{}' })
    t.equal(write.statusCode, 503)
    t.equal((await write.body.json() as { code: string }).code, 'LITEFS_NO_PRIMARY')
    t.equal(write.headers['access-control-allow-origin'], SITE, 'the 503 too')
    t.equal(write.headers['retry-after'], '1', 'and its Retry-After, which the page may read')
    if (name !== 'http') {
      // The preflight of a call that sends the token: the CORS layer answers it.
      const pre = await request(`${app.url}/notes`, { method: 'OPTIONS', headers: { origin: SITE, 'access-control-request-method': 'GET', 'access-control-request-headers': 'litefs-txid' } })
      await pre.body.dump()
      t.equal(pre.statusCode, 204)
      t.match(pre.headers['access-control-allow-headers'], /litefs-txid/)
    }
  })
}
