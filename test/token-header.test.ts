// The token without cookies (option tokenHeader, lib/core/token.ts): every
// write answer carries the position in the `litefs-txid` response header, and
// a read may send it back in the same request header instead of the cookie —
// signed tokens as signed cookies. Through real sockets, each adapter and serve.
import t from 'tap'
import { request } from 'undici'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until, type FakeLitefs } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'

const routes = (fake: FakeLitefs): Record<string, Handler> => ({
  'POST /items': (req, res) => {
    const commit = (): void => {
      fake.advance(fake.txid + 1n, { event: false }) // the handler's commit
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}')
    }
    // The adapters read the body for the handler; behind serve it is unread.
    if (req.readableEnded) commit()
    else req.resume().on('end', commit)
  },
  'GET /items': (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node: fake.role, awaited: req.litefs?.awaitedTxid ?? null }))
  }
})

const SECRET = 'sixteen chars ok'

for (const flavour of FLAVOURS) {
  const cookieName = flavour === 'serve' ? '__txid' : 'litefs-txid'
  t.test(flavour, async t => {
    t.test('a write answer carries the token in litefs-txid, the cookie\'s value; a read sending it back in the header is held until the replica has it', async t => {
      const { primary, replica } = await pair(t, flavour, { routes })
      const direct = await request(`${primary.url}/items`, { method: 'POST', body: 'x' })
      await direct.body.dump()
      t.equal(direct.statusCode, 201)
      t.equal(direct.headers['litefs-txid'], '000000000000000b', 'the position after the commit')
      t.match(String(direct.headers['set-cookie']), `${cookieName}=000000000000000b;`, 'the cookie says the same')
      const forwarded = await request(`${replica.url}/items`, { method: 'POST', body: 'x' })
      await forwarded.body.dump()
      t.equal(forwarded.headers['litefs-txid'], '000000000000000c', 'a forwarded write brings the primary\'s header back')
      const token = forwarded.headers['litefs-txid'] as string
      const read = request(`${replica.url}/items`, { headers: { 'litefs-txid': token } })
      await until(() => replica.state.waiterCount === 1, 'held by the header alone')
      replica.fake.advance(11n)
      await until(() => replica.state.position('app.db') === 11n)
      t.equal(replica.state.waiterCount, 1, 'still held: 11 < 12')
      replica.fake.advance(12n)
      const res = await read
      t.equal(res.statusCode, 200)
      const body = await res.body.json() as { node: string, awaited: string | null }
      t.equal(body.node, 'replica')
      if (flavour !== 'serve') t.equal(body.awaited, '000000000000000c')
      t.equal(res.headers['litefs-txid'], undefined, 'a read carries no token')
    })

    t.test('cookie and header together, or the header twice: the highest valid TXID counts', async t => {
      const { replica } = await pair(t, flavour, { routes, replica: { readTimeout: 5000 } })
      const read = request(`${replica.url}/items`, { headers: ['cookie', `${cookieName}=0000000000000006`, 'litefs-txid', 'garbage', 'litefs-txid', '0000000000000008, 0000000000000007'] })
      await until(() => replica.state.waiterCount === 1)
      replica.fake.advance(7n)
      await until(() => replica.state.position('app.db') === 7n)
      t.equal(replica.state.waiterCount, 1, 'held for 8, not 6 or 7')
      replica.fake.advance(8n)
      t.equal((await read).statusCode, 200)
    })

    t.test('signed tokens: the header carries the signed value; a forged or unsigned one is no token', async t => {
      const { primary, replica } = await pair(t, flavour, { routes, primary: { secret: SECRET }, replica: { secret: SECRET } })
      const write = await request(`${primary.url}/items`, { method: 'POST', body: 'x' })
      await write.body.dump()
      const token = write.headers['litefs-txid'] as string
      t.match(token, /^000000000000000b\.[A-Za-z0-9_-]{43}$/)
      t.match(String(write.headers['set-cookie']), `${cookieName}=${token};`, 'the signed cookie\'s value')
      for (const forged of ['000000000000000b', `000000000000000c${token.slice(16)}`]) {
        const res = await request(`${replica.url}/items`, { headers: { 'litefs-txid': forged } })
        t.equal(res.statusCode, 200)
        t.equal((await res.body.json() as { awaited: string | null }).awaited, null, `not held: ${forged}`)
      }
      const held = request(`${replica.url}/items`, { headers: { 'litefs-txid': token } })
      await until(() => replica.state.waiterCount === 1, 'the signed token is believed')
      replica.fake.advance(11n)
      t.equal((await held).statusCode, 200)
    })

    t.test('tokenHeader names another header, or false turns it off', async t => {
      const { primary, replica } = await pair(t, flavour, { routes, primary: { tokenHeader: 'X-Consistency-Token' }, replica: { tokenHeader: false, readTimeout: 5000 } })
      const write = await request(`${primary.url}/items`, { method: 'POST', body: 'x' })
      await write.body.dump()
      t.equal(write.headers['x-consistency-token'], '000000000000000b')
      t.equal(write.headers['litefs-txid'], undefined)
      const res = await request(`${replica.url}/items`, { headers: { 'litefs-txid': '0000000000000063' } })
      t.equal(res.statusCode, 200, 'off: the header is not read')
      await res.body.dump()
      const off = await request(`${replica.url}/items`, { method: 'POST', body: 'x' })
      await off.body.dump()
      t.equal(off.headers['x-consistency-token'], '000000000000000c', 'forwarded: the primary\'s own setting decides its answer')
    })

    t.test('tokenHeader false on the primary: the cookie alone', async t => {
      const { primary } = await pair(t, flavour, { routes, primary: { tokenHeader: false } })
      const write = await request(`${primary.url}/items`, { method: 'POST', body: 'x' })
      await write.body.dump()
      t.match(String(write.headers['set-cookie']), `${cookieName}=000000000000000b;`)
      t.equal(write.headers['litefs-txid'], undefined)
    })
  })
}

t.test('requestTxid: every carrier counts, the highest valid TXID wins', async t => {
  const { requestTxid } = await import('../lib/core/token.js')
  const { resolveOptions } = await import('../lib/core/options.js')
  const o = resolveOptions({ db: 'a', peerCookies: ['txnum'] })
  t.equal(requestTxid(o, { cookie: 'litefs-txid=0000000000000009; txnum=5' }), 9n, 'own cookie above the peer\'s')
  t.equal(requestTxid(o, { cookie: 'litefs-txid=0000000000000005; txnum=9' }), 9n, 'the peer\'s above the own cookie')
  t.equal(requestTxid(o, { 'litefs-txid': ['0000000000000003', '000000000000000a'] }), 10n, 'a header given as an array (HTTP/2 may)')
  t.equal(requestTxid(o, {}), undefined)
})
