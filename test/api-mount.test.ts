// LiteFS's API and mount from two different nodes (issue 23, item 6): the
// primary's API with a replica's mount — two nodes on one host, a setting
// copied from the other node. Each adapter refuses writes (503
// LITEFS_MISMATCH: never served into the replica's mount, never cookied),
// health says `mismatch`, and the cause is said once. On real LiteFS:
// test/litefs/newcomer.test.ts.
import t from 'tap'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve } from './helpers/apps.js'
import { disagreement } from '../lib/core/api-mount.js'
import { mountFiles } from '../lib/core/mount-files.js'

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: the primary's API with a replica's mount: writes refused, health says mismatch`, async t => {
    const primary = await FakeLitefs.start({ role: 'primary', txid: 7n })
    const replica = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 7n })
    t.teardown(async () => { await primary.close(); await replica.close() })
    const app = await serve(adapter, replica, { api: primary.apiUrl })
    t.teardown(async () => { await app.close() })
    await until(() => app.state.mismatch !== undefined, 'the disagreement is seen at subscription')
    const write = await request(`${app.url}/items`, { method: 'POST', body: 'x' })
    t.equal(write.statusCode, 503)
    t.equal(write.headers['set-cookie'], undefined, 'no cookie')
    t.match(await write.body.json(), { code: 'LITEFS_MISMATCH', error: /API at http:\/\/127\.0\.0\.1:\d+ says this node is the primary, but the mount .* is a replica's \(its \.primary names node-a\).*nothing was applied/ })
    t.equal(app.writes, 0, 'the app never ran it')
    const health = await request(`${app.url}/litefs/health`)
    t.equal(health.statusCode, 503)
    t.match(await health.body.json(), { status: 'mismatch', role: 'primary', mismatch: /two nodes'/ })
    const read = await request(`${app.url}/items`)
    t.equal(read.statusCode, 200, 'reads are served (from the mount)')
    await read.body.dump()
  })
}

t.test('api and mount agree: no mismatch, whichever role; two different primaries named: mismatch', async t => {
  const primary = await FakeLitefs.start({ role: 'primary', txid: 1n })
  const replica = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 1n })
  t.teardown(async () => { await primary.close(); await replica.close() })
  const p = mountFiles(primary.mount)
  const r = mountFiles(replica.mount)
  t.equal(disagreement(p, 'api', 'm', true, undefined), undefined, 'a primary: its mount has no .primary')
  t.equal(disagreement(r, 'api', 'm', false, 'node-a'), undefined, 'a replica naming the primary its mount names')
  t.equal(disagreement(r, 'api', 'm', false, undefined), undefined, 'a replica that knows no primary now')
  t.equal(disagreement(p, 'api', 'm', false, 'node-a'), undefined, "a replica's API with the primary's mount cannot be told from a cut-off replica's: let be")
  t.match(disagreement(r, 'api', 'm', false, 'node-b'), /says the primary is node-b, but the mount m says node-a/)
})

t.test('said once, and said when it clears', async t => {
  const primary = await FakeLitefs.start({ role: 'primary', txid: 7n })
  const replica = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 7n })
  t.teardown(async () => { await primary.close(); await replica.close() })
  const lines: Array<[string, string]> = []
  const at = (level: string) => (_o: object, msg: string) => { lines.push([level, msg]) }
  const log = { debug () {}, info: at('info'), warn: at('warn'), error: at('error') }
  const { wrap } = await import('../lib/http.js')
  const l = wrap(() => {}, { db: 'app.db', mount: replica.mount, api: primary.apiUrl, logger: log })
  t.teardown(async () => { await l.close() })
  await until(() => l.core.state.mismatch !== undefined)
  replica.becomePrimary() // the mount's node becomes primary too: now they agree…
  primary.becomePrimary() // …as the API's next primaryChange finds
  await until(() => l.core.state.mismatch === undefined, 'cleared')
  t.same(lines.filter(([level]) => level !== 'error').map(([level, m]) => [level, /LITEFS_MISMATCH|agree now|two nodes'/.test(m)]), [['warn', true], ['info', true]])
})
