// npm start: read-your-writes on a 3-node LiteFS-like cluster behind a
// round-robin balancer: the same workload without litefs-proxy, with it, and
// with it through a failover. Exits 1 if, with the plugin, a read is stale or a
// write held through the failover does not complete, or if any acknowledged
// write is lost or doubled.
import { errors, explainFailures, progressBar, table } from './report.mjs'
import { runScenario } from './scenario.mjs'

// Ctrl-C: exit through process.exit, so the dev clusters' temporary files go
// with the process ('exit' hooks do not run when a signal nobody handles ends it).
process.once('SIGINT', () => process.exit(130))

const USERS = 50
const ROUNDS = 20 // write→read pairs per user, in every run
const PACE = 200 // ms between the starts of a user's pairs
const LAG = [20, 120] // ms between a commit on the primary and its arrival on a replica

console.log(`litefs-proxy demo: 3 nodes (embedded dev cluster, replication lag ${LAG[0]}-${LAG[1]} ms) behind a round-robin balancer
without stickiness; ${USERS} users, each with its own cookie jar, write a note and at once read their notes back,
${ROUNDS} times each, one such pair every ${PACE} ms. A stale read is a read whose answer lacks the note its user has just written.
`)

async function run (label, options) {
  const bar = progressBar(label)
  const result = await runScenario({ users: USERS, rounds: ROUNDS, pace: PACE, lag: LAG, ...options, onPair: bar.update, onEvent: bar.event })
  bar.done()
  console.log(`  ${label}: ${result.pairs} pairs in ${result.seconds.toFixed(1)} s`)
  return { label, ...result }
}

// Not counted: the first requests of a process pay for compiling its code
// (JIT, Fastify's schemas, new connections), 100-200 ms at p99 here.
for (const plugin of [false, true]) await runScenario({ plugin, users: 10, rounds: 10, lag: LAG })

const off = await run('plugin OFF', { plugin: false })
const on = await run('plugin ON', { plugin: true })
const fo = await run('ON + failover', { plugin: true, failover: true })
const runs = [off, on, fo]

console.log(`
${table(runs)}

plugin OFF: the apps run without litefs-proxy. A replica cannot write (read-only, as under LiteFS),
  so the balancer sends every write to the primary itself; reads go round-robin, and the two
  reads in three that land on a replica find it has not caught up yet.
plugin ON:  everything goes round-robin. A replica forwards a write to the primary ("forwarded
  writes"), and holds a read carrying the user's litefs-txid cookie until it has that write
  ("held reads").
ON + failover: the same as plugin ON, and at 40 % of the run the primary shuts down (below); the writes
  held for a new primary meanwhile (about a second) are its write p99.
Latencies are end to end through the balancer. A held read waits for replication (${LAG[0]}-${LAG[1]} ms here): that wait,
  which the OFF run's stale reads skip, is what reading your own write costs; a forwarded write adds one hop.
The users are paced so that the one process running nodes, balancer and users is not saturated: flat out,
  a latency would mostly be a wait behind the other users' requests, longest in the OFF run, which never holds a read.
`)

for (const r of runs) console.log(`writes, ${(r.label + ':').padEnd(14)} ${describeWrites(r.writes)}`)
const f = fo.failover
console.log(`failover: ${f.from} shut down at 40 % of the run: out of the balancer once the requests it had sent there were answered,
  then its app drained and closed, then LiteFS stopped; ${f.to} was promoted ${Math.round(f.gapMs)} ms after the shutdown began.
  ${count(f.held, 'write')} waited for a primary meanwhile; ${f.heldAcked} of them completed. ${fo.writes.lost} lost, ${fo.writes.doubled} doubled.`)

for (const r of runs) {
  if (r.failures.length === 0) continue
  console.log(`errors, ${r.label}:`)
  for (const line of explainFailures(r.failures, r.failover?.from)) console.log(`  ${line}`)
}

const withPlugin = [on, fo]
const stale = withPlugin.reduce((n, r) => n + r.stale, 0)
const lost = runs.reduce((n, r) => n + r.writes.lost, 0)
const doubled = runs.reduce((n, r) => n + r.writes.doubled, 0)
const failures = [
  stale > 0 && `${count(stale, 'stale read')} with the plugin`,
  lost > 0 && `${count(lost, 'acknowledged write')} lost`,
  doubled > 0 && `${count(doubled, 'write')} applied twice`,
  f.heldAcked < f.held && `${count(f.held - f.heldAcked, 'write')} held through the failover did not complete`
].filter(Boolean)

if (failures.length === 0) {
  console.log('\nOK: with litefs-proxy every user read their own write, and every acknowledged write is in the database exactly once.')
} else {
  console.log(`\nFAILED: ${failures.join('; ')}. Errors with the plugin: ${withPlugin.map(r => `${r.label} ${errors(r.errors)}`).join(', ')}.`)
  process.exitCode = 1
}

function count (n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function describeWrites (w) {
  const kept = w.lost === 0 && w.doubled === 0
    ? `all ${w.acked} acknowledged writes are in the final database exactly once`
    : `${w.acked} acknowledged: ${w.lost} lost, ${w.doubled} doubled`
  const failed = w.failed === 0 ? '' : `; ${count(w.failed, 'write')} failed for its user (${w.failedApplied} of them applied anyway: see errors)`
  return kept + failed
}
