// litefs-proxy's stats() and diagnostics channels as Prometheus metrics, with
// prom-client: gauges read from stats() at each scrape, a histogram fed by the
// `litefs-proxy:wait:end` channel. Works the same with the Express middleware
// (`proxy.stats`) or the node:http wrapper (`listener.stats`).
import { subscribe } from 'node:diagnostics_channel'
import client from 'prom-client'
import { CHANNELS } from 'litefs-proxy'

/**
 * Register litefs-proxy's metrics on `registry`.
 * @param {() => import('litefs-proxy').LitefsStats} stats  e.g. `() => app.litefs.stats()`
 * @param {import('prom-client').Registry} registry
 */
export function litefsMetrics (stats, registry = client.register) {
  const gauge = (name, help, value) => new client.Gauge({ name, help, registers: [registry], collect () { this.set(value(stats())) } })
  gauge('litefs_proxy_held', 'Requests held now (reads waiting for a TXID, writes for a primary)', s => s.held)
  gauge('litefs_proxy_up', '1 while LiteFS on this node answers (its event stream is up)', s => s.litefs === 'up' ? 1 : 0)
  gauge('litefs_proxy_primary', '1 on the primary', s => s.role === 'primary' ? 1 : 0)
  const counter = (name, help, value) => new client.Counter({ name, help, registers: [registry], collect () { this.reset(); this.inc(value(stats())) } })
  counter('litefs_proxy_waits_total', 'Waits begun', s => s.waits)
  counter('litefs_proxy_wait_timeouts_total', 'Waits that timed out', s => s.timeouts)
  counter('litefs_proxy_unreachable_total', 'Reads served because the primary is behind their TXID', s => s.unreachable)
  counter('litefs_proxy_overloaded_total', 'Requests refused past maxWaiting', s => s.overloaded)
  counter('litefs_proxy_forwards_total', 'Requests streamed to the primary', s => s.forwards)
  const errors = new client.Gauge({
    name: 'litefs_proxy_forward_errors',
    help: 'Forwards that failed, by code',
    labelNames: ['code'],
    registers: [registry],
    collect () { for (const [code, n] of Object.entries(stats().forwardErrors)) this.set({ code }, n) }
  })
  void errors
  const waited = new client.Histogram({
    name: 'litefs_proxy_wait_seconds',
    help: 'How long requests were held, by what they waited for and how it ended',
    labelNames: ['kind', 'result'],
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2, 5],
    registers: [registry]
  })
  subscribe(CHANNELS.waitEnd, ({ kind, result, ms }) => { waited.observe({ kind, result }, ms / 1000) })
}
