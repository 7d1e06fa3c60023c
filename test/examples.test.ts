// The runnable examples, run as a user runs them (built package, real sockets,
// the embedded dev cluster): each must show read-your-writes and exit 0.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { builtPackageEnv } from './helpers/child-env.js'

const root = new URL('..', import.meta.url).pathname
const run = promisify(execFile)

for (const example of ['examples/express/dev.mjs', 'examples/node-http/dev.mjs']) {
  t.test(example, async t => {
    // The examples import the built package (dist), which is not the source under coverage.
    const { stdout } = await run(process.execPath, [example], { cwd: root, env: builtPackageEnv(), timeout: 60_000 })
    t.match(stdout, /POST \/notes on node-2 \(a replica\) → 201 .*cookie litefs-txid=[0-9a-f]{16}/)
    t.match(stdout, /GET on node-3 with the cookie → 1 note\(s\)/)
  })
}

t.test('examples/prometheus/dev.mjs: stats() and the wait channel as Prometheus metrics', async t => {
  const { stdout } = await run(process.execPath, ['examples/prometheus/dev.mjs'], { cwd: root, env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' }, timeout: 60_000 })
  t.match(stdout, /^litefs_proxy_held 0$/m)
  t.match(stdout, /^litefs_proxy_up 1$/m)
  t.match(stdout, /^litefs_proxy_waits_total 1$/m, 'the read that waited, counted')
  t.match(stdout, /^litefs_proxy_wait_seconds_count\{kind="position",result="ready"\} 1$/m, 'and timed through the channel')
})
