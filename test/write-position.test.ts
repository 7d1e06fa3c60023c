import t from 'tap'
import { NodeState, type StateDriver } from '../lib/core/node-state.js'
import { WAYS, commitOf, cookieOf, post, serveWay } from './helpers/write-ways.js'
import { litefsError } from '../lib/core/answers.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { openLitefsNode } from '../lib/core/litefs-node.js'

// The cookie of a write served here is never below the handler's own commit
// (DESIGN §3.5), with the `-pos` read shared and asynchronous: a position that
// changes between the handler's commit and the read, in every adapter and
// `serve`, through real sockets. First with a mount whose reads the test starts
// and ends itself (so the interleaving is exact), then on the fake LiteFS with
// real reads on the thread pool and commits racing them.


/** A `-pos` whose asynchronous reads start when asked and end when the test says, with what was there when each started. */
class GatedMount implements StateDriver {
  pos = 5n
  readonly reads: Array<{ at: bigint, end: (value?: bigint) => void }> = []
  constructor (private readonly history: string[]) {}
  readPosition = (): bigint => this.pos
  readLag = (): number => 0
  readPositionAsync = async (): Promise<bigint | undefined> => await new Promise<bigint | undefined>(resolve => {
    const at = this.pos
    const n = this.reads.length + 1
    this.history.push(`read ${n} starts at ${at}`)
    this.reads.push({ at, end: value => { this.history.push(`read ${n} ends with ${value ?? at}`); resolve(value ?? at) } })
  })

  commit (to: bigint, who: string): void {
    this.pos = to
    this.history.push(`${who} commits ${to}`)
  }
}

for (const way of WAYS) {
  t.test(`${way}: an answer ready while a -pos read is in flight waits for the next read, which sees a later commit`, async t => {
    const history: string[] = []
    const mount = new GatedMount(history)
    const state = new NodeState(mount)
    state.setRole('primary')
    const { url } = await serveWay(t, way, { state }, (to, who) => mount.commit(to, who))

    const a = post(url, '/w?who=A&to=6')
    await until(() => mount.reads.length === 1, 'read 1 started after A was ready')
    const b = post(url, '/w?who=B&to=7')
    await until(() => history.includes('B commits 7'), 'B committed while read 1 was in flight')
    await new Promise(resolve => setTimeout(resolve, 20)) // B's answer is ready and waiting (nothing is timed: it may not leave before read 1 ends anyway)
    t.equal(mount.reads.length, 1, 'never two reads in flight')
    t.equal(b.received(), '', "B's head waits")
    mount.reads[0].end() // what was there when read 1 started: 6, below B's commit
    const answerA = await a.done
    t.equal(cookieOf(answerA), 6n, 'A: the read that started after its commit')
    t.match(answerA, /\r\n\r\n(8\r\n)?answer A/)
    await until(() => mount.reads.length === 2, 'read 2 started once read 1 ended')
    t.equal(b.received(), '', 'read 1 never answered B: it may predate B\'s commit')
    mount.commit(8n, 'someone else') // the position moves again before read 2 reads it
    mount.reads[1].end(8n)
    const answerB = await b.done
    t.equal(cookieOf(answerB), 8n, 'B: at or above its own commit (7)')
    t.match(answerB, /\r\n\r\n(8\r\n)?answer B/)
    t.same(history, [
      'A commits 6', 'read 1 starts at 6', 'B commits 7', 'read 1 ends with 6', 'read 2 starts at 7', 'someone else commits 8', 'read 2 ends with 8'
    ], 'the whole history')
  })
}

t.test('on the fake LiteFS: every cookie at or above its own commit while commits race the shared reads', async t => {
  for (const way of WAYS) {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
    t.teardown(async () => { await fake.close() })
    const real = openLitefsNode({ mount: fake.mount, api: fake.apiUrl, databases: ['app.db'], pollInterval: 1 })
    t.teardown(async () => { await real.close() })
    await until(() => real.litefs === 'up' && real.role === 'primary', 'subscribed')
    const { url } = await serveWay(t, way, { state: real }, () => {
      fake.advance(fake.txid + 1n, { event: false }) // the handler's commit: -pos moves now, the event later
      const own = fake.txid
      setImmediate(() => fake.advance(fake.txid + 1n, { event: false })) // and again, before or after the shared read
      return String(own)
    })
    const answers = new Map<string, string>()
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        const who = `r${round}-${i}`
        answers.set(who, await post(url, `/w?who=${who}&to=0`).done)
      }))
    }
    const below = [...answers].filter(([, raw]) => (cookieOf(raw) ?? -1n) < (commitOf(raw) as bigint))
    t.equal(answers.size, 100, `${way}: every write answered`)
    t.same(below, [], `${way}: no cookie below its handler's commit`)
  }
})

