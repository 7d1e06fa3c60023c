// npm run test:litefs — the behaviour suite on a real LiteFS cluster (test/litefs/).
// Needs the LiteFS binary (scripts/install-litefs.sh) and FUSE (root, /dev/fuse,
// fusermount3); the failover suite also Consul (scripts/install-consul.sh) and
// network namespaces (ip, nsenter, iptables). Under CI a missing piece fails the
// run with one line naming it; elsewhere the suite is skipped, visibly.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { findConsul, findLitefs, fuseProblem, netnsProblem } from '../dist/esm/testing/litefs-cluster.js'

const missing = []
if (findLitefs() === undefined) missing.push('the litefs binary (run scripts/install-litefs.sh, or set LITEFS_BIN)')
const fuse = fuseProblem()
if (fuse !== undefined) missing.push(fuse)
if (findConsul() === undefined) missing.push('the consul binary (run scripts/install-consul.sh, or set CONSUL_BIN)')
const netns = netnsProblem()
if (netns !== undefined) missing.push(netns)
if (missing.length > 0) {
  const line = `test:litefs: cannot run on real LiteFS: ${missing.join('; ')}`
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') {
    console.error(line)
    process.exit(1)
  }
  console.warn(`${line} — SKIPPED (under CI this fails)`)
  process.exit(0)
}

const files = readdirSync('test/litefs').filter(f => f.endsWith('.test.ts')).map(f => `test/litefs/${f}`)
// One file at a time: each runs a cluster of FUSE mounts and app processes. The
// failover suite takes about 10 minutes (LITEFS_FAILOVER_REPS=2), hence the bound.
const tap = spawnSync(process.execPath, ['node_modules/tap/dist/esm/run.mjs', '--disable-coverage', '--jobs=1', '--timeout=1200', ...process.argv.slice(2), ...files], { stdio: 'inherit' })
process.exit(tap.status ?? 1)
