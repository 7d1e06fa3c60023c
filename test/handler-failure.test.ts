// The http adapter's handler that throws or rejects (walk 6: the README's
// node:http snippet on a replica before the database arrived, SQLITE_CANTOPEN,
// took the whole process down). Now: 500 LITEFS_HANDLER_FAILED, one line of
// JSON, nothing of the error to the client, the error logged; an answer already
// begun is cut short; the server keeps serving. Real sockets.
import t from 'tap'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { wrap } from '../lib/http.js'

t.test('a handler that throws or rejects: 500 LITEFS_HANDLER_FAILED, logged, and the server goes on', async t => {
  const mount = mkdtempSync(join(tmpdir(), 'handler-'))
  t.teardown(() => { rmSync(mount, { recursive: true, force: true }) })
  writeFileSync(join(mount, '.lag'), '+000000000\n')
  writeFileSync(join(mount, 'app.db-pos'), '0000000000000001/0000000000000001\n')
  const errors: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const logger = { debug () {}, info () {}, warn () {}, error (obj: Record<string, unknown>, msg: string) { errors.push({ obj, msg }) } }
  const listener = wrap(async (req, res) => {
    if (req.url === '/throw') throw new Error('SQLITE_CANTOPEN: unable to open database file /litefs/app.db')
    if (req.url === '/reject') { await new Promise(resolve => setImmediate(resolve)); throw new Error('rejected later') }
    if (req.url === '/string') throw 'not an Error' // eslint-disable-line @typescript-eslint/only-throw-error
    if (req.url === '/begun') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('part of an answer')
      await new Promise(resolve => setTimeout(resolve, 20))
      throw new Error('failed mid-answer')
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('fine')
  }, { db: 'app.db', mount, api: false, role: 'primary', logger })
  // A handler that throws before any await (not async): the same answer.
  const sync = wrap((req, res) => { if (req.url === '/throw') throw new Error('sync'); res.end('fine') }, { db: 'app.db', mount, api: false, role: 'primary', logger })
  const servers = [createServer(listener), createServer(sync)]
  for (const s of servers) await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await listener.close(); await sync.close(); for (const s of servers) { s.closeAllConnections(); s.close() } })
  const [url, syncUrl] = servers.map(s => `http://127.0.0.1:${(s.address() as AddressInfo).port}`)

  for (const [base, path, method] of [[url, '/throw', 'GET'], [url, '/reject', 'GET'], [url, '/reject', 'POST'], [url, '/string', 'GET'], [syncUrl, '/throw', 'POST']] as const) {
    const res = await request(base + path, { method, body: method === 'POST' ? 'x' : undefined })
    const body = await res.body.text()
    t.equal(res.statusCode, 500, `${method} ${path}`)
    t.same(JSON.parse(body), { error: 'the app failed to answer this request; its log says why', code: 'LITEFS_HANDLER_FAILED' }, 'one line of JSON with the code; nothing of the error')
    t.notOk(/SQLITE|rejected|sync|not an Error/.test(body), 'the error stays in the log')
  }
  t.same(errors.map(e => [e.obj.code, e.obj.path, e.msg]), [
    ['LITEFS_HANDLER_FAILED', '/throw', "litefs-proxy: the app's handler failed: SQLITE_CANTOPEN: unable to open database file /litefs/app.db"],
    ['LITEFS_HANDLER_FAILED', '/reject', "litefs-proxy: the app's handler failed: rejected later"],
    ['LITEFS_HANDLER_FAILED', '/reject', "litefs-proxy: the app's handler failed: rejected later"],
    ['LITEFS_HANDLER_FAILED', '/string', "litefs-proxy: the app's handler failed: not an Error"],
    ['LITEFS_HANDLER_FAILED', '/throw', "litefs-proxy: the app's handler failed: sync"]
  ], 'each logged at error, once, with its request')
  t.ok(errors[0].obj.err instanceof Error, 'with the error itself (its stack)')

  const begun = await request(`${url}/begun`)
  t.equal(begun.statusCode, 200, 'an answer already begun keeps its head')
  await t.rejects(begun.body.text(), 'and is cut short: never taken for a whole answer')

  const after = await request(`${url}/fine`)
  t.equal(after.statusCode, 200, 'the process and the server go on')
  t.equal(await after.body.text(), 'fine')
})
