import t from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createH2Server, connect as h2connect, type Http2ServerResponse } from 'node:http2'
import { connect, type AddressInfo } from 'node:net'
import { Readable, pipeline } from 'node:stream'
import { deferHead, deferredHead } from '../lib/core/deferred-head.js'
import type { Acknowledgement } from '../lib/core/acknowledgement.js'
import { litefsError } from '../lib/core/answers.js'
import { until } from './helpers/fake-litefs.js'

// The head of a write's answer held until its acknowledgement is decided, with
// Node's semantics kept for everything the app does meanwhile — through real
// sockets, raw bytes read as the client gets them.

type Test = typeof t

/** A decision the test makes when it wants. */
class Gate {
  promise: Promise<Acknowledgement>
  private resolveIt!: (a: Acknowledgement) => void
  private rejectIt!: (err: Error) => void
  asked = 0
  constructor () {
    this.promise = new Promise<Acknowledgement>((resolve, reject) => { this.resolveIt = resolve; this.rejectIt = reject })
  }

  open (a: Acknowledgement = { headers: [['set-cookie', 'litefs-txid=0000000000000007; Path=/']] }): void { this.resolveIt(a) }
  fail (err: Error): void { this.rejectIt(err) }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface Site {
  url: string
  port: number
  gate: Gate
  /** What happened on the server side, in order. */
  events: string[]
  handle: (h: Handler) => void
}

async function site (t: Test, decide: (gate: Gate) => () => Acknowledgement | Promise<Acknowledgement> = g => () => { g.asked++; return g.promise }): Promise<Site> {
  let handler: Handler = (_req, res) => { res.end() }
  const s: Site = { url: '', port: 0, gate: new Gate(), events: [], handle: h => { handler = h } }
  const server: Server = createServer((req, res) => {
    deferHead(res, decide(s.gate))
    res.on('finish', () => s.events.push('finish'))
    handler(req, res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  s.port = (server.address() as AddressInfo).port
  s.url = `http://127.0.0.1:${s.port}`
  return s
}

/** A raw client: what arrived, as bytes, at any moment. */
function rawRequest (port: number, text: string): { received: () => string, done: Promise<string> } {
  const socket = connect(port, '127.0.0.1')
  let got = ''
  socket.setEncoding('latin1')
  socket.on('data', d => { got += d })
  const done = new Promise<string>(resolve => { socket.on('close', () => resolve(got)); socket.on('error', () => resolve(got)) })
  socket.write(text)
  return { received: () => got, done }
}

const turns = async (n = 20): Promise<void> => { for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve)) }
const POST = (path: string, extra = ''): string => `POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n${extra}\r\n`

/** The final answer in `raw` (after any 100 Continue), its chunked body decoded. */
function parse (raw: string): { status: number, head: string, body: string, headers: string[] } {
  while (raw.startsWith('HTTP/1.1 100 ')) raw = raw.slice(raw.indexOf('\r\n\r\n') + 4)
  const at = raw.indexOf('\r\n\r\n')
  const head = raw.slice(0, at)
  const headers = head.split('\r\n').slice(1).map(l => l.toLowerCase())
  let body = raw.slice(at + 4)
  if (headers.includes('transfer-encoding: chunked')) {
    let out = ''
    for (let i = 0; i < 100_000; i++) {
      const eol = body.indexOf('\r\n')
      const size = parseInt(body.slice(0, eol), 16)
      if (!(size > 0)) break
      out += body.slice(eol + 2, eol + 2 + size)
      body = body.slice(eol + 2 + size + 2)
    }
    body = out
  }
  return { status: Number(head.split(' ')[1]), head, body, headers }
}

t.test('writeHead then end: nothing leaves before the decision; meanwhile Node says the head has gone', async t => {
  const s = await site(t)
  const seen: Record<string, unknown> = {}
  s.handle((_req, res) => {
    res.setHeader('x-before', '1')
    const returned = res.writeHead(201, { 'content-type': 'text/plain', 'set-cookie': 'app=1' })
    seen.chained = returned === res
    seen.headersSent = res.headersSent
    seen.getHeader = res.getHeader('x-before')
    seen.statusCode = res.statusCode
    for (const [name, call] of [['setHeader', () => res.setHeader('x-late', '1')], ['appendHeader', () => res.appendHeader('x-late', '1')], ['removeHeader', () => res.removeHeader('x-before')], ['writeHead', () => res.writeHead(500)]] as const) {
      try { call(); seen[name] = 'no error' } catch (err) { seen[name] = (err as NodeJS.ErrnoException).code }
    }
    res.end('created')
    s.events.push('ended by the app')
  })
  const r = rawRequest(s.port, POST('/'))
  await turns()
  t.equal(r.received(), '', 'no byte of the answer before the decision')
  t.same(seen, { chained: true, headersSent: true, getHeader: '1', statusCode: 201, setHeader: 'ERR_HTTP_HEADERS_SENT', appendHeader: 'ERR_HTTP_HEADERS_SENT', removeHeader: 'ERR_HTTP_HEADERS_SENT', writeHead: 'ERR_HTTP_HEADERS_SENT' })
  t.same(s.events, ['ended by the app'], '`finish` waits for the real end')
  t.equal(s.gate.asked, 1, 'the decision was asked once, at the head')
  s.gate.open()
  const res = parse(await r.done)
  t.equal(res.status, 201)
  t.equal(res.body, 'created')
  t.ok(res.headers.includes('x-before: 1'))
  t.ok(res.headers.includes('set-cookie: app=1'), 'the app\'s own cookie stays')
  t.ok(res.headers.includes('set-cookie: litefs-txid=0000000000000007; path=/'), 'and ours is added')
  t.notOk(res.headers.some(h => h.startsWith('x-late')))
  t.same(s.events, ['ended by the app', 'finish'])
})

t.test('implicit heads: end(body) keeps its Content-Length; write then end is chunked; the status is the one at the first write', async t => {
  const s = await site(t)
  s.handle((req, res) => {
    if (req.url === '/end') { res.statusCode = 202; res.setHeader('content-type', 'text/plain'); res.end('whole') }
    if (req.url === '/end-empty') { res.end() }
    if (req.url === '/write') {
      res.statusCode = 203
      res.write('part 1, ')
      res.statusCode = 500 // after the head: no effect, as in Node
      res.end('part 2')
    }
    if (req.url === '/end-cb') res.end(() => s.events.push('end callback'))
  })
  const end = rawRequest(s.port, POST('/end'))
  const empty = rawRequest(s.port, POST('/end-empty'))
  const write = rawRequest(s.port, POST('/write'))
  const cb = rawRequest(s.port, POST('/end-cb'))
  await turns()
  t.equal(end.received() + write.received() + empty.received() + cb.received(), '')
  s.gate.open()
  const e = parse(await end.done)
  t.equal(e.status, 202)
  t.ok(e.headers.includes('content-length: 5'), 'sized, as Node sizes a first end(body)')
  t.notOk(e.headers.some(h => h.startsWith('transfer-encoding')))
  t.equal(e.body, 'whole')
  t.ok(parse(await empty.done).headers.includes('content-length: 0'))
  const w = parse(await write.done)
  t.equal(w.status, 203, 'the status when the head was taken')
  t.ok(w.headers.includes('transfer-encoding: chunked'))
  t.equal(w.body, 'part 1, part 2')
  t.equal(parse(await cb.done).status, 200)
  t.ok(s.events.includes('end callback'), "end's callback runs once the real end finished")
})

t.test('flushHeaders, writeContinue, HEAD, 204 and 304', async t => {
  const s = await site(t)
  s.handle((req, res) => {
    if (req.url === '/flush') { res.setHeader('content-type', 'text/event-stream'); res.flushHeaders(); res.write('data: 1\n\n'); res.end() }
    if (req.url === '/continue') {
      res.writeContinue() // 1xx: not the head, never held
      res.writeHead(200); res.end('after continue')
    }
    if (req.url === '/head') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('no body for HEAD') }
    if (req.url === '/204') { res.writeHead(204); res.end('ignored') }
    if (req.url === '/304') { res.statusCode = 304; res.end() }
  })
  const flush = rawRequest(s.port, POST('/flush'))
  const cont = rawRequest(s.port, 'POST /continue HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\nexpect: 100-continue\r\n\r\n')
  const head = rawRequest(s.port, 'HEAD /head HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
  const noContent = rawRequest(s.port, POST('/204'))
  const notModified = rawRequest(s.port, POST('/304'))
  await turns()
  t.equal(flush.received(), '', 'flushHeaders waits for the decision too')
  t.match(cont.received(), /^(HTTP\/1\.1 100 Continue\r\n\r\n)+$/, 'interim 100s (Node\'s own, and the app\'s) went at once, nothing else')
  s.gate.open()
  const f = parse(await flush.done)
  t.ok(f.headers.includes('content-type: text/event-stream'))
  t.match(f.body, /data: 1/)
  const c = await cont.done
  t.match(c, /^(HTTP\/1\.1 100 Continue\r\n\r\n)+HTTP\/1\.1 200 OK\r\n/)
  t.equal(parse(c).body, 'after continue')
  const h = parse(await head.done)
  t.equal(h.status, 200)
  t.equal(h.body, '', 'HEAD: no body')
  const nc = parse(await noContent.done)
  t.equal(nc.status, 204)
  t.equal(nc.body, '')
  t.equal(parse(await notModified.done).status, 304)
})

t.test('streaming with backpressure: write answers false past the high-water mark, drain follows the decision, a pipeline ends', async t => {
  const s = await site(t)
  const seen: Array<boolean | string> = []
  const chunk = 'x'.repeat(8 * 1024)
  s.handle((req, res) => {
    if (req.url === '/manual') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      seen.push(res.write(chunk), res.write(chunk), res.write(chunk))
      res.once('drain', () => { seen.push('drain'); res.end('end') })
      return
    }
    const source = Readable.from((function * () { for (let i = 0; i < 64; i++) yield Buffer.from(chunk) })())
    res.setHeader('content-type', 'application/octet-stream')
    pipeline(source, res, err => { s.events.push(err === undefined || err === null ? 'pipeline done' : `pipeline ${String(err)}`) })
  })
  const manual = rawRequest(s.port, POST('/manual'))
  const piped = rawRequest(s.port, POST('/pipe'))
  await turns()
  t.same(seen, [true, false, false], 'false once 16 KB are kept')
  t.equal(manual.received() + piped.received(), '')
  s.gate.open()
  const m = parse(await manual.done)
  t.same(seen, [true, false, false, 'drain'])
  t.equal(m.body, chunk.repeat(3) + 'end')
  const p = parse(await piped.done)
  t.equal(p.status, 200)
  t.equal(p.body.length, 64 * chunk.length, 'every byte of the stream')
  t.ok(s.events.includes('pipeline done'))
})

t.test('what Node checks at once is still checked at once', async t => {
  const s = await site(t)
  const errors: unknown[] = []
  s.handle((req, res) => {
    const tryIt = (f: () => void): void => { try { f() } catch (err) { errors.push((err as NodeJS.ErrnoException).code) } }
    tryIt(() => res.writeHead(99))
    tryIt(() => res.writeHead(200, ['odd']))
    tryIt(() => res.writeHead(200, { 'bad name': 'x' }))
    tryIt(() => res.write(null))
    tryIt(() => res.write(42 as unknown as string))
    tryIt(() => { res.statusCode = 1000; res.write('x') })
    res.statusCode = 200
    res.writeHead(200, 'Fine', [['set-cookie', 'a=1'], ['set-cookie', 'b=2']] as unknown as string[])
    res.end(0 as unknown as string) // falsy: Node ignores it
  })
  const r = rawRequest(s.port, POST('/'))
  await turns()
  t.same(errors, ['ERR_HTTP_INVALID_STATUS_CODE', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_HTTP_TOKEN', 'ERR_STREAM_NULL_VALUES', 'ERR_INVALID_ARG_TYPE', 'ERR_HTTP_INVALID_STATUS_CODE'])
  s.gate.open({ headers: [] })
  const res = parse(await r.done)
  t.match(res.head, /^HTTP\/1\.1 200 Fine/, 'the reason phrase given')
  t.same(res.headers.filter(h => h.startsWith('set-cookie')), ['set-cookie: a=1', 'set-cookie: b=2'], 'a repeated name stays repeated')
})

t.test('decided at once: nothing is held', async t => {
  const s = await site(t, () => () => ({ headers: [['x-ack', 'now']] }))
  let sentAfterEnd: boolean | undefined
  s.handle((req, res) => {
    if (req.url === '/write') {
      res.write('implicit, ') // the first call is a write: decided in it, sent by it
      res.end('at once')
      return
    }
    if (req.url === '/end') { res.end('sized'); return }
    res.writeHead(200, ['content-type', 'text/plain'])
    res.end('at once')
    sentAfterEnd = res.writableEnded
  })
  const res = parse(await rawRequest(s.port, POST('/')).done)
  t.equal(sentAfterEnd, true, "Node's own end ran in the app's call")
  t.ok(res.headers.includes('x-ack: now'))
  t.equal(res.body, 'at once')
  const w = parse(await rawRequest(s.port, POST('/write')).done)
  t.ok(w.headers.includes('x-ack: now'))
  t.equal(w.body, 'implicit, at once')
  const e = parse(await rawRequest(s.port, POST('/end')).done)
  t.ok(e.headers.includes('x-ack: now'))
  t.ok(e.headers.includes('content-length: 5'))
})

t.test('a replacement: the app\'s head and body are discarded, the client gets the replacement', async t => {
  const s = await site(t)
  const callbacks: string[] = []
  s.handle((req, res) => {
    res.setHeader('set-cookie', 'app=1')
    res.setHeader('date', 'Mon, 01 Jan 2001 00:00:00 GMT')
    res.statusMessage = 'Created'
    res.writeHead(201, { 'content-type': 'text/plain', 'x-app': '1' })
    res.write('the app says ', () => callbacks.push('write'))
    if (req.url === '/stream') {
      setTimeout(() => {
        t.equal(res.write('more'), true, 'writes after the replacement are consumed')
        res.end('end', () => callbacks.push('late end'))
      }, 20)
      return
    }
    if (req.url === '/null-callback') return res.end('success', null as any, null as any) // as Fastify ends a reply
    res.end('success', () => callbacks.push('end'))
  })
  const replace = litefsError('LITEFS_INTERNAL', 'the outcome of this write is unknown')
  const nullCallback = rawRequest(s.port, POST('/null-callback'))
  const r = rawRequest(s.port, POST('/'))
  const head = rawRequest(s.port, `HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
  const stream = rawRequest(s.port, POST('/stream'))
  await turns()
  s.gate.open({ replace })
  const res = parse(await r.done)
  t.equal(res.status, 500)
  t.match(res.head, /^HTTP\/1\.1 500 Internal Server Error/, 'its own reason phrase, not the app\'s')
  t.same(JSON.parse(res.body), { error: 'the outcome of this write is unknown', code: 'LITEFS_INTERNAL' })
  t.notOk(res.headers.some(h => h.startsWith('x-app') || h.startsWith('set-cookie')), 'none of the app\'s headers')
  t.ok(res.headers.some(h => h.startsWith('date: ') && !h.includes('2001')), 'a Date of its own')
  t.ok(res.headers.includes('content-type: application/json; charset=utf-8'))
  const h = parse(await head.done)
  t.equal(h.status, 500)
  t.equal(h.body, '', 'HEAD: no body')
  t.equal(parse(await stream.done).status, 500)
  t.equal(parse(await nullCallback.done).status, 500, 'a kept end with a null callback: replaced, nothing called')
  await turns()
  t.ok(callbacks.includes('write') && callbacks.includes('end'), 'the discarded writes\' callbacks are called')
  await new Promise(resolve => setTimeout(resolve, 40))
  t.ok(callbacks.includes('late end'))
})

t.test('a decision that fails, or throws: 500 LITEFS_INTERNAL, never the app\'s success', async t => {
  const rejecting = await site(t)
  rejecting.handle((_req, res) => { res.end('ok') })
  const r = rawRequest(rejecting.port, POST('/'))
  await turns()
  rejecting.gate.fail(new Error('boom'))
  const res = parse(await r.done)
  t.equal(res.status, 500)
  t.match(JSON.parse(res.body), { code: 'LITEFS_INTERNAL', error: /boom/ })
  const throwing = await site(t, () => () => { throw new Error('sync boom') })
  throwing.handle((_req, res) => { res.end('ok') })
  const th = parse(await rawRequest(throwing.port, POST('/')).done)
  t.equal(th.status, 500)
  t.match(JSON.parse(th.body), { code: 'LITEFS_INTERNAL', error: /sync boom/ })
})

t.test('a client gone while the head is held: nothing breaks', async t => {
  const s = await site(t)
  let closed = false
  s.handle((_req, res) => { res.on('close', () => { closed = true }); res.writeHead(200); res.write('a'); res.end('b') })
  const socket = connect(s.port, '127.0.0.1')
  socket.write(POST('/'))
  await turns()
  socket.destroy()
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(closed, true)
  s.gate.open()
  await turns()
  t.pass('the replay onto a closed response threw nothing')
})

t.test('an adapter that applies the decision itself (Fastify\'s onSend) releases the head', async t => {
  const s = await site(t)
  s.handle((_req, res) => {
    const held = deferredHead(res)
    const d = held?.decision()
    t.equal(held?.decision(), d, 'asked once')
    void Promise.resolve(d).then(() => {
      held?.release()
      res.setHeader('x-applied', 'by the adapter')
      res.writeHead(200)
      res.end('released')
    })
  })
  const r = rawRequest(s.port, POST('/'))
  await turns()
  s.gate.open()
  const res = parse(await r.done)
  t.ok(res.headers.includes('x-applied: by the adapter'))
  t.notOk(res.headers.some(h => h.startsWith('set-cookie')), 'released: the head adds nothing itself')
  t.equal(res.body, 'released')
})

t.test('HTTP/2: the same semantics on its compatibility response', async t => {
  const gate = new Gate()
  const seen: Record<string, unknown> = {}
  const server = createH2Server((req, res: Http2ServerResponse) => {
    // A middleware's own setHeader, installed before: restored once the head has gone.
    const setHeader = res.setHeader
    const own = function (this: Http2ServerResponse, name: string, value: string) { seen.ownSetHeader = name; return setHeader.call(this, name, value) }
    res.setHeader = own as typeof res.setHeader
    deferHead(res as unknown as ServerResponse, () => gate.promise)
    res.writeHead(201, { 'content-type': 'text/plain' })
    seen.headersSent = res.headersSent
    try { res.setHeader('x-late', '1') } catch (err) { seen.setHeader = (err as NodeJS.ErrnoException).code }
    try { res.writeHead(200) } catch (err) { seen.writeHead = (err as NodeJS.ErrnoException).code }
    try { (res as unknown as ServerResponse).appendHeader('x-late', '1') } catch (err) { seen.appendHeader = (err as NodeJS.ErrnoException).code }
    try { res.removeHeader('content-type') } catch (err) { seen.removeHeader = (err as NodeJS.ErrnoException).code }
    res.end('h2', () => { seen.restored = res.setHeader === own })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => server.close(resolve)) })
  const session = h2connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(() => session.close())
  const stream = session.request({ ':method': 'POST', ':path': '/' })
  stream.end()
  let headers: Record<string, unknown> | undefined
  stream.on('response', h => { headers = h })
  let body = ''
  stream.setEncoding('utf8')
  stream.on('data', c => { body += c })
  await new Promise(resolve => setTimeout(resolve, 30))
  t.equal(headers, undefined, 'no head before the decision')
  t.same(seen, { ownSetHeader: 'content-type', headersSent: true, setHeader: 'ERR_HTTP_HEADERS_SENT', writeHead: 'ERR_HTTP_HEADERS_SENT', appendHeader: 'ERR_HTTP_HEADERS_SENT', removeHeader: 'ERR_HTTP_HEADERS_SENT' })
  gate.open()
  await new Promise(resolve => stream.on('end', resolve))
  await until(() => seen.restored !== undefined)
  t.equal(seen.restored, true, "the middleware's setHeader is back")
  t.equal(headers?.[':status'], 201)
  t.same(headers?.['set-cookie'], ['litefs-txid=0000000000000007; Path=/'])
  t.equal(body, 'h2')
})

t.test('flushHeaders when decided at once, and again once through: Node\'s own each time', async t => {
  const s = await site(t, () => () => ({ headers: [['x-ack', 'now']] }))
  s.handle((_req, res) => {
    res.setHeader('content-type', 'text/event-stream')
    res.flushHeaders() // the head: decided in it, sent by it
    res.flushHeaders() // through: Node's (which does nothing a second time)
    res.end('data: 1\n\n')
  })
  const res = parse(await rawRequest(s.port, POST('/')).done)
  t.ok(res.headers.includes('x-ack: now'))
  t.ok(res.headers.includes('content-type: text/event-stream'))
  t.equal(res.body, 'data: 1\n\n')
})

t.test('writeHead with a [name, value] list replaces the headers of those names set before, as Node does', async t => {
  const s = await site(t)
  s.handle((_req, res) => {
    res.setHeader('x-a', 'set before')
    res.setHeader('x-b', 'kept')
    res.writeHead(200, ['x-a', 'given', 'x-a', 'given too'])
    res.end()
  })
  const r = rawRequest(s.port, POST('/'))
  await turns()
  s.gate.open({ headers: [] })
  const res = parse(await r.done)
  t.same(res.headers.filter(h => h.startsWith('x-')), ['x-b: kept', 'x-a: given', 'x-a: given too'])
})

t.test('drain owed to the app: also when it ended meanwhile (Node owes it too), or its answer was replaced', async t => {
  const s = await site(t)
  const chunk = 'y'.repeat(8 * 1024)
  const seen: Record<string, Array<boolean | string>> = { ended: [], replaced: [] }
  s.handle((_req, res) => {
    res.writeHead(200)
    seen.ended.push(res.write(chunk), res.write(chunk), res.write(chunk))
    res.once('drain', () => { seen.ended.push('drain') })
    res.end('end') // without waiting for drain
  })
  const ended = rawRequest(s.port, POST('/ended'))
  await turns()
  t.same(seen.ended, [true, false, false])
  s.gate.open({ headers: [] })
  t.equal(parse(await ended.done).body, chunk.repeat(3) + 'end')
  await until(() => seen.ended.length === 4, 'drain')
  t.same(seen.ended, [true, false, false, 'drain'])

  const replaced = await site(t)
  replaced.handle((req, res) => {
    res.writeHead(200)
    seen.replaced.push(res.write(chunk), res.write(chunk), res.write(chunk))
    res.once('drain', () => { seen.replaced.push('drain'); res.end('end') })
  })
  const rr = rawRequest(replaced.port, POST('/replaced'))
  await turns()
  replaced.gate.open({ replace: litefsError('LITEFS_INTERNAL', 'unknown outcome') })
  t.equal(parse(await rr.done).status, 500)
  t.same(seen.replaced, [true, false, false, 'drain'], 'a discarded write owes its drain too')
})

t.test('HTTP/2, decided at once: nothing is locked, nothing to restore', async t => {
  const server = createH2Server((_req, res: Http2ServerResponse) => {
    deferHead(res as unknown as ServerResponse, () => ({ headers: [['x-ack', 'now']] }))
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('h2 at once')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => server.close(resolve)) })
  const session = h2connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(() => session.close())
  const stream = session.request({ ':method': 'POST', ':path': '/' })
  stream.end()
  const headers = await new Promise<Record<string, unknown>>(resolve => stream.on('response', resolve))
  let body = ''
  stream.setEncoding('utf8')
  stream.on('data', c => { body += c })
  await new Promise(resolve => stream.on('end', resolve))
  t.equal(headers['x-ack'], 'now')
  t.equal(body, 'h2 at once')
})
