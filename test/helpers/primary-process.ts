// A primary's app in its own process (so a graceful close races with requests
// already on their way, as between machines), with litefs-proxy as the README
// shows (files-only LiteFS stand-in: a mount with .lag, role primary): records
// the id of every write it applies, answers 201. On "close" it shuts down as the
// README says — the proxy first, then the server — and reports the ids applied.
import { createServer } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { wrap } from '../../lib/http.js'

const port = Number(process.argv[2] ?? 0)
const mount = mkdtempSync(join(tmpdir(), 'primary-'))
process.on('exit', () => { rmSync(mount, { recursive: true, force: true }) }) // leave nothing behind
writeFileSync(join(mount, '.lag'), '+000000000\n')
writeFileSync(join(mount, 'app.db-pos'), '0000000000000001/0000000000000001\n')
const applied: string[] = []
const listener = wrap((req, res) => {
  req.resume()
  req.on('end', () => {
    applied.push(String(req.headers['x-id']))
    res.writeHead(201, { 'content-type': 'text/plain' }).end('applied')
  })
}, { db: 'app.db', mount, api: false, role: 'primary', logger: { debug () {}, info () {}, warn () {}, error () {} } })
const server = createServer(listener)
server.listen(port, '127.0.0.1', () => { process.send?.({ port: (server.address() as AddressInfo).port }) })
process.on('message', () => {
  void listener.close().then(() => {
    server.close(() => { process.send?.({ applied }, () => process.exit(0)) })
  })
})
