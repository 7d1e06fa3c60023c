// One instance of the example app per dev-cluster node, each on its own
// loopback port, as each machine of a LiteFS cluster runs the app once.
import { buildApp } from '../fastify/app.mjs'

/**
 * Serve the notes app on every node of `cluster`, with the plugin or without.
 * Also counts what the plugin did, for the demo's table: reads it held until
 * the replica caught up, and writes it forwarded to the primary.
 *
 * @param {import('litefs-proxy/dev').DevCluster} cluster
 * @param {{ plugin: boolean }} options
 */
export async function serveNodes (cluster, { plugin }) {
  const urls = new Map() // node name → its app's origin; LiteFS tells hostnames, the plugin needs URLs
  const counts = { heldReads: 0, forwardedWrites: 0 }
  const apps = new Map()
  for (const node of cluster.nodes) {
    const app = buildApp({
      database: () => node.db,
      litefs: plugin && {
        db: cluster.db,
        state: node.state,
        forward: 'http', // not fly-replay, even where FLY_APP_NAME is set: this cluster lives in one process
        primaryUrl: hostname => urls.get(hostname)
      }
    })
    app.addHook('onResponse', async request => {
      if (request.litefs?.waitedMs !== undefined) counts.heldReads++
      // Counted where the forwarded write arrives: the plugin marks it with this
      // header (its loop guard). The forwarding node's own hooks run before it
      // has recorded the forward in request.litefs.
      if (request.headers['litefs-forwarded'] !== undefined) counts.forwardedWrites++
    })
    urls.set(node.name, await app.listen({ port: 0, host: '127.0.0.1' }))
    apps.set(node, app)
  }

  return {
    urls,
    counts,
    /** The node's app stops: it finishes what it is serving and then refuses connections. */
    async close (node) {
      await apps.get(node)?.close()
      apps.delete(node)
    },
    async closeAll () {
      await Promise.all([...apps.values()].map(app => app.close()))
      apps.clear()
    }
  }
}
