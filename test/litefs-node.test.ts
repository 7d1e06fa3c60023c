import t from 'tap'
import { mkdirSync, readdirSync, readlinkSync, writeFileSync, rmSync } from 'node:fs'
import { IDLE_MS, mountFiles } from '../lib/core/mount-files.js'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { openLitefsNode } from '../lib/core/litefs-node.js'
import { STALL_MS } from '../lib/core/loop-stall.js'
import { performance } from 'node:perf_hooks'
import { acquireLitefsNode } from '../lib/core/shared-node.js'
import type { NodeState, WaitResult } from '../lib/core/node-state.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'

const log = { debug () {}, info () {}, warn () {}, error () {} }
const open = (fake: FakeLitefs, api: string | false = fake.apiUrl, role?: 'primary' | 'replica'): NodeState =>
  openLitefsNode({ mount: fake.mount, api, role, databases: ['app.db'], pollInterval: 1, log })
const streaming = (s: NodeState): boolean => (s.driver as unknown as { streaming: boolean }).streaming

t.test('the /events stream drives role and positions', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  const s = open(fake)
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s), 'subscribed')
  t.equal(s.role, 'replica')
  await until(() => s.primaryHostname === 'node-a', 'confirmed by a fresh .lag')
  t.equal(s.position('app.db'), 5n, '-pos read once after subscribing (init carries no position)')
  fake.advance(6n, { file: false })
  await until(() => s.position('app.db') === 6n, 'tx event')
  fake.becomeReplica('node-a') // named again while already confirmed: nothing changes
  t.equal(s.primaryHostname, 'node-a')
  fake.losePrimary()
  await until(() => s.primaryHostname === undefined, 'primary lost')
  t.equal(s.role, 'replica', 'a replica without a primary is still a replica, not a primary')
  t.equal(s.primaryKnown, false)
  fake.becomeReplica('node-c')
  await until(() => s.primaryHostname === 'node-c')
  fake.becomePrimary()
  await until(() => s.role === 'primary')
  t.equal(s.readLag(), 0)
})

t.test('garbage on the stream is skipped; the stream goes on', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 1n })
  const s = open(fake)
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s))
  fake.send('garbage\n\n[1,2]\nnull\n{"type":"tx"}\n{"type":"tx","db":"app.db","data":{"txID":"zz"}}\n{"type":"tx","db":7,"data":{}}\n')
  fake.send('{"type":"tx","db":"app.db","data":{"txID":-1}}\n{"type":"other","data":{}}\n')
  fake.send('{"type":"tx","db":"app.db","data":{"txID":3}}\n') // a JSON number, tolerated
  await until(() => s.position('app.db') === 3n)
  fake.send('{"type":"tx","db":"app.db","da') // a line in two pieces
  fake.send('ta":{"txID":"0000000000000004"}}\n')
  await until(() => s.position('app.db') === 4n)
  t.equal(streaming(s), true, 'still on the same stream')
  t.equal(fake.requests, 1, 'never resubscribed')
})

t.test('a stream cut mid-line, then the API gone: polling takes over, and the stream comes back', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 1n })
  const s = open(fake)
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s))
  fake.advance(8n, { event: false })
  fake.cutMidLine(8n)
  await until(() => fake.requests === 2 && streaming(s), 'resubscribed')
  t.equal(s.position('app.db'), 8n, 'the half line is dropped; the position is re-read on resubscribing')

  fake.endStreams() // LiteFS stopping: the stream just ends
  await until(() => fake.requests === 3 && streaming(s), 'resubscribed after a clean end')

  await fake.stopApi()
  await until(() => !streaming(s), 'stream lost')
  const got: WaitResult[] = []
  s.waitForPosition('app.db', 9n, 60_000, r => got.push(r))
  fake.advance(9n, { event: false })
  await until(() => got.length === 1, 'released by polling')
  t.same(got, ['ready'])

  await fake.startApi()
  await until(() => streaming(s), 'back on the stream')
  fake.advance(10n, { file: false })
  await until(() => s.position('app.db') === 10n, 'events again')
})

