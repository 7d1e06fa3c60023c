// Several databases per mount (issue 22.1; lib/core/databases.ts,
// positions-token.ts, positions-read.ts): option `db` as a list or '*', a
// write's token naming every tracked database's position, a read held until
// each database it names has caught up, single-database tokens still valid,
// health per database. The codec and the option checks directly; the
// behaviour through real sockets in each adapter and `serve`, on fake LiteFS
// nodes whose mount holds several `-pos` files.
import t from 'tap'
import { request } from 'undici'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until, type FakeLitefs } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'
import { MAX_DATABASES, MAX_NAME, resolveDatabases } from '../lib/core/databases.js'
import { addPosition, positionsToken, readPositions, type Positions } from '../lib/core/positions-token.js'
import { resolveOptions } from '../lib/core/options.js'
import { requestPositions } from '../lib/core/token.js'

const hex = (n: bigint): string => n.toString(16).padStart(16, '0')
const SECRET = 'sixteen chars ok'
const plain = { name: 'litefs-txid', maxAge: 300, secrets: [] }
const signed = { ...plain, secrets: [SECRET] }

t.test('option db: a name, a list (the first is the main one), or "*" alone or last', async t => {
  t.same(resolveDatabases('app.db'), { main: 'app.db', named: ['app.db'], all: false })
  t.same(resolveDatabases(['app.db', 'cache.db']), { main: 'app.db', named: ['app.db', 'cache.db'], all: false })
  t.same(resolveDatabases('*'), { main: undefined, named: [], all: true })
  t.same(resolveDatabases(['app.db', '*']), { main: 'app.db', named: ['app.db'], all: true })
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /option "db" is missing/],
    [[], /option "db" must be .*got \[\]/],
    [[1], /option "db" must be/],
    [['*', 'app.db'], /"\*" may only come last/],
    [['a/b.db'], /each a file name of at most 100/],
    [['x'.repeat(MAX_NAME + 1)], /each a file name/],
    [['a.db', 'a.db'], /each named once/],
    ['app.db,cache.db', /a list is an array \(\["app.db", "cache.db"\]\), not one name with commas/], // serve's --db, copied
    [['app.db', 'cache.db,queue.db'], /a list is an array/],
    [['app.db', ' cache.db'], /a name has no spaces around it/],
    ['app.db\n', /a name has no spaces around it/],
    [Array.from({ length: MAX_DATABASES + 1 }, (_, i) => `d${i}.db`), /a token names at most 16/]
  ]
  for (const [raw, message] of bad) t.throws(() => resolveDatabases(raw), { code: 'LITEFS_BAD_OPTION', message }, JSON.stringify(raw))
  t.throws(() => resolveOptions({ db: '*', peerSecret: 'sixteen chars ok!' }), { message: /"peerSecret" .* follows the main database: name it first/ })
  t.equal(resolveOptions({ db: ['a.db', 'b.db'] }).db, 'a.db')
})

t.test('the token: 16 hex digits for the main database alone, else name:TXID entries; signed as a single TXID', async t => {
  const one: Positions = new Map([['app.db', 42n]])
  t.equal(positionsToken(plain, one, 'app.db'), hex(42n), 'the main database alone: as before')
  const two: Positions = new Map([['app.db', 42n], ['cache db|:,;.db', 7n]])
  const token = positionsToken(plain, two, 'app.db')
  t.equal(token, `app.db:${hex(42n)}|cache%20db%7C%3A%2C%3B.db:${hex(7n)}`, 'names percent-encoded: no separator survives')
  t.same(readPositions(plain, token, 'app.db'), two)
  t.equal(positionsToken(plain, new Map([['cache.db', 7n]]), 'app.db'), `cache.db:${hex(7n)}`, 'another database alone is named')
  t.same(readPositions(plain, hex(9n), 'app.db'), new Map([['app.db', 9n]]), 'a single-database token is the main database\'s')
  t.equal(readPositions(plain, hex(9n), undefined), undefined, "'*' alone: no main database to give it to")
  const sig = positionsToken(signed, two, 'app.db')
  t.match(sig, /^app\.db:.*\.[A-Za-z0-9_-]{43}$/)
  t.same(readPositions(signed, sig, 'app.db'), two, 'signed over the whole payload')
  t.equal(readPositions(signed, token, 'app.db'), undefined, 'unsigned, where a secret is set')
  t.equal(readPositions(signed, sig.replace(hex(7n), hex(8n)), 'app.db'), undefined, 'altered')
  t.equal(readPositions(signed, 'nodot', 'app.db'), undefined)
  for (const malformed of ['', 'app.db', `:${hex(1n)}`, `app.db:${hex(1n)}|`, `%E0%A4%A:${hex(1n)}`, `a%2Fb:${hex(1n)}`,
    Array.from({ length: MAX_DATABASES + 1 }, (_, i) => `d${i}:${hex(1n)}`).join('|')]) {
    t.equal(readPositions(plain, malformed, 'app.db'), undefined, `malformed: ${malformed.slice(0, 40)}`)
  }
  t.same(readPositions(plain, `a:${hex(3n)}|a:${hex(5n)}|a:${hex(4n)}`, undefined), new Map([['a', 5n]]), 'a database named twice: its highest')
  const { readToken } = await import('../lib/core/cookie.js')
  t.equal(readToken(signed, ` ${positionsToken(signed, one, 'app.db')} `), 42n, 'readToken (exported): one TXID, signed')
  const p: Positions = new Map()
  addPosition(p, 'a', 5n)
  addPosition(p, 'a', 3n)
  t.same(p, new Map([['a', 5n]]))
})

