// close() called twice — SIGTERM then SIGINT, or the README's handler beside a
// shared shutdown helper — resolves both times, on a replica that has
// forwarded a write (its forwarding agents are open) as on an idle one: the
// second call gets the first one's promise, never undici's ClientDestroyedError.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { request } from 'undici'
import { wrap } from '../lib/http.js'
import expressLitefs from '../lib/express.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'

type Test = typeof t

async function listen (t: Test, listener: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(listener)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

for (const kind of ['http', 'express'] as const) {
  t.test(`${kind}: close() twice after a forwarded write`, async t => {
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    t.teardown(async () => { await fake.close() })
    let hits = 0
    const primary = await listen(t, (_req, res) => { hits++; res.end('{}') })
    const opts = { db: 'app.db', mount: fake.mount, api: fake.apiUrl, primaryUrl: () => primary }
    const handler = (_req: unknown, res: { end: (s: string) => void }): void => { res.end('here') }
    const proxy = kind === 'http' ? wrap(handler as never, opts) : expressLitefs(opts)
    // Express: litefs-proxy's answers go to the app's error handling (the README's errorHandler renders them).
    const errors = (err: { statusCode: number, headers: Record<string, string> }, _req: unknown, res: { status: (n: number) => { set: (h: object) => { json: (b: object) => void } } }, _next: unknown): void => { res.status(err.statusCode).set(err.headers).json(err) }
    const url = await listen(t, kind === 'http' ? proxy as never : express().use(proxy as never).use(handler as never).use(errors as never) as never)
    await until(() => proxy.core.state.primaryHostname === 'node-a', 'the replica knows its primary')
    const res = await request(`${url}/items`, { method: 'POST', body: '{}' })
    await res.body.dump()
    t.equal(res.statusCode, 200, 'forwarded')
    const first = proxy.close()
    const second = proxy.close()
    t.equal(second, first, 'the same promise')
    await t.resolves(first)
    await t.resolves(proxy.close(), 'and once more after it ended')
    // The server still listens (the README closes litefs-proxy first): a write that lands now
    // was answered 502 LITEFS_FORWARD_FAILED (UND_ERR_DESTROYED), which says "may have been applied".
    const after = await request(`${url}/items`, { method: 'POST', body: '{}' })
    t.equal(after.statusCode, 503, 'a write after close(): nothing was applied, another node can take it')
    t.equal(after.headers['retry-after'], '1')
    t.match(await after.body.json(), { code: 'LITEFS_CLOSED' })
    t.equal(hits, 1, 'only the first write reached the primary')
  })
}
