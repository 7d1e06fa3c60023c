// The floor of any hop in a Node process: every client connection paired with a
// connection of its own to the app, bytes piped both ways, no HTTP parsed at all
// (so nothing could be held, forwarded or cookied). Bench only.
//   node bench/pipe-hop.mjs <listen port> <app port>
import { connect, createServer } from 'node:net'

const [port, target] = process.argv.slice(2).map(Number)
createServer(client => {
  const app = connect(target, '127.0.0.1')
  client.setNoDelay(true)
  app.setNoDelay(true)
  client.pipe(app).on('error', () => client.destroy())
  app.pipe(client).on('error', () => app.destroy())
  client.on('error', () => app.destroy())
  app.on('error', () => client.destroy())
}).listen(port, '127.0.0.1', () => { console.log(`pipe-hop: listening on ${port}`) })
process.on('SIGTERM', () => { process.exit(0) })
