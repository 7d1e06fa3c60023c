import t from 'tap'
import { writeFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { openLitefsNode, acquireLitefsNode } from '../lib/core/litefs-node.js'
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
  t.equal(s.primaryHostname, 'node-a')
  t.equal(s.position('app.db'), 5n, '-pos read once after subscribing (init carries no position)')
  fake.advance(6n, { file: false })
  await until(() => s.position('app.db') === 6n, 'tx event')
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
  t.equal(s.primaryHostname, 'node-a', 'role from the files while the API errs')
  t.equal(streaming(s), false)
  mode = 'flood'
  await until(() => streaming(s), 'subscribed')
  await until(() => !streaming(s), 'an endless line drops the connection')
  const before = asked
  await until(() => asked > before, 'and it subscribes again')
})

t.test('files only: role from .primary, or from the role option', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 3n, api: false })
  const s = open(fake, false)
  t.teardown(async () => { await s.close(); await fake.close() })
  t.equal(s.role, 'replica')
  t.equal(s.primaryHostname, 'node-a')
  t.equal(s.position('app.db'), 3n)
  t.equal(s.readLag(), 829)
  writeFileSync(join(fake.mount, '.lag'), 'garbage')
  t.equal(s.readLag(), undefined)
  rmSync(join(fake.mount, '.lag'))
  t.equal(s.readLag(), undefined)

  rmSync(join(fake.mount, '.primary'))
  s.refresh()
  t.equal(s.role, 'replica', 'no .primary after being a replica: a cut-off replica, not a primary')
  t.equal(s.primaryKnown, false)
  const got: WaitResult[] = []
  s.waitForPrimary(60_000, r => got.push(r))
  writeFileSync(join(fake.mount, '.primary'), 'node-b\n')
  await until(() => got.length === 1, 'primary found by polling .primary')
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
})

t.test('a primary whose API goes away stays primary while no .primary appears', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  const s = openLitefsNode({ mount: fake.mount, api: fake.apiUrl, databases: ['app.db'], pollInterval: 1 })
  t.teardown(async () => { await s.close(); await fake.close() })
  await until(() => streaming(s) && s.role === 'primary')
  await fake.stopApi()
  await until(() => !streaming(s))
  s.refresh()
  t.equal(s.role, 'primary')
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
