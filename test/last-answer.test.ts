// last-answer.ts, case by case, in one process through raw sockets (the
// processes of closing-keepalive.test.ts show it as users run it): requests a
// client pipelines while the app closes. The mark "this answer closes its
// connection" goes on the latest request decided; a request pipelined behind
// an answer whose head already left saying so is never run; an answer whose
// head left before the close began cannot say it, and its connection is left
// to the server's close.
import t, { type Test } from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { wrap, type WrappedListener } from '../lib/http.js'
import { until } from './helpers/fake-litefs.js'

const quiet = { debug () {}, info () {}, warn () {}, error () {} }

interface Lab { port: number, listener: WrappedListener, ran: string[], held: Map<string, ServerResponse> }

/** The node:http adapter on a files-only primary; `/hold/*` answers are left to the test (`held`). */
async function lab (t: Test): Promise<Lab> {
  const mount = mkdtempSync(join(tmpdir(), 'last-answer-'))
  writeFileSync(join(mount, '.lag'), '+000000000\n')
  writeFileSync(join(mount, 'app.db-pos'), '0000000000000001/0000000000000001\n')
  const ran: string[] = []
  const held = new Map<string, ServerResponse>()
  const listener = wrap((req, res) => {
    ran.push(`${req.method as string} ${req.url as string}`)
    if ((req.url as string).startsWith('/hold/')) held.set(req.url as string, res)
    else res.end('done')
  }, { db: 'app.db', mount, api: false, role: 'primary', logger: quiet })
  // /raw/*: the app answers without litefs-proxy (a route it is not mounted on): never decided by it.
  const server = createServer((req, res) => {
    if ((req.url as string).startsWith('/raw/')) { held.set(req.url as string, res); return }
    listener(req, res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    await listener.close()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    rmSync(mount, { recursive: true, force: true })
  })
  return { port: (server.address() as AddressInfo).port, listener, ran, held }
}

function raw (t: Test, port: number): { send: (s: string) => void, text: () => string, ended: () => boolean } {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let text = ''
  let ended = false
  socket.setEncoding('latin1').on('data', (d: string) => { text += d }).on('close', () => { ended = true }).on('error', () => {})
  return { send: s => { socket.write(s) }, text: () => text, ended: () => ended }
}

const heads = (text: string): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n/g)].map(m => `${m[1]} ${/^connection: *([^\r]*)$/im.exec(m[2])?.[1].toLowerCase() ?? '-'}`)

t.test('a request pipelined after the close began takes the mark from the answer before it', async t => {
  const { port, listener, ran, held } = await lab(t)
  const c = raw(t, port)
  c.send('GET /hold/a HTTP/1.1\r\nhost: x\r\n\r\n')
  await until(() => held.has('/hold/a'), 'the first request at the app')
  listener.core.drain() // the close begins: /hold/a is marked its connection's last
  c.send('GET /b HTTP/1.1\r\nhost: x\r\n\r\n')
  await until(() => ran.includes('GET /b'), 'the request behind it ran')
  held.get('/hold/a')?.end('a')
  await until(() => c.ended(), 'the connection ended')
  t.same(heads(c.text()), ['200 keep-alive', '200 close'], 'both answered; the last one closes the connection')
})

t.test('a request pipelined behind an answer whose head already left saying close is not run', async t => {
  const { port, listener, ran, held } = await lab(t)
  const c = raw(t, port)
  c.send('GET /hold/a HTTP/1.1\r\nhost: x\r\n\r\n')
  await until(() => held.has('/hold/a'), 'the first request at the app')
  listener.core.drain()
  const a = held.get('/hold/a') as ServerResponse
  a.writeHead(200, { 'content-type': 'text/plain' }).write('part') // the head is out, saying close
  c.send('POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n')
  await new Promise(resolve => setTimeout(resolve, 50)) // the POST parsed and decided (not a timing assertion: nothing may run it later either)
  a.end('a')
  await until(() => c.ended(), 'the connection ended')
  t.same(ran, ['GET /hold/a'], 'the POST never reached the app: its answer could never be sent')
  t.same(heads(c.text()), ['200 close'], 'the answer in flight, closing the connection')
})

t.test('an answer whose head left before the close began: too late to say, its connection is left to the server', async t => {
  const { port, listener, held } = await lab(t)
  const c = raw(t, port)
  c.send('GET /hold/a HTTP/1.1\r\nhost: x\r\n\r\n')
  await until(() => held.has('/hold/a'), 'the first request at the app')
  const a = held.get('/hold/a') as ServerResponse
  a.writeHead(200, { 'content-type': 'text/plain' }).write('part') // a streamed answer: its head left kept-alive
  await until(() => c.text().includes('part'), 'the head and a first part arrived')
  listener.core.drain() // too late to say close on it
  a.end('a')
  await until(() => c.text().endsWith('\r\n0\r\n\r\n'), 'the answer came whole (its last chunk)')
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(c.ended(), 'not ended after it: a FIN would race a request sent on it meanwhile (the server\'s close ends it)')
  t.same(heads(c.text()), ['200 keep-alive'])
})

t.test('an answer whose head left before the close began, with a request pipelined behind it after: the connection stays for that one', async t => {
  const { port, listener, ran, held } = await lab(t)
  const d = raw(t, port)
  d.send('GET /hold/c HTTP/1.1\r\nhost: x\r\n\r\n')
  await until(() => held.has('/hold/c'), 'the request at the app')
  const cres = held.get('/hold/c') as ServerResponse
  cres.writeHead(200, { 'content-type': 'text/plain' }).write('part')
  await until(() => d.text().includes('part'), 'its head arrived')
  listener.core.drain()
  d.send('GET /e HTTP/1.1\r\nhost: x\r\n\r\n') // pipelined behind it after the close began: marked the last
  await until(() => ran.includes('GET /e'), 'the request behind it ran')
  cres.end('c')
  await until(() => d.ended(), 'the connection ended after the answer behind')
  t.same(heads(d.text()), ['200 keep-alive', '200 close'], 'the streamed answer, then the one behind it, which closes the connection')
})

t.test('the drain leaves alone what already closes or was never decided, and marks once however often it runs', async t => {
  const { port, listener, held } = await lab(t)
  const a = raw(t, port)
  a.send('GET /hold/a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n') // the client closes it itself
  const b = raw(t, port)
  b.send('GET /raw/b HTTP/1.1\r\nhost: x\r\n\r\n') // not litefs-proxy's: marked all the same, as its connection's last
  const c = raw(t, port)
  c.send('GET /hold/c HTTP/1.1\r\nhost: x\r\n\r\n')
  await until(() => held.size === 3, 'all three at the app')
  listener.core.drain()
  listener.core.drain() // close() after Fastify's preClose drains again
  for (const res of held.values()) res.end('x')
  await until(() => a.ended() && b.ended() && c.ended(), 'every connection ended after its answer')
  t.same([a, b, c].map(x => heads(x.text())), [['200 close'], ['200 close'], ['200 close']])
})
