// The failover suite's app with the Fastify plugin (the README's shape): one
// node's app, run by the suite in that node's network namespace. It writes
// tokens and reads them back; every answer its handlers give names the node
// (x-node), so the suite knows which node acknowledged a write, forwarded or not.
//
//   NODE, HOST, PORT   this node's lease hostname, address and port
//   MOUNT, API         the node's LiteFS mount and API URL
//   PRIMARY_URLS       JSON { hostname: app URL } for every node
//   OPTIONS            JSON, more litefs-proxy options
import Fastify from 'fastify'
import Database from 'better-sqlite3'
import litefs from 'litefs-proxy/fastify'

const { NODE, HOST, PORT, MOUNT, API } = process.env
const urls = JSON.parse(process.env.PRIMARY_URLS)
const app = Fastify()
await app.register(litefs, { db: 'app.db', mount: MOUNT, api: API, primaryUrl: host => urls[host], ...JSON.parse(process.env.OPTIONS ?? '{}') })

// One handle, opened on first use and never creating the file, closed the moment
// LiteFS goes away (README, "Your database handle"). Unlike the README's advice it
// is also closed after 1 s idle, so it holds the mount as little as it can: the
// suite runs its apps beside LiteFS, not under its exec (which stops the app
// before LiteFS unmounts), and restarts LiteFS under them fault after fault.
let db
const closeDb = () => { db?.close(); db = undefined }
const idle = setTimeout(closeDb, 1000).unref()
const database = () => { idle.refresh(); return (db ??= new Database(`${MOUNT}/app.db`, { fileMustExist: true, timeout: 250 })) }
app.litefs.state.onLitefs(status => { if (status !== 'up') closeDb() })

// The same routes under /durable: the durability suite turns durability on for those alone.
for (const prefix of ['', '/durable']) {
  app.post(`${prefix}/tokens`, async (request, reply) => {
    reply.header('x-node', NODE)
    database().prepare('INSERT INTO tokens (token) VALUES (?)').run(String(request.body.token))
    return reply.code(201).send({ ok: true })
  })
  app.get(`${prefix}/tokens/:token`, async (request, reply) => {
    reply.header('x-node', NODE)
    const row = database().prepare('SELECT count(*) AS n FROM tokens WHERE token = ?').get(request.params.token)
    return { found: row.n > 0 }
  })
}

await app.listen({ port: Number(PORT), host: HOST })
process.on('SIGTERM', async () => { await app.close(); closeDb(); process.exit(0) })
