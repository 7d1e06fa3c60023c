import Fastify from 'fastify'
import express from 'express'
import { createServer } from 'node:http'
import net from 'node:net'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import litefs from './dist/esm/fastify.js'
import { litefs as litefsExpress } from './dist/esm/express.js'
import { wrap } from './dist/esm/http.js'
const mount = mkdtempSync(join(tmpdir(), 'm-'))
writeFileSync(join(mount, '.lag'), '+000000000\n')
writeFileSync(join(mount, 'app.db-pos'), '0000000000000001/0000000000000001\n')
const log = { debug () {}, info () {}, warn () {}, error () {} }
const opts = { db: 'app.db', mount, api: false, role: 'primary' }
const slow = () => new Promise(r => setTimeout(r, 300))
for (const kind of ['fastify', 'express', 'http']) {
  let server, close
  if (kind === 'fastify') {
    const app = Fastify()
    if (!process.env.BARE) await app.register(litefs, opts)
    app.post('/slow', async () => { await slow(); return 'ok' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    server = app.server; close = () => app.close()
  } else if (kind === 'express') {
    const proxy = litefsExpress({ ...opts, logger: log })
    const app = express().use(process.env.BARE ? (q, r, n) => n() : proxy).post('/slow', async (req, res) => { await slow(); res.send('ok') })
    server = createServer(app); await new Promise(r => server.listen(0, '127.0.0.1', r))
    close = async () => { await proxy.close(); await new Promise(r => server.close(r)) }
  } else {
    const h = async (req, res) => { await slow(); res.end('ok') }; const l = process.env.BARE ? Object.assign(h, { close: async () => {} }) : wrap(h, { ...opts, logger: log })
    server = createServer(l); await new Promise(r => server.listen(0, '127.0.0.1', r))
    close = async () => { await l.close(); await new Promise(r => server.close(r)) }
  }
  const port = server.address().port
  const s = net.connect(port, '127.0.0.1')
  let data = ''
  s.on('data', d => { data += d })
  s.on('end', () => { data += '\n[FIN]' }); s.on('error', e => { data += '\n[' + e.code + ']' })
  s.write('POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
  await new Promise(r => setTimeout(r, 50))
  const t0 = Date.now()
  let closedAt
  const closing = close().then(() => { closedAt = Date.now() - t0 })
  await new Promise(r => setTimeout(r, 2000))
  console.log(kind, JSON.stringify(data.replace(/Date: [^\r]*\r\n/, '')), 'closed after', closedAt ?? '>2000', 'ms')
  s.destroy()
  await closing
}
