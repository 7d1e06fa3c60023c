// Writers and readers outside HTTP (lib/core/outside-http.ts): a job's write
// gives a token (tokenAfterWrite) that a client sends back over HTTP, and code
// outside HTTP waits for a token (waitForToken) with a held read's rules and
// codes. On each adapter's core, against the fake LiteFS; test/litefs/ runs
// the same on real LiteFS.
import t from 'tap'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type AdapterName, type Served } from './helpers/apps.js'
import type { LitefsOptions } from '../lib/core/options.js'
import { LitefsHttpError } from '../lib/core/errors.js'

type Test = typeof t

async function node (t: Test, adapter: AdapterName, fakeOpts: Parameters<typeof FakeLitefs.start>[0], opts: Partial<LitefsOptions> = {}): Promise<{ fake: FakeLitefs, served: Served }> {
  const fake = await FakeLitefs.start(fakeOpts)
  const served = await serve(adapter, fake, opts)
  t.teardown(async () => { await served.close(); await fake.close() })
  return { fake, served }
}

async function rejection (p: Promise<unknown>): Promise<any> {
  try { await p } catch (err) { return err }
  throw new Error('resolved')
}

for (const adapter of ADAPTERS) {
  t.test(adapter, async t => {
    t.test("a job's write gives a token; a client sends it back in the header (or the cookie) and a replica holds its read until it has it", async t => {
      const { fake: pfake, served: primary } = await node(t, adapter, { role: 'primary', txid: 5n })
      const { fake: rfake, served: replica } = await node(t, adapter, { role: 'replica', txid: 5n })
      pfake.advance(6n, { event: false }) // the job commits: -pos moves, the event comes later
      const token = await primary.core.tokenAfterWrite()
      t.equal(token, '0000000000000006', 'the position after the job\'s commit')
      const byHeader = request(`${replica.url}/items`, { headers: { 'litefs-txid': token } })
      const byCookie = request(`${replica.url}/items`, { headers: { cookie: `litefs-txid=${token}` } })
      await until(() => replica.state.waiterCount === 2, 'both held')
      const waiting = replica.core.waitForToken(token)
      await until(() => replica.state.waiterCount === 3, 'and the wait outside HTTP')
      t.equal(replica.stats().held, 3, 'counted in stats().held')
      rfake.advance(6n)
      for (const res of [await byHeader, await byCookie]) {
        t.equal(res.statusCode, 200)
        t.equal((await res.body.json() as any).litefs.awaitedTxid, '0000000000000006')
      }
      const done = await waiting
      t.equal(done.txid, '0000000000000006')
      t.type(done.waitedMs, 'number')
      t.equal(replica.state.waiterCount, 0)
    })

    t.test('a wait for a token times out as a held read: LITEFS_READ_TIMEOUT, one log line, counted', async t => {
      const { served } = await node(t, adapter, { role: 'replica', txid: 5n }, { readTimeout: 20 })
      const err = await rejection(served.core.waitForToken('0000000000000009'))
      t.ok(err instanceof LitefsHttpError)
      t.match(err, { status: 504, code: 'LITEFS_READ_TIMEOUT', message: 'replica did not reach TXID 0000000000000009 within 20 ms (at 0000000000000005)' })
      t.equal(err.body, '{"error":"replica did not reach TXID 0000000000000009 within 20 ms (at 0000000000000005)","code":"LITEFS_READ_TIMEOUT"}')
      t.same(served.stats().readTimeouts, { error: 1, primary: 0, stale: 0 })
    })
  })
}