t.test('an API that answers an error, or a line without end, is not trusted', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 2n, api: false })
  let mode: 'error' | 'flood' = 'error'
  let asked = 0
  const server = createServer((_req, res) => {
    asked++
    if (mode === 'error') { res.writeHead(500).end('nope'); return }
    res.writeHead(200)
    res.write('{"type":"init","data":{"isPrimary":false,"hostname":"node-a"}}\n')
    res.write('x'.repeat(1_100_000))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const s = open(fake, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(async () => { await s.close(); server.closeAllConnections(); server.close(); await fake.close() })
  await until(() => asked === 2, 'asked twice, refused twice')
  t.equal(s.litefs, 'stream-lost', 'the mount answers, the API does not')
  t.equal(s.role, 'unknown', 'no role is believed without the API')
  t.equal(s.primaryKnown, false)
  t.equal(streaming(s), false)
  mode = 'flood'
  await until(() => streaming(s), 'subscribed')
  await until(() => !streaming(s), 'an endless line drops the connection')
  const before = asked
  await until(() => asked > before, 'and it subscribes again')
})

t.test('files only: role from .primary, or from the role option, while the mount answers', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 3n, api: false })
  const s = open(fake, false)
  t.teardown(async () => { await s.close(); await fake.close() })
  t.equal(s.litefs, 'up', 'the mount answers')
  t.equal(s.role, 'replica')
  await until(() => s.primaryHostname === 'node-a', 'a fresh .lag (829 ms) at the first look: connected')
  t.equal(s.position('app.db'), 3n)
  t.equal(s.readLag(), 829)
  writeFileSync(join(fake.mount, '.lag'), 'garbage')
  t.equal(s.readLag(), undefined)
  fake.setLag(829)
  t.equal(mountFiles(join(fake.mount, 'nowhere')).readLag(), undefined, 'no .lag at all')
  const odd = join(fake.mount, 'odd')
  mkdirSync(join(odd, '.lag'), { recursive: true }) // opens, then cannot be read (EISDIR; EIO or ENOTCONN from a LiteFS going away)
  t.equal(mountFiles(odd).readLag(), undefined, 'a .lag that opens but cannot be read')
  t.equal(mountFiles(odd).live(), false)
  // The same off the event loop (the health route's read).
  t.equal(await mountFiles(fake.mount).readLagAsync(), 829)
  t.equal(await mountFiles(join(fake.mount, 'nowhere')).readLagAsync(), undefined, 'no .lag at all, read asynchronously')
  t.equal(await mountFiles(odd).readLagAsync(), undefined, 'a .lag that opens but cannot be read, read asynchronously')

  rmSync(join(fake.mount, '.primary'))
  s.refresh()
  t.equal(s.role, 'unknown', 'no .primary, no role option: a primary or a cut-off replica, the files cannot tell')
  t.equal(s.primaryKnown, false)
  const got: WaitResult[] = []
  s.waitForPrimary(60_000, r => got.push(r))
  writeFileSync(join(fake.mount, '.primary'), 'node-b\n')
  await until(() => got.length === 1, 'primary found by polling .primary, once .lag shows contact')
  t.equal(s.primaryHostname, 'node-b')

  const fresh = await FakeLitefs.start({ role: 'primary', txid: 1n, api: false })
  const unknown = open(fresh, false)
  const primary = open(fresh, false, 'primary')
  t.teardown(async () => { await unknown.close(); await primary.close(); await fresh.close() })
  t.equal(unknown.role, 'unknown', 'no .primary and no API: the files cannot tell')
  t.equal(primary.role, 'primary', 'the role option says it')
  writeFileSync(join(fresh.mount, '.primary'), 'node-z\n')
  primary.refresh()
  t.equal(primary.role, 'replica', '.primary present always means replica')
  rmSync(join(fresh.mount, '.primary'))
  primary.refresh()
  t.equal(primary.role, 'primary')

  await fresh.stop() // LiteFS goes away: the mount is a plain directory
  primary.refresh()
  t.equal(primary.litefs, 'down')
  t.equal(primary.role, 'unknown', 'the role option never outlives the mount')
  t.equal(primary.readPosition('app.db'), undefined)
  await fresh.restart()
  primary.refresh()
  t.equal(primary.litefs, 'up')
  t.equal(primary.role, 'primary')
})