t.test('requestPositions: cookies, peers\' cookies and the header merge, database by database, the highest of each', async t => {
  const o = resolveOptions({ db: ['app.db', 'cache.db'], peerCookies: ['txnum'] })
  t.same(requestPositions(o, {
    cookie: `litefs-txid=app.db:${hex(3n)}|cache.db:${hex(9n)}; txnum=5; litefs-txid=${hex(4n)}`,
    'litefs-txid': `cache.db:${hex(8n)}, garbage`
  }), new Map([['app.db', 5n], ['cache.db', 9n]]))
  t.equal(requestPositions(o, {}), undefined)
  t.same(requestPositions(o, { cookie: `litefs-txid=${encodeURIComponent(`app.db:${hex(3n)}|cache.db:${hex(9n)}`)}` }), new Map([['app.db', 3n], ['cache.db', 9n]]),
    'a cookie value the client percent-encoded is read decoded')
  const named = resolveOptions({ db: ['app.db', 'cache db.db'] })
  t.same(requestPositions(named, { cookie: `litefs-txid=${encodeURIComponent(`cache%20db.db:${hex(4n)}`)}` }), new Map([['cache db.db', 4n]]),
    'decoded once: a name\'s own encoding inside the token is decoded by the token alone')
  t.same(requestPositions(named, { cookie: `litefs-txid=cache%20db.db:${hex(4n)}` }), new Map([['cache db.db', 4n]]), 'as written: not decoded twice')
  t.same(requestPositions(resolveOptions({ db: 'app.db' }), { cookie: `litefs-txid=${'%30'.repeat(15)}%37` }), new Map([['app.db', 7n]]), 'a bare TXID encoded')
  for (const bad of ['%E0%A4%A', '%zz', `app.db%3A${hex(3n)}%`]) t.equal(requestPositions(o, { cookie: `litefs-txid=${bad}` }), undefined, `malformed encoding: no token (${bad})`)
  t.equal(requestPositions(o, { 'litefs-txid': encodeURIComponent(`cache.db:${hex(8n)}`) }), undefined, 'the header is not cookie-encoded: taken as it is')
  const star = resolveOptions({ db: '*', peerCookies: ['txnum'], tokenHeader: false })
  t.equal(requestPositions(star, { cookie: `txnum=5; litefs-txid=${hex(4n)}`, 'litefs-txid': `a.db:${hex(1n)}` }), undefined, "'*' alone: bare TXIDs and peers' cookies name no database; the header is off")
})

/** Routes on one fake node: POST /cache commits to cache.db only; GET /items says what the read waited for. */
const routes = (fake: FakeLitefs): Record<string, Handler> => {
  let cache = 0n
  return {
    'POST /cache': (req, res) => {
      const commit = (): void => {
        fake.advanceDb('cache.db', ++cache, { event: false }) // the handler's commit, to the second database
        res.writeHead(201, { 'content-type': 'application/json' }).end('{}')
      }
      if (req.readableEnded) commit()
      else req.resume().on('end', commit)
    },
    'POST /queue': (req, res) => {
      const commit = (): void => {
        fake.advanceDb('queue.db', 3n, { event: false }) // a database the app creates now, before LiteFS's stream reports it
        res.writeHead(201, { 'content-type': 'application/json' }).end('{}')
      }
      if (req.readableEnded) commit()
      else req.resume().on('end', commit)
    },
    'GET /items': (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ awaited: req.litefs?.awaitedTxid ?? null, db: req.litefs?.awaitedDb ?? null }))
    }
  }
}

const TWO = { db: ['app.db', 'cache.db'] }

