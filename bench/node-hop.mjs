// The floor of a proxy hop written in Node, for bench/profile-serve.mjs and the real-LiteFS rows: node:http's server in
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
  let abort
  let resume
  agent.dispatch({ origin, path: req.url, method: req.method, headers: req.headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, {
    onConnect (a) { abort = a },
    onHeaders (status, raw, resumeUpstream) {
      const headers = []
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toString('latin1')
        if (name.toLowerCase() !== 'connection' && name.toLowerCase() !== 'keep-alive') headers.push(name, raw[i + 1].toString('latin1'))
      }
      res.writeHead(status, headers)
      resume = resumeUpstream
      return true
    },
    // What any hop must do, or each answer whose client left holds its connection to
    // the app paused for ever (the pool then runs dry): its client gone, the request is
    // aborted; a full client socket pauses the app's until it drains.
    onData (chunk) {
      if (res.destroyed) { abort(new Error('the client went away')); return false }
      if (res.write(chunk)) return true
      res.once('drain', resume)
      return false
    },
    onComplete () { res.end() },
    onError () { if (!res.headersSent) res.writeHead(502); res.end() }
  })
}).listen(port, '127.0.0.1', () => { console.log(`node-hop: listening on ${port}`) })
process.on('SIGTERM', () => { process.exit(0) })