t.test('a primary whose LiteFS goes away is no longer primary; it is again once LiteFS is back', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  const s = openLitefsNode({ mount: fake.mount, api: fake.apiUrl, databases: ['app.db'], pollInterval: 1 })
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s) && s.role === 'primary')
  t.equal(s.readPosition('app.db'), 1n)
  await fake.stopApi() // the API alone: the mount still answers
  await until(() => !streaming(s))
  t.equal(s.litefs, 'stream-lost')
  t.equal(s.role, 'unknown', 'a primary is primary only while LiteFS says so now')
  s.refresh()
  t.equal(s.role, 'unknown', 'the files cannot make it primary again')
  await fake.startApi()
  await until(() => s.role === 'primary', 'back on the stream')
  await fake.stop()
  await until(() => s.litefs === 'down', 'mount gone')
  t.equal(s.readPosition('app.db'), undefined, 'no kept fd answers for a mount that is gone')
  fake.txid = 4n
  await fake.restart()
  await until(() => s.litefs === 'up' && s.role === 'primary')
  t.equal(s.position('app.db'), 4n, 'positions read again from the new mount')
})

t.test('before the database exists there is no -pos file: no position', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', api: false })
  const s = open(fake, false)
  t.teardown(async () => { await s.close(); await fake.close() })
  t.equal(s.readPosition('app.db'), undefined)
  t.equal(s.position('app.db'), 0n)
  const got: WaitResult[] = []
  s.waitForPosition('app.db', 1n, 60_000, r => got.push(r))
  await new Promise(resolve => setTimeout(resolve, 5)) // polls meet a missing file first (not a timing assertion)
  fake.advance(1n, { event: false })
  await until(() => got.length === 1, 'the database appears')
})

t.test('while streaming, refresh reads no file', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  const s = open(fake)
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s) && s.role === 'primary')
  writeFileSync(join(fake.mount, '.primary'), 'node-z\n')
  s.refresh()
  t.equal(s.role, 'primary', 'the API is the authority while it streams')
})

t.test('one shared state per mount, closed with its last user', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 4n })
  t.teardown(async () => { await fake.close() })
  const opts = { mount: fake.mount, api: fake.apiUrl, databases: ['app.db'], pollInterval: 1, log }
  const a = acquireLitefsNode(opts)
  const b = acquireLitefsNode({ ...opts, databases: ['other.db'] })
  t.equal(a.state, b.state)
  await a.release()
  await a.release() // twice: counted once
  let closed: WaitResult | undefined
  b.state.waitForPosition('app.db', 99n, 60_000, r => { closed = r })
  t.equal(closed, undefined, 'still open while b holds it')
  await b.release()
  t.equal(closed, 'closed')
  const c = acquireLitefsNode(opts)
  t.not(c.state, a.state, 'a new state after the last release')
  await c.release()
})

t.test('-pos through a kept fd: read with pread, dropped when unreadable, closed on request', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  const files = mountFiles(fake.mount)
  files.keep(true)
  t.equal(files.readPosition('app.db'), 2n)
  fake.advance(3n, { event: false }) // rewritten in place: the same file, a new content
  t.equal(files.readPosition('app.db'), 3n, 'the kept fd sees the new content')
  t.equal(files.readPosition('none.db'), undefined, 'no database yet: nothing kept, tried again next time')
  // A -pos that cannot be read (here a directory: EISDIR; on a dead mount ENOTCONN):
  // the kept fd is dropped and a fresh read tried, which fails too.
  mkdirSync(join(fake.mount, 'odd.db-pos'))
  t.equal(files.readPosition('odd.db'), undefined)
  t.equal(files.readPosition('odd.db'), undefined, 'and again, from scratch')
  files.keep(false)
  fake.advance(4n, { event: false })
  t.equal(files.readPosition('app.db'), 4n, 'fresh reads once no longer kept')
  t.equal(files.live(), true)
  await fake.stop()
  t.equal(files.live(), false, 'no .lag: not a live LiteFS mount')
})

