// Issue 18, kind 3: an answer the primary (or the app behind serve) gives
// before it has read the request body, then closing the connection, reached the
// client as 502: the forwarder's next write failed on the reset and undici
// dropped the answer already received. Every such answer must reach the client,
// once, in every adapter and in serve: 413 over a body limit, 401 on a big
// upload, a 303 before the body; closing or keeping the connection; bodies too
// big to keep for a resend and small ones; sized and chunked.
import t from 'tap'
import { request } from 'undici'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { serve } from './helpers/apps.js'
import { FLAVOURS, pair } from './helpers/pairs.js'

const LIMIT = 1024

/** Answer without reading the body, as apps do when they refuse one. */
function early (status: number, headers: Record<string, string>, body: object) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
  }
}

const routes = (): Record<string, ReturnType<typeof early>> => ({
  'POST /limited': (req, res) => {
    if (Number(req.headers['content-length'] ?? Infinity) > LIMIT) return early(413, { connection: 'close' }, { error: 'too large' })(req, res)
    req.resume()
    req.on('end', () => res.writeHead(201).end('{}'))
  },
  'POST /auth': early(401, { connection: 'close', 'www-authenticate': 'Bearer' }, { error: 'sign in first' }),
  'POST /moved': early(303, { location: '/elsewhere' }, { moved: true })
})

const BIG = Buffer.alloc(8 << 20, 1) // too big to keep for a resend
const SMALL = Buffer.alloc(30 << 10, 2) // kept: a reset before an answer would resend it

async function* chunked (body: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < body.length; i += 1 << 16) yield body.subarray(i, i + (1 << 16))
}

const CASES = [
  { path: '/limited', status: 413, body: { error: 'too large' } },
  { path: '/auth', status: 401, body: { error: 'sign in first' } },
  { path: '/moved', status: 303, body: { moved: true } }
] as const

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: an answer given before the body was read reaches the client`, async t => {
    const { primary, replica } = await pair(t, flavour, { routes, framework: { unread: true } })
    const targets = flavour === 'serve' ? [['replica', replica], ['primary', primary]] as const : [['replica', replica]] as const
    for (const [where, target] of targets) {
      for (const c of CASES) {
        for (const [name, body] of [['8 MiB', BIG], ['30 KiB', SMALL], ['8 MiB chunked', chunked(BIG)]] as const) {
          // `/limited` reads the length: a chunked body is refused by the primary only when sized.
          if (c.path === '/limited' && name.includes('chunked')) continue
          const before = primary.hits.length
          const res = await request(`${target.url}${c.path}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
          const text = await res.body.text()
          t.equal(res.statusCode, c.status, `${where} ${c.path}, ${name}: the primary's ${c.status} (${text.slice(0, 120)})`)
          t.same(JSON.parse(text), c.body, 'with its body')
          if (c.status === 303) t.equal(res.headers.location, '/elsewhere')
          t.equal(primary.hits.length - before, 1, 'the request reached the primary once: nothing was sent again')
        }
      }
    }
    t.same(replica.hits, [], "never the replica's own app")
  })
}

t.test("Fastify's own bodyLimit: its 413 (and connection close) reaches a client of the replica, as it would a client of the primary", async t => {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await pfake.close(); await rfake.close() })
  const primary = await serve('fastify', pfake, {}, { bodyLimit: 1 << 20 })
  const replica = await serve('fastify', rfake, { primaryUrl: () => primary.url }, { bodyLimit: 1 << 20 })
  t.teardown(async () => { await replica.close(); await primary.close() })
  await until(() => replica.state.primaryHostname === 'node-a')
  for (const [name, body] of [['8 MiB', BIG], ['8 MiB chunked', chunked(BIG)], ['2 MiB', BIG.subarray(0, 2 << 20)]] as const) {
    const res = await request(`${replica.url}/items`, { method: 'POST', body })
    t.equal(res.statusCode, 413, name)
    t.match(await res.body.json(), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' }, "Fastify's own answer")
  }
  t.equal(primary.writes, 0)
})

t.test('a socket that keeps reading after a write fails: only a peer gone stops the writes, and its end is reported as that failure', async t => {
  const { EventEmitter } = await import('node:events')
  const { readAfterWriteFailure } = await import('../lib/core/early-answer.js')
  const outcomes: Array<Error | null | undefined> = []
  const errors = [Object.assign(new Error('closed'), { code: 'ERR_SOCKET_CLOSED' }), new Error('no code'), Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), null]
  let written = 0
  let destroyedWith: Error | undefined
  const fake = Object.assign(new EventEmitter(), {
    _writeGeneric (_w: boolean, _d: unknown, _e: string, cb: (err?: Error | null) => void) { written++; cb(errors.shift()) },
    destroy (err: Error) { destroyedWith = err }
  })
  const socket = readAfterWriteFailure(fake as never) as unknown as typeof fake
  for (let i = 0; i < 5; i++) socket._writeGeneric(false, 'x', 'latin1', err => outcomes.push(err))
  t.match(outcomes, [{ code: 'ERR_SOCKET_CLOSED' }, { message: 'no code' }, undefined, undefined, undefined], 'other failures are passed on; EPIPE is not, nor is anything after it')
  t.equal(written, 3, 'after EPIPE nothing more is written')
  fake.emit('end')
  t.match(destroyedWith, { code: 'EPIPE' }, 'the end of the stream is reported as the write failure')
})
