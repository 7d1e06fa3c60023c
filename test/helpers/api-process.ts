// A LiteFS API stand-in in its own process: /events answers `init` as a primary and
// stays open. Sends its port over IPC, then lives until its parent is gone.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.write('{"type":"init","data":{"isPrimary":true}}\n')
})
server.listen(0, '127.0.0.1', () => { process.send?.((server.address() as AddressInfo).port) })
process.on('disconnect', () => process.exit(0))
