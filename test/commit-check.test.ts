import t from 'tap'
import { NodeState } from '../lib/core/node-state.js'
import { SetMount } from './helpers/set-mount.js'
import { WAYS, cookieOf, post, serveWay } from './helpers/write-ways.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { openLitefsNode } from '../lib/core/litefs-node.js'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

// No success for a write whose commit this node can no longer vouch for
// (commit-check.ts): the handler commits, then — before its answer leaves —
// this node stops being primary, LiteFS goes away, or the lease fence closes.
// The client gets 502 LITEFS_OUTCOME_UNKNOWN (no Retry-After, no cookie) in
// every adapter and serve, through real sockets; the app's error answers and a
// node that still writes as primary pass as they are.

const Mount = SetMount

const statusOf = (raw: string): number => Number(raw.split(' ')[1])
const codeOf = (raw: string): string | undefined => /"code":"([A-Z_]+)"/.exec(raw)?.[1]

interface Case {
  name: string
  /** What happens to the node between the handler's commit and its answer. */
  during: (state: NodeState, mount: Mount, fence: { open: boolean }) => void
  path?: string
  expect: 'unknown' | 'cookied' | 'as-is'
}

const CASES: Case[] = [
  { name: 'still primary', during: () => {}, expect: 'cookied' },
  { name: 'demoted to replica', during: s => { s.setRole('replica', 'node-b') }, expect: 'unknown' },
  { name: 'LiteFS went away', during: s => { s.setLitefs('down') }, expect: 'unknown' },
  { name: 'the lease fence closed', during: (_s, _m, f) => { f.open = false }, expect: 'unknown' },
  { name: 'no position and the mount does not answer', during: (_s, m) => { m.pos = undefined; m.answers = false }, expect: 'unknown' },
  { name: 'no position but the mount answers (a wrong db)', during: (_s, m) => { m.pos = undefined }, expect: 'as-is' },
  { name: 'the app answered an error', during: s => { s.setRole('replica', 'node-b') }, path: '&status=409', expect: 'as-is' }
]

for (const way of WAYS) {
  t.test(`${way}: a success is sent only while this node still writes as primary`, async t => {
    for (const c of CASES) {
      const mount = new Mount()
      const state = new NodeState(mount)
      const fence = { open: true }
      state.fence = { isOpen: () => fence.open, view: 'mine', holder: undefined }
      state.setRole('primary')
      const { url } = await serveWay(t, way, { state }, () => { c.during(state, mount, fence) })
      const raw = await post(url, `/w?who=A${c.path ?? ''}`).done
      if (c.expect === 'unknown') {
        t.equal(statusOf(raw), 502, `${c.name}: 502`)
        t.equal(codeOf(raw), 'LITEFS_OUTCOME_UNKNOWN', `${c.name}: the outcome is unknown`)
        t.notMatch(raw, /^retry-after:/im, `${c.name}: no invitation to retry`)
        t.notMatch(raw, /answer A/, `${c.name}: the app's success is not sent`)
      } else {
        t.match(raw, /answer A/, `${c.name}: the app's answer`)
        t.equal(statusOf(raw), c.path === undefined ? 200 : 409)
      }
      t.equal(cookieOf(raw), c.expect === 'cookied' ? 5n : undefined, `${c.name}: ${c.expect === 'cookied' ? 'cookied' : 'no cookie'}`)
    }
  })
}

// On the fake LiteFS (real files, a real event stream): LiteFS dies between the
// handler's commit and its answer, the stream's end not read yet. The position
// read fails and the mount is looked at: dead, so no success.
t.test('on the fake LiteFS: the mount gone under a write that committed', async t => {
  for (const way of WAYS) {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
    t.teardown(async () => { await fake.close() })
    const real = openLitefsNode({ mount: fake.mount, api: fake.apiUrl, databases: ['app.db'], pollInterval: 1 })
    t.teardown(async () => { await real.close() })
    await until(() => real.litefs === 'up' && real.role === 'primary', 'subscribed')
    let kill = false
    const { url } = await serveWay(t, way, { state: real }, () => {
      fake.advance(fake.txid + 1n, { event: false })
      if (!kill) return
      // A dead FUSE mount: its files fail (ENOTCONN), the kept -pos fd too. A
      // directory cannot fail that way, so the kept fd's read is made to.
      rmSync(join(fake.mount, '.lag'))
      const files = (real.driver as unknown as { files: { readPositionAsync: () => Promise<bigint> } }).files
      files.readPositionAsync = async () => { throw Object.assign(new Error('ENOTCONN: socket is not connected, read'), { code: 'ENOTCONN' }) }
    })
    const ok = await post(url, '/w?who=A').done
    t.equal(cookieOf(ok), 2n, `${way}: a live mount: cookied`)
    kill = true
    const raw = await post(url, '/w?who=B').done
    t.equal(statusOf(raw), 502, `${way}: the mount died after the commit: 502`)
    t.equal(codeOf(raw), 'LITEFS_OUTCOME_UNKNOWN')
    t.equal(real.litefs, 'down', `${way}: and the node is down`)
  }
})
