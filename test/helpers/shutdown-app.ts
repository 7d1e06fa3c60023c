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

let port: number
if (adapter === 'fastify') {
  const app = Fastify()
  await app.register(fastifyLitefs, options)
  app.get('/', async () => body)
  await app.listen({ port: 0, host: '127.0.0.1' })
  port = (app.server.address() as AddressInfo).port
  process.on('SIGTERM', () => { void app.close() }) // the README's line
} else if (adapter === 'express') {
  const app = express()
  const proxy = expressLitefs({ ...options, logger: quiet })
  app.use(proxy)
  app.get('/', (_req, res) => { res.send(body) })
  const server = app.listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  port = (server.address() as AddressInfo).port
  process.on('SIGTERM', async () => { await proxy.close(); server.close() })
} else {
  const listener = wrap((_req, res) => { res.end(body) }, { ...options, logger: quiet })
  const server = createServer(listener).listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  port = (server.address() as AddressInfo).port
  process.on('SIGTERM', async () => { await listener.close(); server.close() })
}
process.send?.({ port })
