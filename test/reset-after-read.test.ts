// A server that read a request's head, applied it, and died with the rest of
// the body unread resets the connection (its kernel does: Gunicorn's worker
// killed after a commit). Before any answer, that reset looks like the reset of
// an idle connection cut as the request went out — except that it comes on a
// fresh connection, or from an app. Such a write is never sent again: one 502
// that says it may have been applied, applied once. A safe request is sent
// again (issue 18), a bounded number of times. Through real sockets, to an app
// behind serve and to a primary from every in-process adapter.
import t from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { serve, type AdapterName } from './helpers/apps.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'

type Test = typeof t

/**
 * A stand-in app or primary: a request with `x-die` is applied (counted) as
 * soon as its head is read, and its connection reset with the body unread; any
 * other is read whole and answered.
 */
async function dyingServer (t: Test): Promise<{ url: string, port: number, applied: string[] }> {
  const applied: string[] = []
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    applied.push(`${req.method as string} ${req.url as string}`)
    if (req.headers['x-die'] !== undefined) { req.socket.resetAndDestroy(); return }
    req.resume().on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}') })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  const port = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${port}`, port, applied }
}

const body = 'x'.repeat(30_000) // more than the app reads before it dies

t.test('serve → its app', async t => {
  const app = await dyingServer(t)
  const fake = await FakeLitefs.start({ role: 'primary', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const lines: string[] = []
  const sidecar = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${app.port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: lineLogger('info', 'json', l => { lines.push(l) }) })
  await sidecar.listen()
  t.teardown(async () => { await sidecar.close() })
  await until(() => sidecar.core.state.role === 'primary')

  t.test('a write reset on a fresh connection after the app applied it: 502, applied once', async t => {
    app.applied.length = 0
    const res = await request(`${sidecar.url}/likes`, { method: 'POST', headers: { 'x-die': '1' }, body })
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { code: 'LITEFS_TARGET_FAILED', error: /ECONNRESET/ })
    t.same(app.applied, ['POST /likes'], 'sent once')
    t.notOk(lines.some(l => l.includes('LITEFS_TARGET_DOWN')), 'not taken for an app that refuses connections')
  })

  t.test('the same on a kept-alive connection: an app is not a litefs-proxy, its reset proves nothing', async t => {
    app.applied.length = 0
    const warm = await request(`${sidecar.url}/warm`, { method: 'POST', body: 'w' })
    t.equal(warm.statusCode, 200)
    await warm.body.dump()
    const res = await request(`${sidecar.url}/likes`, { method: 'POST', headers: { 'x-die': '1' }, body })
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { code: 'LITEFS_TARGET_FAILED' })
    t.same(app.applied, ['POST /warm', 'POST /likes'], 'the write sent once')
  })

  t.test('a read reset the same way is safe to send again: sent a bounded number of times, then 502', async t => {
    app.applied.length = 0
    const res = await request(`${sidecar.url}/feed`, { headers: { 'x-die': '1' } })
    t.equal(res.statusCode, 502)
    await res.body.dump()
    t.ok(app.applied.length >= 2 && app.applied.length <= 3, `sent again, at most twice (${app.applied.length} in all)`)
    t.ok(app.applied.every(a => a === 'GET /feed'))
  })
})

for (const adapter of ['fastify', 'express', 'http'] as AdapterName[]) {
  t.test(`${adapter}: a write forwarded to a primary that applied it and reset a fresh connection: 502, applied once`, async t => {
    const primary = await dyingServer(t)
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    t.teardown(async () => { await fake.close() })
    const node = await serve(adapter, fake, { primaryUrl: () => primary.url, primaryRedirectTimeout: 2000 })
    t.teardown(async () => { await node.close() })
    await until(() => node.state.primaryHostname === 'node-a')
    const res = await request(`${node.url}/items`, { method: 'POST', headers: { 'x-die': '1', 'content-type': 'text/plain' }, body })
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { code: 'LITEFS_FORWARD_FAILED', error: /not retried/ })
    t.same(primary.applied, ['POST /items'], 'sent once')
  })
}
