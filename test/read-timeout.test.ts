// A read held past `readTimeout` gets one of three answers (readTimeoutAction,
// lib/core/read-timeout.ts): 504, the primary's answer, or this replica's own
// answer marked `litefs-stale`. Each is counted in stats() and published on
// `litefs-proxy:read:timeout`, through real sockets for every adapter and serve.
import t from 'tap'
import diagnostics from 'node:diagnostics_channel'
import { request } from 'undici'
import { CHANNELS } from '../lib/core/observe.js'
import { FLAVOURS, pair } from './helpers/pairs.js'
import type { Handler } from './helpers/framework-apps.js'
import { until, type FakeLitefs } from './helpers/fake-litefs.js'

const routes = (fake: FakeLitefs): Record<string, Handler> => ({
  'GET /items': (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ node: fake.role, stale: req.litefs?.stale ?? null }))
  }
})

// Ahead of the replica (5), behind the primary (10): the probe cannot settle it, only replication can.
const ahead = { cookie: 'litefs-txid=0000000000000008', 'litefs-txid': '0000000000000008' } // both: serve's cookie is __txid

interface Published { action: string, txid: string, position: string }

for (const flavour of FLAVOURS) {
  t.test(flavour, async t => {
    const published: Published[] = []
    const listen = (m: unknown): void => { published.push(m as Published) }
    diagnostics.subscribe(CHANNELS.readTimeout, listen)
    t.teardown(() => { diagnostics.unsubscribe(CHANNELS.readTimeout, listen) })

    for (const action of ['error', 'primary', 'stale'] as const) {
      await t.test(`readTimeoutAction '${action}'`, async t => {
        published.length = 0
        const { primary, replica } = await pair(t, flavour, { routes, replica: { readTimeout: 40, readTimeoutAction: action } })
        const res = await request(`${replica.url}/items`, { headers: ahead })
        const text = await res.body.text()
        if (action === 'error') {
          t.equal(res.statusCode, 504)
          t.same(JSON.parse(text), { error: 'replica did not reach TXID 0000000000000008 within 40 ms (at 0000000000000005)', code: 'LITEFS_READ_TIMEOUT' })
          t.same(replica.hits, [], 'the app did not run')
        } else if (action === 'primary') {
          t.equal(res.statusCode, 200)
          t.equal(JSON.parse(text).node, 'primary', "the primary's answer")
          t.same(primary.hits, ['GET /items'])
        } else {
          t.equal(res.statusCode, 200)
          t.equal(JSON.parse(text).node, 'replica', "this replica's own answer")
          t.equal(res.headers['litefs-stale'], 'txid=0000000000000008; position=0000000000000005', 'marked: what it waited for, what it had')
          if (flavour !== 'serve') t.equal(JSON.parse(text).stale, true, 'req.litefs.stale')
          t.same(primary.hits, [], 'the primary was not asked')
        }
        if (action !== 'stale') t.equal(res.headers['litefs-stale'], undefined, 'not marked stale')
        const counted = replica.stats().readTimeouts
        t.same(counted, { error: 0, primary: 0, stale: 0, [action]: 1 }, 'stats() counts the answer given')
        t.equal(published.length, 1, 'published once')
        t.match(published[0], { action, txid: '0000000000000008', position: '0000000000000005' })
        t.ok((published[0] as unknown as { request: unknown }).request, 'with its request')
        if (flavour === 'serve') {
          const warn = replica.lines.map(l => JSON.parse(l)).filter(l => l.level === 'warn' && /read timed out/.test(l.msg))
          t.equal(warn.length, 1, 'one log line')
          if (action === 'stale') t.match(warn[0].msg, /it may be stale/)
          t.match(warn[0], { method: 'GET', path: /^\//, txid: '0000000000000008' }, 'it names the request')
        }
      })
    }

    await t.test("'primary' with no primary known answers 504, and is counted as such", async t => {
      published.length = 0
      const { replica } = await pair(t, flavour, { routes, replica: { readTimeout: 40, readTimeoutAction: 'primary' } })
      replica.fake.losePrimary()
      await until(() => replica.state.primaryHostname === undefined, 'no primary known')
      const res = await request(`${replica.url}/items`, { headers: ahead })
      await res.body.dump()
      t.equal(res.statusCode, 504)
      t.same(replica.stats().readTimeouts, { error: 1, primary: 0, stale: 0 })
      t.equal(published[0]?.action, 'error')
    })
  })
}
