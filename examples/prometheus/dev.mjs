// npm run build && node examples/prometheus/dev.mjs
// A Fastify app with litefs-proxy on a dev cluster's replica, its /metrics
// scraped after a read that waited for replication.
import Fastify from 'fastify'
import client from 'prom-client'
import litefs from 'litefs-proxy/fastify'
import { createDevCluster } from 'litefs-proxy/dev'
import { litefsMetrics } from './metrics.mjs'

const cluster = await createDevCluster({ nodes: 2, lag: 50, schema: 'CREATE TABLE notes (id INTEGER PRIMARY KEY)' })
const [primary, replica] = cluster.nodes
const app = Fastify()
await app.register(litefs, { db: cluster.db, state: replica.state })
app.get('/notes', async () => replica.db.prepare('SELECT count(*) AS n FROM notes').get())
const registry = new client.Registry()
litefsMetrics(() => app.litefs.stats(), registry)
app.get('/metrics', { config: { litefs: false } }, async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()))
const url = await app.listen({ port: 0, host: '127.0.0.1' })

primary.db.prepare('INSERT INTO notes DEFAULT VALUES').run()
const txid = primary.state.readPosition(cluster.db).toString(16).padStart(16, '0')
await (await fetch(`${url}/notes`, { headers: { cookie: `litefs-txid=${txid}` } })).json() // held until replicated
console.log((await (await fetch(`${url}/metrics`)).text()).split('\n').filter(l => l.startsWith('litefs_proxy_')).join('\n'))
await app.close()
await cluster.close()
