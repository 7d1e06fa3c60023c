// A round-robin load balancer without stickiness, as many deployments put in
// front of their nodes: each request goes to the next node in turn, whoever the
// client is. It is what makes read-your-writes hard: a user's read rarely lands
// on the node that took their write.
import http from 'node:http'
import { pipeline } from 'node:stream'

// Hop-by-hop headers describe one connection, not the message: never relayed.
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer']

/**
 * Start a balancer on loopback over `backends` (origins such as
 * `http://127.0.0.1:4001`). With `writesTo`, requests other than GET/HEAD go to
 * the origin it returns instead of the rotation: what an app without
 * litefs-proxy needs, since its replicas cannot write.
 *
 * A failed attempt moves on to the next backend only when that cannot apply a
 * write twice: the backend refused the connection (nothing reached it), or the
 * request is a read. Otherwise the client gets a 502.
 *
 * @param {{ backends: string[], writesTo?: () => string }} options
 * @returns {Promise<{ url: string, remove: (origin: string) => void, close: () => Promise<void> }>}
 */
export async function createBalancer ({ backends: initial, writesTo }) {
  const agent = new http.Agent({ keepAlive: true })
  let backends = [...initial]
  let next = 0
  const inFlight = new Map() // origin → requests sent to it and not yet answered in full
  const drained = new Map() // origin → resolve() once nothing is in flight to it
  const track = (origin, delta) => {
    const n = (inFlight.get(origin) ?? 0) + delta
    inFlight.set(origin, n)
    if (n === 0) drained.get(origin)?.()
  }

  const route = (req) => {
    const isRead = req.method === 'GET' || req.method === 'HEAD'
    if (!isRead && writesTo !== undefined) return { isRead, targets: [writesTo()] }
    next = (next + 1) % backends.length
    const targets = backends.map((_, i) => backends[(next + i) % backends.length])
    return { isRead, targets }
  }

  const server = http.createServer(async (req, res) => {
    let body
    try {
      // Bodies here are small notes: buffering one lets a refused attempt be replayed elsewhere.
      body = Buffer.concat(await req.toArray())
    } catch {
      return // the client went away mid-request
    }
    // Routed once the request is whole, so that a backend removed meanwhile
    // (a node shutting down) gets nothing new: a write sent to a node as it
    // closes its connections may fail without an answer, and cannot be retried.
    const { isRead, targets } = route(req)
    for (const origin of targets) {
      track(origin, +1)
      try {
        const upstream = await send(agent, origin, req, body)
        res.writeHead(upstream.statusCode, relayed(upstream.headers))
        pipeline(upstream, res, () => track(origin, -1)) // a break on either side ends both
        return
      } catch (err) {
        track(origin, -1)
        if (err.code !== 'ECONNREFUSED' && !isRead) break
      }
    }
    res.writeHead(502, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'no backend answered', code: 'BAD_GATEWAY' }))
  })

  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /**
     * Send no new request to `origin`, as a draining deploy does, and resolve
     * once every request already sent to it has been answered (connection
     * draining, as load balancers call it): a node that closes only then has no
     * request of the balancer's on its way to it. One closing its kept-alive
     * connections under a request already sent fails that request with no
     * answer, and the balancer cannot retry a write that may have been applied.
     */
    remove: async (origin) => {
      backends = backends.filter(b => b !== origin)
      if ((inFlight.get(origin) ?? 0) === 0) return
      await new Promise(resolve => drained.set(origin, resolve))
      drained.delete(origin)
    },
    close: async () => {
      await new Promise(resolve => server.close(resolve))
      agent.destroy()
    }
  }
}

/** One attempt at `origin`: resolves with its response, rejects if it failed before answering. */
function send (agent, origin, req, body) {
  return new Promise((resolve, reject) => {
    const upstream = http.request(new URL(req.url, origin), { method: req.method, headers: relayed(req.headers), agent }, resolve)
    upstream.on('error', reject)
    upstream.end(body)
  })
}

function relayed (headers) {
  const out = { ...headers }
  for (const name of HOP_BY_HOP) delete out[name]
  return out
}
