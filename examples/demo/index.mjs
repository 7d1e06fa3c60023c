// npm start: read-your-writes on a 3-node LiteFS-like cluster behind a
// round-robin balancer, first without litefs-proxy, then with it and a failover.
// Exits 1 if, with the plugin, a read is stale or a write held through the
// failover does not complete, or if any acknowledged write is lost or doubled.
import { errors, progressBar, table } from './report.mjs'
import { runScenario } from './scenario.mjs'

const USERS = 50
const LAG = [20, 120] // ms between a commit on the primary and its arrival on a replica

console.log(`litefs-proxy demo: 3 nodes (embedded dev cluster, replication lag ${LAG[0]}-${LAG[1]} ms) behind a round-robin balancer
without stickiness; ${USERS} users, each with its own cookie jar, write a note and at once read their notes back.
A stale read is a read whose answer lacks the note its user has just written.
`)

async function run (label, options) {
  const bar = progressBar(label)
  const result = await runScenario({ users: USERS, lag: LAG, ...options, onPair: bar.update, onEvent: bar.event })
  bar.done()
  console.log(`  ${label}: ${result.pairs} pairs in ${result.seconds.toFixed(1)} s`)
  return result
}

const off = await run('plugin OFF', { plugin: false, rounds: 30 })
const on = await run('plugin ON', { plugin: true, rounds: 60, failover: true })

console.log(`
${table([off, on])}

plugin OFF: the apps run without litefs-proxy. A replica cannot write (read-only, as under LiteFS),
  so the balancer sends every write to the primary itself; reads go round-robin, and the two
  reads in three that land on a replica find it has not caught up yet.
plugin ON:  everything goes round-robin. A replica forwards a write to the primary ("forwarded
  writes"), and holds a read carrying the user's litefs-txid cookie until it has that write
  ("held reads").
Latencies are end to end through the balancer; all nodes, the balancer and the users share one process.
`)

for (const r of [off, on]) console.log(`writes, plugin ${r.plugin ? 'ON: ' : 'OFF:'} ${describeWrites(r.writes)}`)
const f = on.failover
console.log(`failover: ${f.from} shut down at 40 % of the ON run; ${f.to} was promoted ${Math.round(f.gapMs)} ms later.
  ${count(f.held, 'write')} waited for a primary meanwhile; ${f.heldAcked} of them completed. ${on.writes.lost} lost, ${on.writes.doubled} doubled.`)
if (f.cut > 0) {
  console.log(`  ${count(f.cut, 'write')} already on their way to ${f.from} failed as it closed their connections: the plugin
  never retries a write that may have reached the primary.`)
}

const failures = [
  on.stale > 0 && `${count(on.stale, 'stale read')} with the plugin`,
  on.writes.lost + off.writes.lost > 0 && `${count(on.writes.lost + off.writes.lost, 'acknowledged write')} lost`,
  on.writes.doubled + off.writes.doubled > 0 && `${count(on.writes.doubled + off.writes.doubled, 'write')} applied twice`,
  f.heldAcked < f.held && `${count(f.held - f.heldAcked, 'write')} held through the failover did not complete`
].filter(Boolean)

if (failures.length === 0) {
  console.log('\nOK: with litefs-proxy every user read their own write, and every acknowledged write is in the database exactly once.')
} else {
  console.log(`\nFAILED: ${failures.join('; ')}. ON-run errors: ${errors(on.errors)}.`)
  process.exitCode = 1
}

function count (n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function describeWrites (w) {
  const kept = w.lost === 0 && w.doubled === 0
    ? `all ${w.acked} acknowledged writes are in the final database exactly once`
    : `${w.acked} acknowledged: ${w.lost} lost, ${w.doubled} doubled`
  const failed = w.failed === 0 ? '' : `; ${count(w.failed, 'write')} failed for their client (${w.failedApplied} of them applied anyway)`
  return kept + failed
}
