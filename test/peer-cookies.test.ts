// Reads also accept the peers' cookies (option peerCookies, lib/core/peer-cookies.ts):
// LiteFS's proxy's `__txid` (16 hex digits) and litefs-js's `txnum` (decimal),
// so a rolling switch keeps the tokens already in browsers. Off by default
// (unsigned: anyone can forge one). Through real sockets, each adapter and serve.
import t from 'tap'
import { request } from 'undici'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until, type FakeLitefs } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'
import { readPeerCookies } from '../lib/core/peer-cookies.js'
import { wrap } from '../lib/http.js'
import { resolveOptions } from '../lib/core/options.js'

const routes = (fake: FakeLitefs): Record<string, Handler> => ({
  'GET /items': (req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node: fake.role, awaited: req.litefs?.awaitedTxid ?? null })) }
})

for (const flavour of FLAVOURS) {
  t.test(flavour, async t => {
    t.test('with peerCookies, a read carrying __txid (hex) or txnum (decimal) is held until the replica has it', async t => {
      const { replica } = await pair(t, flavour, { routes, replica: { peerCookies: ['__txid', 'txnum'] } })
      const byLitefs = request(`${replica.url}/items`, { headers: { cookie: 'other=1; __txid=0000000000000007' } })
      const byLitefsJs = request(`${replica.url}/items`, { headers: { cookie: 'txnum=8; theme=dark' } })
      await until(() => replica.state.waiterCount === 2, 'both held')
      replica.fake.advance(7n)
      const first = await byLitefs
      t.equal(first.statusCode, 200)
      if (flavour !== 'serve') t.equal((await first.body.json() as any).awaited, '0000000000000007')
      else await first.body.dump()
      t.equal(replica.state.waiterCount, 1, 'txnum=8 still held at 7')
      replica.fake.advance(8n)
      const second = await byLitefsJs
      t.equal(second.statusCode, 200)
      if (flavour !== 'serve') t.equal((await second.body.json() as any).awaited, '0000000000000008')
      else await second.body.dump()
    })

    t.test('without it (the default) they are not read: served at once', async t => {
      const { replica } = await pair(t, flavour, { routes })
      // serve's own cookie is LiteFS's __txid already (--cookie-name): only txnum is a peer's there.
      const cookies = flavour === 'serve' ? ['txnum=99'] : ['__txid=0000000000000063', 'txnum=99']
      for (const cookie of cookies) {
        const res = await request(`${replica.url}/items`, { headers: { cookie } })
        t.equal(res.statusCode, 200, cookie)
        await res.body.dump()
      }
      t.equal(replica.stats().waits, 0, 'nothing was held')
    })
  })
}

t.test('the formats: what LiteFS and litefs-js write, and nothing else', async t => {
  const both = ['__txid', 'txnum'] as const
  t.equal(readPeerCookies(both, '__txid=00000000000000ff'), 255n)
  t.equal(readPeerCookies(both, 'txnum=255'), 255n)
  t.equal(readPeerCookies(both, 'txnum=18446744073709551615'), (1n << 64n) - 1n, 'the largest TXID')
  for (const bad of ['txnum=18446744073709551616', 'txnum=-1', 'txnum=1e3', 'txnum=0x10', 'txnum=', '__txid=ff', '__txid=zzzzzzzzzzzzzzzz', 'xtxnum=5', undefined]) {
    t.equal(readPeerCookies(both, bad), undefined, String(bad))
  }
  t.equal(readPeerCookies(both, 'txnum=9; __txid=0000000000000005; txnum=3'), 9n, 'the highest of all')
  t.equal(readPeerCookies(['txnum'], '__txid=0000000000000009; txnum=3'), 3n, 'only the names asked for')
  t.same(resolveOptions({ db: 'a', peerCookies: ['txnum', 'txnum'] }).peerCookies, ['txnum'])
  t.same(resolveOptions({ db: 'a' }).peerCookies, [], 'off by default')
  t.throws(() => resolveOptions({ db: 'a', peerCookies: ['session'] }), /"peerCookies" must be an array of "__txid" \(LiteFS's proxy\) and "txnum" \(litefs-js\), got \["session"\]/)
  t.throws(() => resolveOptions({ db: 'a', peerCookies: 'txnum' }), /"peerCookies"/)
})

t.test('beside a secret, accepting unsigned cookies is said once', async t => {
  const lines: string[] = []
  const log = { debug () {}, info () {}, warn (_o: object, m: string) { lines.push(m) }, error () {} }
  const a = wrap(() => {}, { db: 'app.db', mount: '/nonexistent', api: false, role: 'replica', secret: 'sixteen chars ok', peerCookies: ['txnum'], logger: log })
  const b = wrap(() => {}, { db: 'app.db', mount: '/nonexistent', api: false, role: 'replica', secret: 'sixteen chars ok', peerCookies: ['txnum'], logger: log })
  t.teardown(async () => { await a.close(); await b.close() })
  t.same(lines.filter(l => /peerCookies/.test(l)), ['litefs-proxy: "peerCookies" accepts unsigned txnum cookies beside a "secret": any client can forge one and have its reads held up to readTimeout. Drop "peerCookies" once the tokens of the peer you moved from have expired'])
})
