// Run as a child process: one adapter's app with litefs-proxy, shut down as the
// README shows (SIGTERM → the framework's close / the proxy's close, then the
// server's). A files-only LiteFS stand-in (a mount with .lag; role primary),
// so nothing but the app holds the process. Sends its port over IPC; the
// parent churns connections, sends SIGTERM, and expects the process to exit.
import Fastify from 'fastify'
import express from 'express'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { litefs as fastifyLitefs } from '../../lib/fastify.js'
import { litefs as expressLitefs } from '../../lib/express.js'
import { wrap } from '../../lib/http.js'

const adapter = process.argv[2]
const mount = mkdtempSync(join(tmpdir(), 'shutdown-'))
process.on('exit', () => rmSync(mount, { recursive: true, force: true }))
writeFileSync(join(mount, '.lag'), '+000000000\n')
writeFileSync(join(mount, 'app.db-pos'), '0000000000000001/0000000000000001\n')
const quiet = { debug () {}, info () {}, warn () {}, error () {} }
const options = { db: 'app.db', mount, api: false as const, role: 'primary' as const }
const body = 'x'.repeat(1024)

// GET /slow answers once the parent says `release` (over IPC): an answer still
// in flight when the close begins. POST /write counts a write; GET /writes says how many.
let release: () => void = () => {}
const released = new Promise<void>(resolve => { release = resolve })
process.on('message', m => { if (m === 'release') release() })
process.channel?.unref() // listening for messages must not keep the process from exiting (it refs the channel)
let writes = 0
const slow = async (): Promise<string> => { await released; return 'slow' }
const write = (): string => { writes++; return 'written' }

let port: number
if (adapter === 'fastify') {
  const app = Fastify()
  await app.register(fastifyLitefs, options)
  app.get('/', async () => body)
  app.get('/slow', slow)
  app.post('/write', async (_request, reply) => reply.code(201).send(write()))
  app.get('/writes', async () => String(writes))
  await app.listen({ port: 0, host: '127.0.0.1' })
  port = (app.server.address() as AddressInfo).port
  process.on('SIGTERM', () => { void app.close() }) // the README's line
} else if (adapter === 'express') {
  const app = express()
  const proxy = expressLitefs({ ...options, logger: quiet })
  app.use(proxy)
  app.get('/', (_req, res) => { res.send(body) })
  app.get('/slow', (_req, res) => { void slow().then(text => res.send(text)) })
  app.post('/write', (_req, res) => { res.status(201).send(write()) })
  app.get('/writes', (_req, res) => { res.send(String(writes)) })
  const server = app.listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  port = (server.address() as AddressInfo).port
  process.on('SIGTERM', async () => { await proxy.close(); server.close() })
} else {
  const listener = wrap((req, res) => {
    if (req.url === '/slow') void slow().then(text => res.end(text))
    else if (req.url === '/write') res.writeHead(201).end(write())
    else if (req.url === '/writes') res.end(String(writes))
    else res.end(body)
  }, { ...options, logger: quiet })
  const server = createServer(listener).listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  port = (server.address() as AddressInfo).port
  process.on('SIGTERM', async () => { await listener.close(); server.close() })
}
process.send?.({ port })
