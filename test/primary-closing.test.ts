// A primary that says it is closing (CLOSING_HEADER on its answers to peers,
// or a reset of a kept-alive connection unread) gets no more writes from a
// replica until it is done: it refuses connections, answers without the
// header, or LiteFS names another primary — within primaryRedirectTimeout,
// then 503, nothing applied. A new connection opened into its closing could be
// reset with the write unread, which the replica cannot tell from a write
// applied (502). The primary side: a closing litefs-proxy tells its peers, and
// only them. Real sockets throughout; each adapter.
import t from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type AdapterName, type Served } from './helpers/apps.js'
import type { Test } from 'tap'
import { wrap } from '../lib/http.js'
import { ClosingPrimaries } from '../lib/core/primary-closing.js'
import { Agent } from 'undici'

type Mode = 'closing' | 'done' | 'reset'

/** A stand-in for a primary's litefs-proxy: records writes (x-id) and questions; says it is closing while `mode` is. */
class StandIn {
  mode: Mode = 'done'
  readonly writes: string[] = []
  readonly questions: string[] = []
  server: Server
  constructor () {
    this.server = createServer((req, res) => { this.answer(req, res) })
  }

  private answer (req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'GET') {
      this.questions.push(`${String(req.url)} ${String(req.headers['litefs-proxy-reach'])}`)
      if (this.mode === 'reset') { this.mode = 'closing'; req.socket.destroy(); return } // asked again later
      res.writeHead(200, this.mode === 'closing' ? { 'litefs-proxy-closing': '1' } : {}).end('{}')
      return
    }
    req.resume()
    req.on('end', () => {
      this.writes.push(String(req.headers['x-id']))
      res.writeHead(201, this.mode === 'closing' ? { 'litefs-proxy-closing': '1', connection: 'close' } : {}).end('applied')
    })
  }

  async listen (port = 0): Promise<number> {
    await new Promise<void>(resolve => this.server.listen(port, '127.0.0.1', resolve))
    return (this.server.address() as AddressInfo).port
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise(resolve => this.server.close(resolve))
  }
}

async function write (url: string, id: string): Promise<{ status: number, body: string, headers: Record<string, unknown> }> {
  const res = await request(`${url}/items`, { method: 'POST', headers: { 'x-id': id }, body: 'x' })
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers }
}

/** A replica (`adapter`) on a stand-in LiteFS whose primary node-a is a StandIn; all torn down with `t`. */
async function setup (t: Test, adapter: AdapterName = 'http', redirectMs = 30_000): Promise<{ primary: StandIn, port: number, replica: Served }> {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const primary = new StandIn()
  const port = await primary.listen()
  t.teardown(async () => { await primary.close() })
  const replica = await serve(adapter, fake, { primaryUrl: () => `http://127.0.0.1:${port}`, primaryRedirectTimeout: redirectMs })
  t.teardown(async () => { await replica.close() })
  return { primary, port, replica }
}

for (const adapter of ADAPTERS) {
  t.test(`${adapter}: writes wait for a closing primary until it stops listening, then reach the one that comes back`, async t => {
    const { primary: old, port, replica } = await setup(t, adapter)

    t.equal((await write(replica.url, 'w0')).status, 201, 'a write before the close')
    old.mode = 'closing'
    const first = await write(replica.url, 'w1')
    t.equal(first.status, 201, 'the write the primary answered as it began closing')
    t.equal(first.headers['litefs-proxy-closing'], undefined, 'its closing word is between proxies: not passed to the client')

    const second = write(replica.url, 'w2')
    await until(() => old.questions.length >= 2, 'the replica asked the closing primary twice')
    t.same(old.writes, ['w0', 'w1'], 'the held write was not sent to the closing primary')
    t.match(old.questions[0], /^\/litefs\/health \S+/, 'the question is a GET of its health path, marked as a peer\'s')

    await old.close() // the listener closes: refused from now on
    const back = new StandIn()
    await back.listen(port)
    t.teardown(async () => { await back.close() })
    const answered = await second
    t.equal(answered.status, 201, `the held write reached the primary that came back (${answered.body})`)
    t.same([...old.writes, ...back.writes], ['w0', 'w1', 'w2'], 'each write applied once')
  })
}