for (const flavour of FLAVOURS) {
  const cookieName = flavour === 'serve' ? '__txid' : 'litefs-txid'
  t.test(flavour, async t => {
    t.test('a write to the second database: its token names both positions; a read is held until each has caught up', async t => {
      const { primary, replica } = await pair(t, flavour, { routes, primary: TWO, replica: TWO })
      const write = await request(`${primary.url}/cache`, { method: 'POST', body: 'x' })
      await write.body.dump()
      t.equal(write.statusCode, 201)
      const token = `app.db:${hex(10n)}|cache.db:${hex(1n)}`
      t.equal(write.headers['litefs-txid'], token, 'every tracked database, after the handler\'s commit')
      t.match(String(write.headers['set-cookie']), `${cookieName}=${token};`, 'the cookie says the same')
      const forwarded = await request(`${replica.url}/cache`, { method: 'POST', body: 'x' })
      await forwarded.body.dump()
      t.equal(forwarded.headers['litefs-txid'], `app.db:${hex(10n)}|cache.db:${hex(2n)}`, 'forwarded: the primary\'s token comes back')
      const read = request(`${replica.url}/items`, { headers: { cookie: `${cookieName}=${forwarded.headers['litefs-txid'] as string}` } })
      await until(() => replica.state.waiterCount === 1, 'held for app.db')
      replica.fake.advance(10n)
      await until(() => replica.state.position('app.db') === 10n)
      await until(() => replica.state.awaits('cache.db'), 'then held for cache.db')
      t.equal(replica.state.waiterCount, 1, 'still held: cache.db is behind')
      replica.fake.advanceDb('cache.db', 1n)
      await until(() => replica.state.position('cache.db') === 1n)
      t.equal(replica.state.waiterCount, 1, 'still held: 1 < 2')
      replica.fake.advanceDb('cache.db', 2n)
      const res = await read
      t.equal(res.statusCode, 200)
      const body = await res.body.json() as { awaited: string | null, db: string | null }
      if (flavour !== 'serve') t.same(body, { awaited: hex(2n), db: 'cache.db' }, 'req.litefs says what it waited for last')
      const health = await request(`${replica.url}/litefs/health`)
      const report = await health.body.json() as { txid: string, databases: Record<string, string> }
      t.same(report.databases, { 'app.db': hex(10n), 'cache.db': hex(2n) }, 'health reports each database')
      t.equal(report.txid, hex(10n), 'and the main database as before')
    })

    t.test('a single-database token from before is the main database\'s; a database not tracked is ignored, said once', async t => {
      const { replica } = await pair(t, flavour, { routes, replica: { ...TWO, readTimeout: 5000 } })
      const read = request(`${replica.url}/items`, { headers: { 'litefs-txid': hex(7n) } })
      await until(() => replica.state.awaits('app.db'), 'held for the main database')
      replica.fake.advance(7n)
      const held = await read
      t.equal(held.statusCode, 200)
      if (flavour !== 'serve') t.same(await held.body.json(), { awaited: hex(7n), db: 'app.db' }, 'req.litefs names the main database it was held for')
      else await held.body.dump()
      const other = await request(`${replica.url}/items`, { headers: { 'litefs-txid': `other.db:${hex(99n)}|app.db:${hex(7n)}` } })
      t.equal(other.statusCode, 200, 'served at once: app.db is there, other.db is not tracked here')
      await other.body.dump()
      if (flavour === 'serve') t.match(replica.lines.join('\n'), /a token names the database .{1,2}other\.db.*LITEFS_TOKEN_DB/, 'said in the log')
    })

    t.test("'*': every database in the mount, and one the handler creates (found by listing the mount beside the -pos reads)", async t => {
      const { primary, replica } = await pair(t, flavour, { routes, primary: { db: ['app.db', '*'] }, replica: { db: '*', readTimeout: 5000 } })
      primary.fake.advanceDb('cache.db', 4n, { event: false })
      const write = await request(`${primary.url}/queue`, { method: 'POST', body: 'x' })
      await write.body.dump()
      const token = write.headers['litefs-txid'] as string
      t.match(token, /^app\.db:000000000000000a\|/, 'the main database first')
      t.same(new Set(token.split('|')), new Set([`app.db:${hex(10n)}`, `cache.db:${hex(4n)}`, `queue.db:${hex(3n)}`]), 'and every other one')
      const read = request(`${replica.url}/items`, { headers: { 'litefs-txid': token } })
      await until(() => replica.state.waiterCount === 1, 'held')
      replica.fake.advance(10n)
      replica.fake.advanceDb('cache.db', 4n)
      await until(() => replica.state.awaits('queue.db'), 'held for the new database')
      replica.fake.advanceDb('queue.db', 3n)
      t.equal((await read).statusCode, 200)
    })
  })
}
