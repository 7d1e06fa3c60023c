// A primary that shuts down gracefully under forwarded write load: Node's
// server.close() cuts its idle kept-alive connections at once, and a write a
// replica forwards over one of them at that instant is reset unread. That is
// not "may have reached the primary": it is retried — to the primary that comes
// back — and never answered 502; no write is applied twice. What TCP leaves: a
// write on a new connection still in the primary's accept queue when its
// listener closes is reset unread, and no replica can tell that from a write
// applied (502, never resent). The close lets the event loop accept what is
// queued first (accept-queued.ts), which leaves microseconds: such 502s are
// counted, each must be that kind, and none may be applied.
import t from 'tap'
import { fork, type ChildProcess } from 'node:child_process'
import { request } from 'undici'
import { FakeLitefs } from './helpers/fake-litefs.js'
import { serve } from './helpers/apps.js'

async function startPrimary (port = 0): Promise<{ child: ChildProcess, port: number }> {
  const child = fork(new URL('./helpers/primary-process.ts', import.meta.url).pathname, [String(port)], { execArgv: process.execArgv })
  const msg = await new Promise<{ port: number }>(resolve => child.once('message', m => resolve(m as { port: number })))
  return { child, port: msg.port }
}

async function stopPrimary (child: ChildProcess): Promise<string[]> {
  const done = new Promise<{ applied: string[] }>(resolve => child.once('message', m => resolve(m as { applied: string[] })))
  child.send('close')
  return (await done).applied
}

t.test('writes forwarded while the primary closes gracefully: none answered 503, none applied twice, a 502 only for a connection never accepted', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  let primary = await startPrimary()
  const port = primary.port
  const replica = await serve('http', fake, { primaryUrl: () => `http://127.0.0.1:${port}`, primaryRedirectTimeout: 10_000 })
  t.teardown(async () => { await replica.close() })

  const answers: Record<string, number> = {}
  const bodies = new Set<string>()
  const ok: string[] = []
  let next = 0
  let stop = false
  const worker = async (): Promise<void> => {
    while (!stop) {
      const id = `w${next++}`
      const res = await request(`${replica.url}/items`, { method: 'POST', headers: { 'x-id': id }, body: 'x' })
      const text = await res.body.text()
      if (res.statusCode !== 201) bodies.add(text)
      answers[res.statusCode] = (answers[res.statusCode] ?? 0) + 1
      if (res.statusCode === 201) ok.push(id)
    }
  }
  const workers = Array.from({ length: 8 }, worker)
  const applied: string[] = []
  for (let round = 0; round < 3; round++) {
    await new Promise(resolve => setTimeout(resolve, 150)) // writes flowing (not a timing assertion)
    applied.push(...await stopPrimary(primary.child)) // graceful: idle connections cut mid-stream
    primary = await startPrimary(port) // back on the same port; refused connections meanwhile are retried
  }
  await new Promise(resolve => setTimeout(resolve, 150))
  stop = true
  await Promise.all(workers)
  applied.push(...await stopPrimary(primary.child))

  t.comment(`answers: ${JSON.stringify(answers)}; applied ${applied.length}; ${[...bodies].join(' | ')}`)
  t.same(Object.keys(answers).filter(status => status !== '502'), ['201'], 'every write answered 201, or 502 (below): no 503, no other')
  for (const body of bodies) {
    // The one reset a replica cannot retry: a connection the primary never accepted (its request unread).
    t.match(body, /"sending to the primary at http:\/\/127\.0\.0\.1:\d+ failed \(ECONNRESET\); the request was not retried"/, `a 502 is only a reset of a new connection, by design (${answers['502']} of ${next})`)
  }
  t.equal(new Set(applied).size, applied.length, 'no write applied twice')
  t.same([...ok].sort(), [...applied].sort(), 'each acknowledged write applied once, nothing else applied')
})

t.test('a reset before any answer: the body is sent again whole when small, never when large', async t => {
  const { createServer } = await import('node:http')
  const { createHash } = await import('node:crypto')
  let attempts = 0
  const bodies: string[] = []
  const asked: string[] = []
  const server = createServer((req, res) => {
    // The replica's question whether this node still closes (a reset is how a litefs-proxy closes): not closing.
    if (req.method === 'GET') { asked.push(String(req.url)); res.end(); return }
    attempts++
    // The first request opens the connection; the second is reset on it, kept alive (as an idle one cut at close).
    if (attempts === 2 || req.headers['x-size'] === 'big') { req.socket.resetAndDestroy(); return } // unread: reset
    const chunks: Buffer[] = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => { bodies.push(createHash('sha256').update(Buffer.concat(chunks)).digest('hex')); res.writeHead(201).end() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const replica = await serve('http', fake, { primaryUrl: () => `http://127.0.0.1:${(server.address() as { port: number }).port}`, primaryRedirectTimeout: 2000 })
  t.teardown(async () => { await replica.close() })
  const first = await request(`${replica.url}/items`, { method: 'POST', body: 'first' })
  await first.body.dump()
  t.equal(first.statusCode, 201, 'a first write opens the connection')
  bodies.length = 0
  const small = Buffer.alloc(40_000, 'a')
  const res = await request(`${replica.url}/items`, { method: 'POST', body: small })
  t.equal(res.statusCode, 201, 'answered by the second attempt')
  await res.body.dump()
  t.same(bodies, [createHash('sha256').update(small).digest('hex')], 'which got the whole body, as sent')
  t.same(asked, ['/litefs/health'], 'after the reset, and before sending again, the replica asked the primary once whether it is closing')
  const big = await request(`${replica.url}/items`, { method: 'POST', headers: { 'x-size': 'big' }, body: Buffer.alloc(200_000, 'b') })
  t.equal(big.statusCode, 502, 'a body too large to keep cannot be sent again')
  t.match(await big.body.json(), { code: 'LITEFS_FORWARD_FAILED', error: /not retried/ })
})
