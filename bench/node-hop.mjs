// The floor of a proxy hop written in Node, for bench/profile-serve.mjs: node:http's server in
// front, undici's dispatcher behind (as `serve`), and nothing else — no classification, no
// hop-by-hop filtering, no X-Forwarded-*, no error answers worth the name. What `serve` costs
// beyond this is litefs-proxy's; what this costs beyond nginx is Node's.
//   node bench/node-hop.mjs <listen port> <app port>
import { createServer } from 'node:http'
import { Agent } from 'undici'

const [port, target] = process.argv.slice(2).map(Number)
const agent = new Agent({ connections: 128 })
const origin = `http://127.0.0.1:${target}`

createServer((req, res) => {
  agent.dispatch({ origin, path: req.url, method: req.method, headers: req.headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, {
    onConnect () {},
    onHeaders (status, raw, resume) {
      const headers = []
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toString('latin1')
        if (name.toLowerCase() !== 'connection' && name.toLowerCase() !== 'keep-alive') headers.push(name, raw[i + 1].toString('latin1'))
      }
      res.writeHead(status, headers)
      return true
    },
    onData (chunk) { return res.write(chunk) },
    onComplete () { res.end() },
    onError () { if (!res.headersSent) res.writeHead(502); res.end() }
  })
}).listen(port, '127.0.0.1', () => { console.log(`node-hop: listening on ${port}`) })
process.on('SIGTERM', () => { process.exit(0) })
