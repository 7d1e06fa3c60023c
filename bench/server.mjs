// One app under test, in its own process (forked by bench/index.mjs with IPC).
// The same routes with and without litefs-proxy, so a ratio measures only the
// plugin/middleware/wrapper:
//   GET  /items          → {"ok":true}
//   POST /items          → parses the JSON body, → {"ok":true}
//   GET  /__waiters      → how many requests are held (passthrough)
//   POST /__release      → ("hold" apps) let every held GET /items go on (they are held in onRequest)
// With `spec.sqlite` (a database path, e.g. on a LiteFS mount; Fastify only):
//   POST /insert         → inserts one row through better-sqlite3, → {"ok":true,"id":n}
//   GET  /__count        → the rows in the table (passthrough)
// `spec.port`: listen there instead of on a free port (a sidecar in front needs it first).
// IPC: { id, cmd: 'cpu' | 'mem' | 'state' | 'release' | 'profStart' | 'profStop' | 'close' } → { id, result }.
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

const spec = JSON.parse(process.argv[2])
const dist = process.argv[3] // the built package's dist/esm (snapshot)
const load = async name => await import(pathToFileURL(join(dist, name)).href)

const OK = '{"ok":true}'
const BACKLOG = 8192

function litefsOptions () {
  const o = { ...spec.litefs }
  if (spec.primaryOrigin !== undefined) {
    const origin = spec.primaryOrigin
    o.primaryUrl = () => origin
  }
  return o
}

// A "hold" app's GET /items waits in an onRequest hook until POST /__release (the
// baseline for memory and release time of N pending requests without the plugin).
const pending = []
function releaseAll () {
  const n = pending.length
  for (const answer of pending.splice(0)) answer()
  return n
}

let server // node:http server, for every framework
let waiters = () => pending.length
let nodeState = () => ({})
let closeApp = async () => {}

// One better-sqlite3 handle, opened on first use and kept (a handle opened per
// request through FUSE costs more than the whole proxy), closed before the
// process exits so LiteFS can unmount. `fileMustExist`: never create a
// database in the plain directory under a mount that went away.
const sqliteModule = spec.sqlite === undefined ? undefined : await import('better-sqlite3')
let db
let insert
const database = () => {
  if (db === undefined) {
    db = new sqliteModule.default(spec.sqlite, { fileMustExist: true, timeout: 5000 })
    insert = db.prepare('INSERT INTO items (text) VALUES (?)')
  }
  return db
}

