// `serve` with a wrong --target (issue 23, item 5): said at startup, once;
// while it lasts the address is tried every second and each request still
// gets its 502; once the app answers that is said too. And after a whole retry
// window of refusals, a request is not made to wait another one.
import t from 'tap'
import { createServer } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { TargetWatch } from '../lib/sidecar/target-watch.js'

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createNetServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)) })
  })
}

t.test('a --target where nothing listens: said at startup; each request 502; said again once the app answers', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  t.teardown(async () => { await fake.close() })
  const port = await freePort()
  const lines: string[] = []
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, targetRetry: 300, logger: lineLogger('info', 'text', l => lines.push(l)) })
  await s.listen()
  t.teardown(async () => { await s.close() })
  const said = (re: RegExp): string[] => lines.filter(l => re.test(l))
  await until(() => said(/nothing answers at/).length === 1, 'said at startup, before any request')
  t.match(said(/nothing answers at/)[0], new RegExp(`WARN  litefs-proxy: nothing answers at 127\\.0\\.0\\.1:${port}, the app behind serve \\(ECONNREFUSED\\): is --target its address\\? Requests wait up to 0\\.3 s for it .* then get 502 LITEFS_TARGET_UNAVAILABLE`))
  await until(() => s.core.state.role === 'primary')
  for (let i = 0; i < 2; i++) {
    const res = await request(`${s.url}/x`, { method: 'POST', body: 'x' })
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { code: 'LITEFS_TARGET_UNAVAILABLE' })
  }
  t.equal(said(/nothing answers at/).length, 1, 'said once while it lasts')
  const appServer = createServer((_req, res) => { res.writeHead(201).end('ok') })
  await new Promise<void>(resolve => appServer.listen(port, '127.0.0.1', resolve))
  t.teardown(() => { appServer.closeAllConnections(); appServer.close() })
  await until(() => said(/answers now/).length === 1, 'tried again every second while it refused: seen back by itself')
  t.match(said(/answers now/)[0], new RegExp(`INFO  litefs-proxy: the app at 127\\.0\\.0\\.1:${port} answers now`))
  const res = await request(`${s.url}/x`, { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 201)
  await res.body.dump()
})

t.test('after a whole retry window of refusals, a request gets its 502 without waiting another one', async t => {
  let now = 0
  const lines: string[] = []
  const watch = new TargetWatch({ host: '127.0.0.1', port: 9, label: '127.0.0.1:9' }, 30_000, lineLogger('info', 'text', l => lines.push(l)), () => now)
  t.teardown(() => { watch.close() })
  t.equal(watch.givenUp, false, 'nothing known yet: wait for the app (it may be starting)')
  watch.refused('ECONNREFUSED')
  now = 29_999
  watch.refused('ECONNREFUSED')
  t.equal(watch.givenUp, false, 'refusing for less than the window: a request still waits')
  now = 30_000
  t.equal(watch.givenUp, true, 'refusing for the whole window: answered at once')
  watch.reached()
  t.equal(watch.givenUp, false, 'back: requests go through (and wait again if it goes)')
  t.equal(lines.filter(l => /nothing answers at/.test(l)).length, 1)
  t.equal(lines.filter(l => /answers now/.test(l)).length, 1)
  watch.reached()
  t.equal(lines.filter(l => /answers now/.test(l)).length, 1, 'said once')
  watch.close()
  watch.refused('ECONNREFUSED') // a probe that was on its way when serve closed
  t.equal(watch.givenUp, false, 'closed: nothing more is said or counted')
})

t.test('health says when the app behind serve is down: 503 app-unavailable for a balancer; other nodes\' questions get LiteFS\'s answer', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  t.teardown(async () => { await fake.close() })
  const port = await freePort()
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, logger: lineLogger('silent', 'text', () => {}) })
  await s.listen()
  t.teardown(async () => { await s.close() })
  await until(() => s.core.state.role === 'primary')
  const health = async (headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number, body: Record<string, unknown> | undefined }> => {
    const res = await request(`${s.url}/litefs/health`, { method, headers })
    const text = await res.body.text()
    return { status: res.statusCode, body: text === '' ? undefined : JSON.parse(text) as Record<string, unknown> }
  }
  const down = await health()
  t.equal(down.status, 503, 'the app refuses connections: take this node out')
  t.match(down.body, { status: 'app-unavailable', role: 'primary', txid: '0000000000000003', app: { target: `127.0.0.1:${port}`, error: /ECONNREFUSED/ } })
  t.equal((await health({}, 'HEAD')).status, 503, 'HEAD too')
  t.match(await health({ 'litefs-proxy-probe': '1' }), { status: 200, body: { status: 'ok' } }, "a replica asking the primary's position gets it")
  t.match(await health({ 'litefs-proxy-reach': 'node-x' }), { status: 200, body: { status: 'ok' } }, 'and one asking whether the primary is there')
  const appServer = createServer((_req, res) => { res.writeHead(200).end('ok') })
  await new Promise<void>(resolve => appServer.listen(port, '127.0.0.1', resolve))
  t.teardown(() => { appServer.closeAllConnections(); appServer.close() })
  t.match(await health(), { status: 200, body: { status: 'ok' } }, 'the app answers: back in')
  await fake.close()
  await until(() => s.core.state.litefs !== 'up')
  t.match(await health(), { status: 503, body: { status: 'unavailable' } }, "LiteFS's own state comes first")
})
