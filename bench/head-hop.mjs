// A prototype, bench only: what a hop below node:http and undici could cost. Each client
// connection is paired with one to the app; every request head and every answer head is
// found and parsed in JS (request line, header lines, Content-Length), which is where a
// consistency decision and a cookie would go, and heads and bodies are relayed as the bytes
// that arrived. Content-Length framing only (no chunked bodies, no pipelining, no upgrades):
// enough for the bench's requests, not a proxy.
//   node bench/head-hop.mjs <listen port> <app port>
import { connect, createServer } from 'node:net'

const [port, target] = process.argv.slice(2).map(Number)
const CRLF2 = Buffer.from('\r\n\r\n')

/** Parses one head at the start of `buf`: its length in bytes and its Content-Length, or undefined while incomplete. */
function head (buf) {
  const end = buf.indexOf(CRLF2)
  if (end === -1) return undefined
  const lines = buf.latin1Slice(0, end).split('\r\n')
  let length = 0
  const headers = {}
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':')
    const name = lines[i].slice(0, colon).toLowerCase()
    const value = lines[i].slice(colon + 1).trim()
    headers[name] = value
    if (name === 'content-length') length = Number(value)
  }
  return { size: end + 4, length, start: lines[0], headers }
}

/** Relays messages from `from` to `to`, each head parsed, each body counted by its Content-Length. */
function relay (from, to) {
  let pending = null
  let body = 0 // bytes of the current body still to relay
  from.on('data', chunk => {
    let buf = pending === null ? chunk : Buffer.concat([pending, chunk])
    pending = null
    while (buf.length > 0) {
      if (body > 0) {
        const n = Math.min(body, buf.length)
        to.write(n === buf.length ? buf : buf.subarray(0, n))
        body -= n
        buf = buf.subarray(n)
        continue
      }
      const h = head(buf)
      if (h === undefined) { pending = buf; return }
      const n = Math.min(h.size + h.length, buf.length)
      to.write(n === buf.length ? buf : buf.subarray(0, n))
      body = h.size + h.length - n
      buf = buf.subarray(n)
    }
  })
}

createServer(client => {
  const app = connect(target, '127.0.0.1')
  client.setNoDelay(true)
  app.setNoDelay(true)
  relay(client, app)
  relay(app, client)
  client.on('error', () => app.destroy())
  app.on('error', () => client.destroy())
  client.on('close', () => app.destroy())
  app.on('close', () => client.destroy())
}).listen(port, '127.0.0.1', () => { console.log(`head-hop: listening on ${port}`) })
process.on('SIGTERM', () => { process.exit(0) })