t.test('an app started while its LiteFS is down waits for it', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  await fake.stop()
  const s = open(fake)
  t.teardown(async () => { await s.close(); await fake.close() })
  t.equal(s.litefs, 'down', 'the mount does not answer: down from the start')
  await until(() => !streaming(s) && fake.requests === 0)
  await fake.restart()
  await until(() => s.litefs === 'up' && s.role === 'primary')
  t.equal(s.position('app.db'), 3n)
})

t.test('a dead mount stays down through failed reconnects, and is up again with LiteFS', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 3n })
  const s = open(fake)
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s))
  await fake.stop()
  await until(() => s.litefs === 'down', 'probed after the loss')
  const got: WaitResult[] = []
  s.waitForMount(60_000, r => got.push(r))
  await new Promise(resolve => setTimeout(resolve, 400)) // reconnects at 50, 100, 200 ms all refused (not a timing assertion)
  t.equal(s.litefs, 'down', 'a refused reconnect says nothing about the mount')
  t.same(got, [], 'the held read is still held')
  await fake.restart()
  await until(() => got.length === 1)
  t.same(got, ['ready'])
})

t.test('a kept -pos fd is closed once idle, so it never blocks an unmount', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  const files = mountFiles(fake.mount)
  const open = (): boolean => readdirSync('/proc/self/fd').some(fd => {
    try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith(fake.mount) } catch { return false }
  })
  files.keep(true)
  t.equal(files.readPosition('app.db'), 2n)
  t.equal(open(), true, 'kept')
  await new Promise(resolve => setTimeout(resolve, IDLE_MS / 2))
  t.equal(files.readPosition('app.db'), 2n, 'used again within the idle time: stays open past the first check')
  await until(() => !open(), 'closed once idle')
  t.equal(files.readPosition('app.db'), 2n, 'and reopened when read again')
  t.equal(open(), true)
  files.keep(false)
  await until(() => !open(), 'closed at once when no longer kept')
})

t.test('the databases LiteFS has, from the -pos files; none when the mount cannot be listed', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  t.same(mountFiles(fake.mount).databases(), ['app.db'])
  t.same(mountFiles(join(fake.mount, 'nowhere')).databases(), [])
})

// While the event loop stands still nothing is read from the stream: LiteFS may
// have stopped, its stream's end unread. The first write decided after a stall
// looks at the mount itself (a stat), so it is not handed to the app on a dead mount.
t.test('after the event loop stood still, a dead mount is seen before the stream says so', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  const s = open(fake)
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s) && s.role === 'primary')
  const standStill = (): void => { const end = performance.now() + 3 * STALL_MS; while (performance.now() < end); } // a blocked loop, made on purpose
  standStill()
  s.refresh()
  t.equal(s.litefs, 'up', 'a live mount after a stall changes nothing')
  t.ok(s.writable)
  const statuses: string[] = []
  s.onLitefs(status => statuses.push(status))
  rmSync(join(fake.mount, '.lag')) // the mount stops answering; the stream has not said so
  s.refresh()
  t.equal(s.litefs, 'up', 'no stall: the stream is trusted, no file is looked at')
  standStill()
  s.refresh()
  t.equal(s.litefs, 'down', 'after a stall: the mount was looked at')
  t.notOk(s.writable, 'no local write is served')
  t.same(statuses, ['down'], 'the app is told, to close its handle')
})
