// Real Fastify servers on loopback with the plugin, for end-to-end tests.
import Fastify, { type FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { litefs, type FastifyLitefsOptions } from '../../lib/fastify.js'
import type { FakeLitefs } from './fake-litefs.js'

export interface Served {
  app: FastifyInstance
  url: string
  writes: number
}

/** A small app: GET/POST /items (a POST commits one transaction on the fake), passthrough /static/*. */
export async function serveFastify (fake: FakeLitefs, opts: Partial<FastifyLitefsOptions> = {}, setup?: (app: FastifyInstance) => void, fastifyOpts = {}): Promise<Served> {
  const app = Fastify(fastifyOpts)
  const served: Served = { app, url: '', writes: 0 }
  await app.register(litefs, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, ...opts })
  app.get('/items', async request => ({ litefs: request.litefs }))
  app.post('/items', async request => {
    served.writes++
    fake.advance(fake.txid + 1n, { event: false }) // the handler's commit: -pos moves now, the event comes later
    return { litefs: request.litefs }
  })
  app.get('/static/*', async request => ({ litefs: request.litefs }))
  app.get('/oauth/callback', async request => ({ litefs: request.litefs }))
  app.get('/opt-out', { config: { litefs: false } }, async request => ({ litefs: request.litefs }))
  app.get('/to-primary', { config: { litefs: { alwaysForward: true } } }, async request => ({ litefs: request.litefs }))
  setup?.(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  served.url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  return served
}
