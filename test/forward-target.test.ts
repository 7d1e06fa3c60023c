// A write that lands on a replica with a request target that is no path —
// the asterisk form (`POST *`, `M-SEARCH *`), which Node's server accepts —
// cannot be sent to the primary (undici refuses it). It is the client's
// error: 400 LITEFS_BAD_TARGET, as `serve` answers it (request-target.ts),
// with a log line, never a 502 "forwarding to the primary failed" counted in
// forwardErrors. An absolute-form target (`POST http://x/y`) goes on as its
// path, as serve sends its app. Raw sockets: no client sends these otherwise.
import t from 'tap'
import { connect } from 'node:net'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve, type AdapterName, type Served } from './helpers/apps.js'
import type { LitefsOptions } from '../lib/core/options.js'

type Test = typeof t
interface Line { obj: Record<string, unknown>, msg: string }

async function raw (url: string, head: string): Promise<{ status: number, text: string }> {
  const { port } = new URL(url)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1')
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', chunk => { text += chunk })
    socket.on('error', reject)
    socket.on('end', () => { resolve({ status: Number(text.slice(9, 12)), text }) })
    socket.write(head) // no FIN: a client that half-closes may be taken as gone
  })
}

async function pair (t: Test, adapter: AdapterName, opts: Partial<LitefsOptions> = {}): Promise<{ primary: Served, replica: Served, lines: Line[] }> {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  const primary = await serve(adapter, pfake)
  const lines: Line[] = []
  const at = (obj: Record<string, unknown>, msg: string): void => { lines.push({ obj, msg }) }
  const logger = { debug: () => {}, info: at, warn: at, error: at }
  const replica = await serve(adapter, rfake, { primaryUrl: () => primary.url, ...(adapter === 'fastify' ? {} : { logger }), ...opts } as Partial<LitefsOptions>)
  t.teardown(async () => { await replica.close(); await primary.close(); await rfake.close(); await pfake.close() })
  await until(() => replica.state.primaryHostname === 'node-a', 'the primary known')
  return { primary, replica, lines }
}

for (const adapter of ADAPTERS) {
  t.test(adapter, async t => {
    t.test('POST * and M-SEARCH * on a replica: 400 LITEFS_BAD_TARGET, a log line, no forward error', async t => {
      const { primary, replica, lines } = await pair(t, adapter)
      for (const method of ['POST', 'M-SEARCH', 'DELETE']) {
        const res = await raw(replica.url, `${method} * HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`)
        t.equal(res.status, 400, method)
        t.match(res.text, /\r\n\r\n\{"error":"\\"\*\\" is not a request target litefs-proxy can send the primary: a path starting with \/; nothing was applied","code":"LITEFS_BAD_TARGET"\}$/)
      }
      if (adapter !== 'fastify') { // Fastify's own logger is off in these tests
        const said = lines.filter(l => l.obj.code === 'LITEFS_BAD_TARGET')
        t.equal(said.length, 3, 'a line each')
        t.match(said[0], { obj: { method: 'POST', target: '*' }, msg: 'litefs-proxy: refused a request whose target is not a path; nothing reached the app' })
        t.notOk(lines.some(l => /forwarding to the primary failed/.test(l.msg)), 'never a primary failure')
      }
      t.same(replica.stats().forwardErrors, {}, 'not counted as a forward error')
      t.equal(primary.writes, 0)
      // The same connection's next request, and a write with a path, still go.
      const ok = await raw(replica.url, 'POST /items HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
      t.equal(ok.status, 200)
      t.equal(primary.writes, 1, 'forwarded')
    })

    t.test('an absolute-form target is forwarded as its path, as serve sends it', async t => {
      const { primary, replica } = await pair(t, adapter)
      const res = await raw(replica.url, 'POST http://elsewhere.example/items HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
      t.equal(res.status, 200)
      t.equal(primary.writes, 1, 'ran on the primary, at /items')
    })

    t.test('OPTIONS * on a replica: a read, the app\'s as before, never forwarded', async t => {
      const { primary, replica } = await pair(t, adapter)
      const res = await raw(replica.url, 'OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
      t.not(res.status, 400)
      t.not(res.status, 502)
      t.equal(replica.stats().forwards, 0)
      t.equal(primary.writes, 0)
    })

    t.test("forward: 'fly-replay' hands POST * to Fly.io's edge as before", async t => {
      const { replica } = await pair(t, adapter, { forward: 'fly-replay' })
      const res = await raw(replica.url, 'POST * HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
      t.equal(res.status, 200)
      t.match(res.text, /fly-replay: instance=node-a/i)
    })
  })
}
