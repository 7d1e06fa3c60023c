// Replication lag, injected: a TCP relay in front of one node's LiteFS API, run
// in that node's namespace and given to its peers as the node's advertise-url.
// Bytes from LiteFS to a peer (the replication stream when this node is
// primary) leave the relay LAG_FILE's number of milliseconds after they came;
// bytes the other way pass at once. The kernel of these machines has no netem,
// so the delay is made here. The relay is one of the node's apps: a crash kills
// it with LiteFS, and what it still held is lost, as bytes on a wire are.
//
//   LISTEN     host:port to listen on
//   TARGET     host:port of LiteFS's API
//   LAG_FILE   a file holding the delay in ms (re-read every 100 ms; missing = 0)
import { createServer, connect } from 'node:net'
import { readFileSync } from 'node:fs'

const [listenHost, listenPort] = process.env.LISTEN.split(':')
const [targetHost, targetPort] = process.env.TARGET.split(':')
let lagMs = 0
const readLag = () => {
  try { lagMs = Math.max(0, Number(readFileSync(process.env.LAG_FILE, 'utf8').trim()) || 0) } catch { lagMs = 0 }
}
readLag()
setInterval(readLag, 100)

createServer(peer => {
  const litefs = connect(Number(targetPort), targetHost)
  // Peer → LiteFS: at once.
  peer.pipe(litefs)
  // LiteFS → peer: each chunk after lagMs, in order (a chunk never overtakes an earlier one).
  const queue = []
  let timer
  const flush = () => {
    timer = undefined
    const now = Date.now()
    while (queue.length > 0 && queue[0].at <= now) peer.write(queue.shift().chunk)
    if (queue.length > 0) timer = setTimeout(flush, queue[0].at - now)
  }
  litefs.on('data', chunk => {
    if (lagMs === 0 && queue.length === 0) { peer.write(chunk); return }
    queue.push({ at: Date.now() + lagMs, chunk })
    timer ??= setTimeout(flush, lagMs)
  })
  const end = () => { clearTimeout(timer); peer.destroy(); litefs.destroy() }
  litefs.on('close', () => {
    // What LiteFS sent before it closed still arrives, late, then the close.
    if (queue.length === 0) { end(); return }
    const last = queue[queue.length - 1].at
    setTimeout(() => { flush(); end() }, Math.max(0, last - Date.now()))
  })
  litefs.on('error', () => {})
  peer.on('error', end)
  peer.on('close', end)
}).listen(Number(listenPort), listenHost)