// An app closing (its core drained) while a write waits for its -pos read: the
// connection is busy, so the drain's reset of idle connections passes it by,
// and a client that keeps it busy would keep the server from closing. The
// answer leaves with its cookie and closes its connection.
for (const way of WAYS) {
  t.test(`${way}: a write answered after the drain began closes its kept-alive connection`, async t => {
    const history: string[] = []
    const mount = new GatedMount(history)
    const state = new NodeState(mount)
    state.setRole('primary')
    const { url, core } = await serveWay(t, way, { state }, (to, who) => mount.commit(to, who))
    // Forwarded by a replica (the loop guard's marker): it is told why (primary-closing.ts).
    const a = post(url, '/w?who=A&to=6', true, 'litefs-forwarded: node-b\r\n')
    await until(() => mount.reads.length === 1, "A's read started")
    core.drain()
    mount.reads[0].end()
    const raw = await a.done // the server closed the connection: the client never did
    t.match(raw, /^HTTP\/1\.1 200 OK\r\n/)
    t.equal(cookieOf(raw), 6n, 'the cookie, as ever')
    t.match(raw, /\r\nconnection: close\r\n/i, 'and connection: close')
    t.equal(raw.match(/\r\nlitefs-proxy-closing: 1\r\n/gi)?.length, 1, 'and, to the replica that forwarded it, once: the primary is closing')
    t.match(raw, /\r\n\r\n(8\r\n)?answer A/)
    const b = post(url, '/w?who=B&to=7', true) // after the drain, a new connection: served, and closed too
    await until(() => mount.reads.length === 2, "B's read started")
    mount.reads[1].end()
    const rawB = await b.done
    t.match(rawB, /\r\nconnection: close\r\n/i)
    t.notMatch(rawB, /litefs-proxy-closing/i, 'a client\'s own write is not told')
  })
}

// The acknowledgement may replace the app's answer (a write whose commit cannot
// be confirmed must not be acknowledged as a success): built in every adapter,
// decided by a module plugged into the core (here, the test's).
for (const way of WAYS) {
  t.test(`${way}: an acknowledgement that replaces the answer — the client gets the replacement, nothing of the app's`, async t => {
    const state = new NodeState({ readPosition: () => 3n, readLag: () => 0, readPositionAsync: async () => 3n })
    state.setRole('primary')
    const { url, core } = await serveWay(t, way, { state }, () => 'app header')
    const ctx = (core as any).ctx
    ctx.acknowledge = async () => await Promise.resolve({ replace: litefsError('LITEFS_INTERNAL', 'the outcome of this write is unknown') })
    const error = await post(url, '/w?who=A').done
    t.match(error, /^HTTP\/1\.1 500 Internal Server Error\r\n/)
    t.match(error, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i)
    t.match(error, /\{"error":"the outcome of this write is unknown","code":"LITEFS_INTERNAL"\}$/)
    t.notMatch(error, /x-commit|answer A|set-cookie/i, 'none of the app\'s head or body, no cookie')
    ctx.acknowledge = () => ({ replace: { statusCode: 202, headers: { 'x-instead': 'yes' }, body: 'instead' } })
    const plain = await post(url, '/w?who=B').done
    t.match(plain, /^HTTP\/1\.1 202 Accepted\r\n/)
    t.match(plain, /\r\nx-instead: yes\r\n/i)
    t.match(plain, /\r\n\r\ninstead$/)
    t.notMatch(plain, /x-commit|answer B|application\/json/i)
  })
}

t.test('Fastify: a replaced answer whose payload was a stream: the stream is destroyed, never read', async t => {
  const { Readable } = await import('node:stream')
  const Fastify = (await import('fastify')).default
  const { litefs } = await import('../lib/fastify.js')
  const state = new NodeState({ readPosition: () => 3n, readLag: () => 0, readPositionAsync: async () => 3n })
  state.setRole('primary')
  const app = Fastify()
  await app.register(litefs, { db: 'app.db', state })
  let destroyed = false
  app.post('/stream', async (_request, reply) => {
    const body = new Readable({ read () { this.push('never sent'); this.push(null) } })
    body.on('close', () => { destroyed = true })
    return await reply.send(body)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  ;(app.litefs as any).ctx.acknowledge = () => ({ replace: litefsError('LITEFS_INTERNAL', 'unknown') })
  const raw = await post(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`, '/stream').done
  t.match(raw, /^HTTP\/1\.1 500 /)
  t.notMatch(raw, /never sent/)
  t.equal(destroyed, true)
})
