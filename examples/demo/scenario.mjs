// One run of the demo: a fresh 3-node dev cluster with replication lag, the
// notes app on every node (with or without litefs-proxy), a round-robin
// balancer in front, the virtual users, and optionally a failover mid-run.
import { createDevCluster } from 'litefs-proxy/dev'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { SCHEMA } from '../fastify/app.mjs'
import { createBalancer } from './balancer.mjs'
import { serveNodes } from './nodes.mjs'
import { checkWrites, percentile, runUsers } from './workload.mjs'

/**
 * @param {{
 *   plugin: boolean,                 // the apps run litefs-proxy, or not
 *   users?: number,                  // virtual users, each with its own cookie jar
 *   rounds?: number,                 // write→read pairs per user
 *   pace?: number,                   // ms between the starts of a user's pairs (0: at once, which saturates the process)
 *   lag?: number | [number, number], // replication lag in ms, as the dev cluster takes it
 *   failover?: boolean,              // at 40 % of the run the primary goes, another node takes over 1 s later (plugin on only)
 *   onPair?: (done: number, total: number) => void,
 *   onEvent?: (text: string) => void
 * }} options
 */
export async function runScenario ({ plugin, users = 50, rounds = 40, pace = 0, lag = [20, 120], failover = false, onPair = () => {}, onEvent = () => {} }) {
  if (failover && !plugin) throw new Error('the failover act needs the plugin: without it the balancer would have to find the new primary itself')
  const started = performance.now()
  const cluster = await createDevCluster({ nodes: 3, lag, schema: SCHEMA })
  let nodes, balancer
  try {
    nodes = await serveNodes(cluster, { plugin })
    balancer = await createBalancer({
      backends: [...nodes.urls.values()],
      // Without the plugin a replica cannot take a write (its database is
      // read-only, as under LiteFS): the balancer sends writes to the primary.
      writesTo: plugin ? undefined : () => nodes.urls.get(cluster.primary.name)
    })

    const total = users * rounds
    let act
    const seen = await runUsers({
      url: balancer.url,
      users,
      rounds,
      pace,
      onPair: done => {
        onPair(done, total)
        if (failover && act === undefined && done >= total * 0.4) {
          act = failoverAct(cluster, nodes, balancer, onEvent)
          act.catch(() => {}) // awaited below; this only keeps it from counting as unhandled meanwhile
        }
      }
    })
    const acted = await act

    await cluster.settled()
    const db = cluster.primary.db
    const copies = db.prepare('SELECT count(*) FROM notes WHERE text = ?').pluck()
    return {
      plugin,
      pairs: seen.pairs,
      requests: seen.requests,
      stale: seen.stale,
      errors: seen.errors,
      // Each failed request, and for a write how many times its note is in the final database.
      failures: seen.failures.map(f => f.kind === 'write' ? { ...f, copies: copies.get(f.token) } : f),
      p50: percentile(seen.latencies, 50),
      p99: percentile(seen.latencies, 99),
      byKind: Object.fromEntries(Object.entries(seen.byKind).map(([kind, l]) => [kind, { p50: percentile(l, 50), p99: percentile(l, 99) }])),
      ...nodes.counts,
      writes: checkWrites(db, seen.writes),
      failover: acted && { from: acted.from, to: acted.to, gapMs: acted.promotedAt - acted.downAt, ...duringFailover(seen.writes, acted) },
      seconds: (performance.now() - started) / 1000
    }
  } finally {
    await balancer?.close()
    await nodes?.closeAll()
    await cluster.close()
  }
}

/**
 * The primary goes away, and another node takes over a second later, while the
 * users keep writing. Writes that arrive meanwhile are held by the plugin until
 * a primary is known (primaryRedirectTimeout, 5 s by default), then forwarded.
 *
 * LiteFS replicates asynchronously: a primary that dies before its last
 * transactions reached a replica takes them with it. This act is a clean
 * shutdown, as in a deploy: the balancer stops sending to the node and waits
 * for the requests it sent there to be answered, the app drains, replication
 * catches up, and only then does LiteFS stop. (A hard crash would lose the
 * writes of its last ~lag milliseconds.) Replicas still forward writes to the
 * node until LiteFS says it is gone: one that meets a connection the app is
 * closing fails with 502, and is not resent.
 */
async function failoverAct (cluster, nodes, balancer, say) {
  const old = cluster.primary
  const next = cluster.nodes.find(n => n !== old)
  const downAt = performance.now()
  say(`${old.name} (primary) shuts down: out of the balancer, its app drains and closes`)
  await balancer.remove(nodes.urls.get(old.name)) // the balancer's requests to it answered first
  await nodes.close(old)
  await cluster.settled()
  cluster.stop(old)
  say(`${old.name}: LiteFS stopped; no primary now, writes are held`)
  await sleep(1000)
  await cluster.promote(next)
  const promotedAt = performance.now()
  say(`${next.name} promoted to primary ${Math.round(promotedAt - downAt)} ms after ${old.name} began to shut down`)
  return { from: old.name, to: next.name, downAt, promotedAt }
}

/**
 * Writes in flight when the new primary arrived were waiting for it: there was
 * none before. Writes that failed before it arrived were cut off by the old
 * primary's shutdown (a connection closed under a request already sent, which
 * the plugin rightly does not retry: it may have been applied).
 */
function duringFailover (writes, { downAt, promotedAt }) {
  const held = writes.filter(w => w.started < promotedAt && w.ended > promotedAt)
  const cut = writes.filter(w => !w.acked && w.ended >= downAt && w.ended <= promotedAt)
  return { held: held.length, heldAcked: held.filter(w => w.acked).length, cut: cut.length }
}