t.test('the rules of a held read, outside HTTP', async t => {
  const adapter: AdapterName = 'http'
  t.test('at once: on the primary, for no token, a malformed or badly signed one, TXID 0, one already reached', async t => {
    const { served: primary } = await node(t, adapter, { role: 'primary', txid: 5n })
    const onPrimary = await primary.core.waitForToken('00000000000000ff')
    t.equal(onPrimary.txid, '00000000000000ff', 'the primary has every transaction there is')
    t.equal(onPrimary.unreachable, undefined)
    t.equal(primary.state.waiterCount, 0)
    const { served } = await node(t, adapter, { role: 'replica', txid: 5n }, { secret: 'a secret of 16 chars' })
    for (const token of [undefined, null, '', 'nonsense', '0000000000000009', '0000000000000009.forged', '0000000000000000']) {
      t.same(await served.core.waitForToken(token), { waitedMs: 0 }, `no wait for ${String(token)}`)
    }
    t.same(await served.core.waitForToken(undefined, null), { waitedMs: 0 }, 'options null: none')
    // Not a string: the caller's mistake, said as one (a job passing a row's number, an object).
    for (const [token, got] of [[42, 'number 42'], [9n, 'bigint 9'], [{ txid: '01' }, 'an object'], [['01'], 'an array'], [true, 'boolean true']] as const) {
      await t.rejects(served.core.waitForToken(token as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: `litefs-proxy: waitForToken(token): the token must be a string (a write's cookie or token header value), or null or undefined for none; got ${got}` })
    }
    t.equal(served.state.waiterCount, 0)
    // A signal that is none (the controller itself, the usual slip): refused at once, nothing left registered.
    // It used to reject with an internal message, and crash the process when its wait timed out.
    for (const [signal, got] of [[new AbortController(), 'an object (AbortController)'], [{}, 'an object (Object)'], [Object.create(null), 'an object (no prototype)'], ['abort', 'string abort'], [null, 'object null']] as const) {
      await t.rejects(served.core.waitForToken('0000000000000009', { signal: signal as never }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: `litefs-proxy: waitForToken(token, { signal }): signal must be an AbortSignal (controller.signal, AbortSignal.timeout(ms)); got ${got}` })
    }
    t.equal(served.state.waiterCount, 0, 'no wait left behind')
    t.equal(served.stats().held, 0)
    const { served: signer } = await node(t, adapter, { role: 'primary', txid: 4n }, { secret: 'a secret of 16 chars' })
    const signed = await signer.core.tokenAfterWrite()
    t.match(signed, /^0000000000000004\.[A-Za-z0-9_-]{43}$/, 'signed as the cookie')
    t.equal((await served.core.waitForToken(signed)).txid, '0000000000000004', 'a signed token already reached')
  })

  t.test('a token naming a database this app does not track: said once (LITEFS_TOKEN_DB), as over HTTP; waited for its own alone', async t => {
    for (const db of ['app.db', ['app.db', 'cache.db']]) {
      const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
      const at = (obj: Record<string, unknown>, msg: string): void => { lines.push({ obj, msg }) }
      const logger = { debug: () => {}, info: at, warn: at, error: at }
      const { fake, served } = await node(t, adapter, { role: 'replica', txid: 5n }, { db, logger } as Partial<LitefsOptions>)
      t.same(await served.core.waitForToken('x.db:00000000000000ff'), { waitedMs: 0 }, `${String(db)}: nothing of its own to wait for`)
      t.same(await served.core.waitForToken('x.db:00000000000000fe'), { waitedMs: 0 })
      const said = lines.filter(l => l.obj.code === 'LITEFS_TOKEN_DB')
      t.equal(said.length, 1, 'said once')
      t.match(said[0], { obj: { db: 'x.db' }, msg: /a token names the database "x\.db", which this app does not track \(db: app\.db/ })
      const res = await request(`${served.url}/items`, { headers: { 'litefs-txid': 'x.db:00000000000000ff' } })
      t.equal(res.statusCode, 200)
      await res.body.dump()
      t.equal(lines.filter(l => l.obj.code === 'LITEFS_TOKEN_DB').length, 1, 'the same warning over HTTP: still once')
      const waiting = served.core.waitForToken('x.db:00000000000000ff|app.db:0000000000000006')
      await until(() => served.state.waiterCount === 1, 'held for app.db alone')
      fake.advance(6n)
      t.equal((await waiting).txid, '0000000000000006')
    }
  })

  t.test('the position is re-read from -pos before holding (an event not yet arrived), and a database without -pos waits', async t => {
    const { fake, served } = await node(t, adapter, { role: 'replica', txid: 5n })
    fake.advance(6n, { event: false })
    t.equal((await served.core.waitForToken('0000000000000006')).txid, '0000000000000006', 'served from -pos at once')
    t.equal(served.state.waiterCount, 0)
    const { fake: empty, served: none } = await node(t, adapter, { role: 'replica', txid: 0n })
    const waiting = none.core.waitForToken('0000000000000001')
    await until(() => none.state.waiterCount === 1, 'held: no -pos yet')
    empty.advance(1n)
    t.equal((await waiting).txid, '0000000000000001')
  })

  t.test("readTimeoutAction 'stale': goes on, marked stale; 'primary' cannot forward code: 504", async t => {
    const { served } = await node(t, adapter, { role: 'replica', txid: 5n }, { readTimeout: 20, readTimeoutAction: 'stale' })
    const r = await served.core.waitForToken('0000000000000009')
    t.equal(r.stale, true)
    t.same(served.stats().readTimeouts, { error: 0, primary: 0, stale: 1 })
    const { served: p } = await node(t, adapter, { role: 'replica', txid: 5n }, { readTimeout: 20, readTimeoutAction: 'primary' })
    t.match(await rejection(p.core.waitForToken('0000000000000009')), { code: 'LITEFS_READ_TIMEOUT' })
  })

  t.test('an AbortSignal ends the wait with its reason; closing the app ends it with LITEFS_CLOSED; maxWaiting', async t => {
    const { served } = await node(t, adapter, { role: 'replica', txid: 5n })
    const ac = new AbortController()
    const aborted = rejection(served.core.waitForToken('0000000000000009', { signal: ac.signal }))
    await until(() => served.state.waiterCount === 1)
    ac.abort(new Error('job cancelled'))
    t.match(await aborted, { message: 'job cancelled' })
    t.equal(served.state.waiterCount, 0, 'the waiter is gone')
    t.match(await rejection(served.core.waitForToken('0000000000000009', { signal: AbortSignal.abort('before') })), 'before', 'already aborted: not held')
    const closing = rejection(served.core.waitForToken('0000000000000009'))
    await until(() => served.state.waiterCount === 1)
    served.core.drain() // what close() does first
    t.match(await closing, { status: 503, code: 'LITEFS_CLOSED' })
    t.match(await rejection(served.core.waitForToken('0000000000000009')), { code: 'LITEFS_CLOSED' }, 'closed: nothing more is held')
    const { served: full } = await node(t, adapter, { role: 'replica', txid: 5n }, { maxWaiting: 0 })
    t.match(await rejection(full.core.waitForToken('0000000000000009')), { status: 503, code: 'LITEFS_OVERLOADED' })
  })

  t.test('a dead mount: the wait holds for LiteFS to come back, then for the position; or LITEFS_UNAVAILABLE', async t => {
    const { fake, served } = await node(t, adapter, { role: 'replica', txid: 5n }, { readTimeout: 2000 })
    await fake.stop()
    await until(() => served.state.litefs === 'down', 'LiteFS gone')
    const token = served.core.tokenAfterWrite()
    const waiting = served.core.waitForToken('0000000000000006')
    await until(() => served.state.waiterCount === 2, 'the token and the wait held for LiteFS')
    await fake.restart()
    await until(() => served.state.litefs === 'up')
    t.equal(await token, '0000000000000005', 'the token once LiteFS answers again')
    fake.advance(6n)
    t.equal((await waiting).txid, '0000000000000006')
    const { fake: gone, served: other } = await node(t, adapter, { role: 'replica', txid: 5n }, { readTimeout: 20 })
    await gone.stop()
    await until(() => other.state.litefs === 'down')
    t.match(await rejection(other.core.tokenAfterWrite()), { status: 503, code: 'LITEFS_UNAVAILABLE', message: "LiteFS on this node did not answer within 20 ms (down); the write's outcome is unknown" }, 'no token from a mount dead for readTimeout')
    t.match(await rejection(other.core.waitForToken('0000000000000006')), { status: 503, code: 'LITEFS_UNAVAILABLE' })
    const closingToken = rejection(other.core.tokenAfterWrite())
    const closing = rejection(other.core.waitForToken('0000000000000006'))
    await until(() => other.state.waiterCount === 2)
    other.core.drain()
    t.match(await closingToken, { code: 'LITEFS_CLOSED' }, 'closed while the token waited for LiteFS')
    t.match(await closing, { code: 'LITEFS_CLOSED' }, 'closed while held for the mount')
  })

  t.test("a job's token as its process starts, before LiteFS's event stream is subscribed: waited for, not refused (was LITEFS_UNAVAILABLE (stream-lost))", async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
    await fake.stopApi() // the mount answers; the stream is not there yet
    const served = await serve(adapter, fake)
    t.teardown(async () => { await served.close(); await fake.close() })
    t.equal(served.state.litefs, 'stream-lost', 'not up yet')
    fake.advance(7n, { event: false }) // the job's commit
    const token = served.core.tokenAfterWrite()
    await until(() => served.state.waiterCount === 1, 'the token waits for LiteFS')
    await fake.startApi()
    t.equal(await token, '0000000000000007', 'the position after the commit, once LiteFS is up')
    t.equal(served.state.litefs, 'up')
  })

  t.test('a wait over as it starts (the state answers at once) holds nothing and counts nothing as held', async t => {
    const { waitOutside } = await import('../lib/core/hold.js')
    const { served } = await node(t, adapter, { role: 'replica', txid: 5n })
    const ctx = (served.core as unknown as { ctx: Parameters<typeof waitOutside>[0] }).ctx
    const result = await waitOutside(ctx, 'position', '0000000000000005', undefined, done => served.state.waitForPosition('app.db', 5n, 1000, done))
    t.equal(result, 'ready')
    t.equal(served.stats().held, 0)
    t.equal(ctx.lifecycle.outside.size, 0)
  })

  t.test('no position for the database: LITEFS_NO_POSITION', async t => {
    const { served } = await node(t, adapter, { role: 'primary', txid: 0n })
    t.match(await rejection(served.core.tokenAfterWrite()), { status: 500, code: 'LITEFS_NO_POSITION' })
  })

  t.test('a token the primary is behind: going on at once, as a read is served (once a held read told the probe its port)', async t => {
    const { served: primary } = await node(t, adapter, { role: 'primary', txid: 5n })
    const { served } = await node(t, adapter, { role: 'replica', txid: 3n }, { primaryUrl: () => primary.url })
    const read = await request(`${served.url}/items`, { headers: { 'litefs-txid': '0000000000000063' } })
    t.equal((await read.body.json() as any).litefs.unreachable, true, 'a held read, served as the primary would')
    const r = await served.core.waitForToken('0000000000000064')
    t.equal(r.unreachable, true)
  })
})