if (spec.framework === 'fastify') {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false })
  if (spec.plugin) {
    const { litefs } = await load('fastify.js')
    await app.register(litefs, litefsOptions())
    waiters = () => app.litefs.state.waiterCount
    nodeState = () => ({ role: app.litefs.state.role, litefs: app.litefs.state.litefs })
  }
  if (spec.emptyHooks) {
    // The floor of any Fastify plugin that needs onRequest + onSend (bench/profile.mjs comparisons).
    app.addHook('onRequest', (_request, _reply, next) => next())
    app.addHook('onSend', (_request, _reply, payload, next) => next(null, payload))
  }
  if (spec.hold) {
    // Held where litefs-proxy holds a read: in an onRequest hook, before the
    // route runs, so the baseline keeps what Fastify keeps for such a request.
    app.addHook('onRequest', (request, _reply, next) => {
      if (request.method === 'GET' && request.url === '/items') pending.push(() => next())
      else next()
    })
  }
  app.get('/items', async () => ({ ok: true }))
  app.post('/items', async request => ({ ok: request.body !== undefined }))
  app.get('/__waiters', { config: { litefs: false } }, async () => ({ n: waiters() }))
  app.post('/__release', { config: { litefs: false } }, async () => ({ n: releaseAll() }))
  if (spec.sqlite !== undefined) {
    app.post('/insert', async request => {
      database()
      return { ok: true, id: Number(insert.run(String(request.body?.text)).lastInsertRowid) }
    })
    app.get('/__count', { config: { litefs: false } }, async () => ({ n: database().prepare('SELECT count(*) AS n FROM items').get().n }))
  }
  await app.listen({ port: spec.port ?? 0, host: '127.0.0.1', backlog: BACKLOG })
  server = app.server
  closeApp = async () => await app.close()
} else if (spec.framework === 'express') {
  const { default: express } = await import('express')
  const app = express()
  app.set('etag', false)
  app.set('x-powered-by', false)
  app.get('/__waiters', (_req, res) => { res.json({ n: waiters() }) })
  if (spec.plugin) {
    const { litefs } = await load('express.js')
    const mw = litefs(litefsOptions())
    app.use(mw)
    app.use(litefs.errorHandler())
    waiters = () => mw.core.state.waiterCount
    nodeState = () => ({ role: mw.core.state.role, litefs: mw.core.state.litefs })
    closeApp = async () => await mw.close()
  }
  app.use(express.json())
  app.get('/items', (_req, res) => { res.json({ ok: true }) })
  app.post('/items', (req, res) => { res.json({ ok: req.body !== undefined }) })
  server = createServer(app)
} else if (spec.framework === 'http') {
  const send = res => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': OK.length })
    res.end(OK)
  }
  const handler = (req, res) => {
    if (req.method === 'POST') {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', chunk => { body += chunk })
      req.on('end', () => { JSON.parse(body); send(res) })
    } else {
      send(res)
    }
  }
  let listener = handler
  if (spec.plugin) {
    const { wrap } = await load('http.js')
    listener = wrap(handler, litefsOptions())
    waiters = () => listener.core.state.waiterCount
    nodeState = () => ({ role: listener.core.state.role, litefs: listener.core.state.litefs })
    closeApp = async () => await listener.close()
  }
  server = createServer((req, res) => {
    if (req.url === '/__waiters') {
      const body = JSON.stringify({ n: waiters() })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body)
    } else {
      listener(req, res)
    }
  })
} else {
  throw new Error(`unknown framework ${spec.framework}`)
}

if (!server.listening) await new Promise(resolve => server.listen(spec.port ?? 0, '127.0.0.1', BACKLOG, resolve))
const url = `http://127.0.0.1:${server.address().port}`

// Connections are counted so the scale scenario can wait until all are open.
let connections = 0
let accepted = 0 // ever: how often a proxy in front dials the app again
server.on('connection', socket => { connections++; accepted++; socket.once('close', () => { connections-- }) })

function memory () {
  if (typeof globalThis.gc === 'function') for (let i = 0; i < 4; i++) globalThis.gc()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }
}

let profiler
process.on('message', async msg => {
  let reply
  switch (msg.cmd) {
    case 'cpu': {
      const c = process.cpuUsage()
      reply = { cpuUs: c.user + c.system, at: performance.now() }
      break
    }
    case 'mem': reply = { ...memory(), waiters: waiters(), connections }; break
    case 'state': reply = { waiters: waiters(), connections, accepted, ...nodeState() }; break
    case 'release': reply = { n: releaseAll() }; break
    case 'profStart': {
      // CPU profile of the load only (bench/profile.mjs), not of the start-up.
      const { Session } = await import('node:inspector')
      profiler = new Session()
      profiler.connect()
      const post = (method, params) => new Promise((resolve, reject) => profiler.post(method, params, (err, res) => err ? reject(err) : resolve(res)))
      await post('Profiler.enable')
      await post('Profiler.setSamplingInterval', { interval: msg.opts?.interval ?? 100 })
      await post('Profiler.start')
      profiler.stop = async () => (await post('Profiler.stop')).profile
      reply = {}
      break
    }
    case 'profStop': {
      const { writeFileSync } = await import('node:fs')
      writeFileSync(msg.opts.file, JSON.stringify(await profiler.stop()))
      profiler.disconnect()
      reply = {}
      break
    }
    case 'close':
      server.closeAllConnections?.()
      await closeApp()
      server.close()
      db?.close()
      process.send({ id: msg.id, result: {} })
      setTimeout(() => process.exit(0), 50)
      return
    default: process.send({ id: msg.id, error: `unknown command ${msg.cmd}` }); return
  }
  process.send({ id: msg.id, result: reply })
})

process.send({ ready: true, url, pid: process.pid })
