// One example app (examples/<adapter>/app.mjs, the code a user copies) on one
// real LiteFS node, as its own process: an app whose LiteFS stops may die of
// SIGBUS when SQLite's memory-mapped WAL index goes away, so no test runs one
// in-process.
//
//   ADAPTER       fastify | express | http
//   PORT          the app's port
//   MOUNT, API    the node's LiteFS mount and API URL
//   PRIMARY_URLS  JSON { hostname: app URL } for this adapter on every node
//   OPTIONS       JSON, more litefs-proxy options (readTimeout…)
//
// GET /stats (outside the proxy) says what the proxy sees: held requests,
// LiteFS's status, role and primary. POST /stall?file=F (outside the proxy too)
// blocks the event loop on purpose: it writes F.in, then spins until F exists
// (at most 20 s), as an app whose handler computes for a while. POST
// /commit-stall?file=F goes through litefs-proxy as a write: it commits a note
// (on a handle of its own, closed at once), stands still the same way, then
// answers 201 — so LiteFS can be killed between a write's commit and its answer.
import Database from 'better-sqlite3'
import express from 'express'
import { wrap } from 'litefs-proxy/http'
import { createServer } from 'node:http'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const { ADAPTER, PORT, MOUNT, API } = process.env
const urls = JSON.parse(process.env.PRIMARY_URLS)
const options = { db: 'app.db', mount: MOUNT, api: API === 'false' ? false : API, primaryUrl: host => urls[host], ...JSON.parse(process.env.OPTIONS ?? '{}') }
// The Express and node:http adapters warn on the console by default ("event stream
// lost", "no primary"…), which the tests cause on purpose when they stop LiteFS:
// quiet unless asked for (LITEFS_TEST_APP_LOGS=1). Fastify's logger is off already.
const quiet = { debug () {}, info () {}, warn () {}, error () {} }
const adapterOptions = process.env.LITEFS_TEST_APP_LOGS ? options : { ...options, logger: quiet }

// The database through LiteFS's mount, one handle at a time: opened when first
// needed, closed once idle for 50 ms and the moment litefs-proxy says LiteFS went
// away. An open file in the mount keeps a stopping LiteFS from unmounting, and a
// handle kept across a LiteFS stop fails or blocks every query after (or ends
// in SIGBUS: the WAL index is memory-mapped through FUSE); but a handle opened
// afresh for every query on a replica can meet LiteFS v0.5.14 rewriting the
// -shm file for a transaction it applies (SIGBUS too). `fileMustExist`: never
// create a database in the plain directory under a dead mount. A short busy
// timeout: a query must not hold the event loop for seconds.
let handle
let lastUse = 0
function closeHandle () {
  handle?.close()
  handle = undefined
}
function database () {
  lastUse = performance.now()
  if (handle === undefined) {
    handle = new Database(join(MOUNT, 'app.db'), { fileMustExist: true, timeout: 250 })
    const idle = setInterval(() => {
      if (handle !== undefined && performance.now() - lastUse < 50) return
      clearInterval(idle)
      closeHandle()
    }, 50)
  }
  return handle
}
function onLitefs (state) {
  state.onLitefs(status => { if (status !== 'up') closeHandle() })
}

let core
let listener
let close
if (ADAPTER === 'fastify') {
  const { buildApp } = await import('../../examples/fastify/app.mjs')
  const app = buildApp({ litefs: options, database })
  app.get('/stats', { config: { litefs: false } }, async () => stats())
  app.post('/stall', { config: { litefs: false } }, async request => stall(request.query.file))
  app.post('/commit-stall', async (request, reply) => reply.code(201).send(commitThenStall(request.query.file)))
  await app.ready()
  core = app.litefs
  onLitefs(core.state)
  await app.listen({ port: Number(PORT), host: '127.0.0.1' })
  close = () => app.close()
} else {
  let inner
  if (ADAPTER === 'express') {
    const { buildApp } = await import('../../examples/express/app.mjs')
    const { app, proxy } = buildApp({ litefs: adapterOptions, database })
    app.post('/commit-stall', (req, res) => res.status(201).json(commitThenStall(req.query.file)))
    inner = express().get('/stats', (_req, res) => res.json(stats())).post('/stall', (req, res) => res.json(stall(req.query.file))).use(app)
    core = proxy.core
    onLitefs(core.state)
    close = () => proxy.close()
  } else {
    const { buildListener } = await import('../../examples/node-http/app.mjs')
    const wrapped = buildListener({ litefs: adapterOptions, database })
    const committing = wrap((req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(commitThenStall(new URL(req.url, 'http://x').searchParams.get('file'))))
    }, adapterOptions)
    inner = (req, res) => req.url.startsWith('/commit-stall?')
      ? committing(req, res)
      : req.url === '/stats'
      ? res.end(JSON.stringify(stats()))
      : req.url.startsWith('/stall?') ? res.end(JSON.stringify(stall(new URL(req.url, 'http://x').searchParams.get('file')))) : wrapped(req, res)
    core = wrapped.core
    onLitefs(core.state)
    close = () => Promise.all([wrapped.close(), committing.close()])
  }
  listener = createServer(inner)
  await new Promise(resolve => listener.listen(Number(PORT), '127.0.0.1', resolve))
}

function stall (file) {
  writeFileSync(`${file}.in`, '')
  const end = Date.now() + 20_000
  while (!existsSync(file) && Date.now() < end); // the loop stands still, on purpose
  return { stalled: true }
}

function commitThenStall (file) {
  const db = new Database(join(MOUNT, 'app.db'), { fileMustExist: true, timeout: 250 })
  try {
    db.prepare('INSERT INTO notes (user, text) VALUES (?, ?)').run('commit-stall', file)
  } finally {
    db.close() // no handle open when LiteFS is killed (a mapped WAL index would end in SIGBUS)
  }
  return stall(file)
}

function stats () {
  return core.stats() // { held, feed, litefs, role, primary, … }
}

process.on('SIGTERM', async () => {
  listener?.closeAllConnections()
  listener?.close()
  await close()
  handle?.close()
  process.exit(0)
})
process.send?.('listening')
