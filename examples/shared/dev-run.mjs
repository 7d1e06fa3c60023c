// Runs an example app on an embedded 3-node dev cluster and shows, with real
// requests, what litefs-proxy does: a write sent to a replica reaches the
// primary, and a read on another replica waits for it.
import { createDevCluster } from 'litefs-proxy/dev'
import { SCHEMA } from '../fastify/app.mjs'

/**
 * @param {string} name
 * @param {(node: import('litefs-proxy/dev').DevNode, options: object) => Promise<{ url: string, close: () => Promise<void> }>} start
 */
export async function runOnDevCluster (name, start) {
  const cluster = await createDevCluster({ nodes: 3, lag: [150, 250], schema: SCHEMA })
  const urls = {}
  const servers = []
  try {
    for (const node of cluster.nodes) {
      const options = { db: cluster.db, state: node.state, primaryUrl: host => urls[host] }
      const server = await start(node, options)
      urls[node.name] = server.url
      servers.push(server)
    }
    const [, node2, node3] = cluster.nodes
    console.log(`${name} on a dev cluster: node-1 primary at ${urls['node-1']}, replicas ${urls['node-2']} and ${urls['node-3']} (lag 150-250 ms)`)

    const write = await fetch(`${urls[node2.name]}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'ada', text: 'hello' }) })
    const cookie = write.headers.get('set-cookie')?.split(';')[0]
    console.log(`POST /notes on node-2 (a replica) → ${write.status} ${await write.text()}, cookie ${cookie}`)

    const stale = await (await fetch(`${urls[node3.name]}/notes?user=ada`)).json()
    console.log(`GET on node-3 without the cookie → ${stale.notes.length} note(s): a replica that has not caught up yet`)

    const started = performance.now()
    const fresh = await (await fetch(`${urls[node3.name]}/notes?user=ada`, { headers: { cookie } })).json()
    console.log(`GET on node-3 with the cookie → ${fresh.notes.length} note(s), after waiting ${Math.round(performance.now() - started)} ms for replication`)
    if (fresh.notes.length !== 1) throw new Error('read-your-writes failed')
  } finally {
    for (const server of servers) await server.close()
    await cluster.close()
  }
}