t.test('a primary that resets an idle connection is closing: the next write asks first', async t => {
  const { primary, port, replica } = await setup(t)
  const sockets = new Set<import('node:net').Socket>()
  primary.server.on('connection', s => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  t.equal((await write(replica.url, 'w1')).status, 201, 'a write: its connection kept alive')
  t.equal(sockets.size, 1)
  primary.mode = 'closing'
  for (const s of sockets) s.resetAndDestroy() // as a litefs-proxy's drain resets its idle connections (idle-reset.ts)
  const closing = (replica.core as unknown as { ctx: { closingPrimaries: ClosingPrimaries } }).ctx.closingPrimaries
  await until(() => closing.has(`http://127.0.0.1:${port}`), 'the replica heard the reset')
  const held = write(replica.url, 'w2')
  await until(() => primary.questions.length >= 1, 'the write held, the primary asked')
  t.same(primary.writes, ['w1'], 'nothing sent to it while it says it is closing')
  primary.mode = 'done'
  t.equal((await held).status, 201)
  t.same(primary.writes, ['w1', 'w2'])
})

t.test('a primary that answers without the header is done: the held write goes at once', async t => {
  const { primary, replica } = await setup(t)
  primary.mode = 'closing'
  t.equal((await write(replica.url, 'w1')).status, 201)
  primary.mode = 'done' // a new process on the same address, or it never closed
  t.equal((await write(replica.url, 'w2')).status, 201, 'the next write is answered')
  t.equal(primary.questions.length, 1, 'after one question')
  t.equal((await write(replica.url, 'w3')).status, 201)
  t.equal(primary.questions.length, 1, 'and later writes ask nothing')
  t.same(primary.writes, ['w1', 'w2', 'w3'])
})

t.test('a primary that stays closing: 503 LITEFS_NO_PRIMARY within primaryRedirectTimeout, nothing sent; a failed question is asked again', async t => {
  const { primary, replica } = await setup(t, 'http', 800)
  primary.mode = 'closing'
  t.equal((await write(replica.url, 'w1')).status, 201)
  primary.mode = 'reset' // the first question's connection is cut: still closing, for all the replica knows
  const [held, also] = await Promise.all([write(replica.url, 'w2'), write(replica.url, 'w3')])
  for (const answer of [held, also]) {
    t.equal(answer.status, 503, answer.body)
    t.match(JSON.parse(answer.body), { code: 'LITEFS_NO_PRIMARY' })
    t.ok(answer.headers['retry-after'], 'with Retry-After')
  }
  t.ok(primary.questions.length >= 2, `asked again after the cut question (${primary.questions.length} questions)`)
  t.same(primary.writes, ['w1'], 'the held writes never reached the closing primary')
})

t.test('LiteFS names another primary while a write waits for the closing one: it goes to the new one', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const a = new StandIn()
  const b = new StandIn()
  const ports = { 'node-a': await a.listen(), 'node-b': await b.listen() }
  t.teardown(async () => { await a.close(); await b.close() })
  const replica = await serve('http', fake, { primaryUrl: (host: string) => `http://127.0.0.1:${ports[host as 'node-a' | 'node-b']}`, primaryRedirectTimeout: 30_000 })
  t.teardown(async () => { await replica.close() })
  a.mode = 'closing'
  t.equal((await write(replica.url, 'w1')).status, 201)
  const held = write(replica.url, 'w2')
  await until(() => a.questions.length >= 1, 'the write held for the closing primary')
  fake.announcePrimary('node-b')
  t.equal((await held).status, 201)
  t.same(a.writes, ['w1'], 'nothing more to the closing primary')
  t.same(b.writes, ['w2'], 'the held write went to the new primary')
})

t.test('a write held for a closing primary when this node closes: 503 LITEFS_CLOSED, nothing sent', async t => {
  const { primary, replica } = await setup(t)
  primary.mode = 'closing'
  t.equal((await write(replica.url, 'w1')).status, 201)
  const held = write(replica.url, 'w2')
  await until(() => primary.questions.length >= 1, 'the write held')
  const closed = replica.core.close() // the proxy's close, as the README's shutdown calls it first
  const answer = await held
  await closed
  t.equal(answer.status, 503, answer.body)
  t.match(JSON.parse(answer.body), { code: 'LITEFS_CLOSED' })
  t.same(primary.writes, ['w1'])
})

t.test('a closing litefs-proxy primary tells its peers that it is closing, and only them', async t => {
  const mount = mkdtempSync(join(tmpdir(), 'closing-'))
  t.teardown(() => { rmSync(mount, { recursive: true, force: true }) })
  writeFileSync(join(mount, '.lag'), '+000000000\n')
  writeFileSync(join(mount, 'app.db-pos'), '0000000000000001/0000000000000001\n')
  const quiet = { debug () {}, info () {}, warn () {}, error () {} }
  const listener = wrap((req, res) => { req.resume(); req.on('end', () => res.writeHead(201).end('ok')) }, { db: 'app.db', mount, api: false, role: 'primary', logger: quiet })
  const server = createServer(listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const ask = async (path: string, method: string, headers: Record<string, string>): Promise<Record<string, unknown>> => {
    const res = await request(url + path, { method, headers, body: method === 'POST' ? 'x' : undefined })
    await res.body.dump()
    return res.headers
  }
  t.equal((await ask('/items', 'POST', { 'litefs-forwarded': 'node-b' }))['litefs-proxy-closing'], undefined, 'not closing: nothing said')
  await listener.close() // the drain; the server still listens (as between the two lines of the README's shutdown)
  const forwarded = await ask('/items', 'POST', { 'litefs-forwarded': 'node-b' })
  t.equal(forwarded['litefs-proxy-closing'], '1', 'a write a replica forwarded: told')
  t.equal(forwarded.connection, 'close', 'and its connection closes')
  const question = await ask('/litefs/health', 'GET', { 'litefs-proxy-reach': 'node-b' })
  t.equal(question['litefs-proxy-closing'], '1', 'a replica asking whether it still closes: told')
  const plain = await ask('/items', 'POST', {})
  t.equal(plain['litefs-proxy-closing'], undefined, 'a client\'s write: not told')
  t.equal(plain.connection, 'close', 'its connection closes all the same')
})

t.test('writes held for one closing primary share each question to it', async t => {
  const primary = new StandIn()
  const origin = `http://127.0.0.1:${await primary.listen()}`
  t.teardown(async () => { await primary.close() })
  const agent = new Agent()
  t.teardown(async () => { await agent.close() })
  const closing = new ClosingPrimaries('node-b', '/litefs/health', () => agent)
  t.ok(closing.none)
  closing.mark(origin)
  closing.mark(origin) // said again: one record
  t.notOk(closing.none)
  primary.mode = 'closing'
  await Promise.all([closing.ask(origin), closing.ask(origin), closing.ask(origin)])
  t.same(primary.questions, ['/litefs/health node-b'], 'three waiting, one question')
  t.ok(closing.has(origin), 'still closing')
  primary.mode = 'done'
  await closing.ask(origin)
  t.equal(primary.questions.length, 2, 'the next wait asks anew')
  t.notOk(closing.has(origin), 'done')
  t.ok(closing.none)
})
