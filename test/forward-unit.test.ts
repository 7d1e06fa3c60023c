// The forwarder's header rules and failure classification, without sockets
// (forward.test.ts covers the same code over real servers).
import t from 'tap'
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { forward, requestHeaders, responseHeaders, FORWARDED_HEADER } from '../lib/core/forward.js'
import { firstValue } from '../lib/core/forwarded-headers.js'

const req = (headers: Record<string, string>, remoteAddress?: string): IncomingMessage =>
  Object.assign(new EventEmitter(), { method: 'POST', url: '/x', headers, socket: { remoteAddress }, resume () {}, pause () {} }) as unknown as IncomingMessage

const plain = { proto: 'http', host: 'app.example', client: '10.1.2.3' } as const

t.test('request headers: hop-by-hop dropped; forwarded metadata is what this node vouches for', async t => {
  const h = requestHeaders(req({ host: 'app.example', connection: 'Keep-Alive, X-Secret', 'x-secret': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'transfer-encoding': 'chunked', upgrade: 'websocket', 'proxy-foo': '1', expect: '100-continue', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', 'x-forwarded-port': '443', 'x-forwarded-prefix': '/admin', forwarded: 'for=6.6.6.6;proto=https;host=evil.example', 'x-keep': 'yes' }, '10.1.2.3'), plain, 'node-b')
  t.same(h, {
    host: 'app.example',
    'x-keep': 'yes',
    'x-forwarded-for': '10.1.2.3',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'app.example',
    'x-forwarded-port': '80',
    forwarded: 'for=10.1.2.3;proto=http;host="app.example"',
    [FORWARDED_HEADER]: 'node-b'
  }, "a client's own X-Forwarded-Proto/Host/Port/Prefix and Forwarded never reach the primary: this node's view replaces them")
  const trusted = requestHeaders(req({ host: 'internal:8080', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example', 'x-forwarded-for': '203.0.113.7', 'x-real-ip': '6.6.6.6' }, '10.0.0.2'),
    { proto: 'https', host: 'shop.example', client: '203.0.113.7' }, 'node-b')
  t.match(trusted, { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example', 'x-forwarded-port': '443', 'x-forwarded-for': '203.0.113.7', forwarded: 'for=203.0.113.7;proto=https;host="shop.example"', 'x-real-ip': '203.0.113.7' },
    'what a trusting framework believed is passed on (X-Real-IP only as the client it believes)')
  const tricky = requestHeaders(req({ host: 'app.example', connection: 'host, cookie, x-forwarded-for', cookie: 'a=1', 'x-forwarded-for': '6.6.6.6' }, '10.1.2.3'), plain, 'node-b')
  t.equal(tricky.host, 'app.example', '`Connection: host` does not take the Host away')
  t.equal(tricky.cookie, undefined, 'other named headers go')
  t.equal(tricky['x-forwarded-for'], '10.1.2.3', 'X-Forwarded-For, named or not, is what this node believes: here its peer')
  const bare = requestHeaders(req({}), { proto: 'https', host: undefined, client: undefined }, 'node-b')
  t.same(bare, { 'x-forwarded-for': 'unknown', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443', forwarded: 'for=unknown;proto=https', [FORWARDED_HEADER]: 'node-b' }, 'HTTPS; no Host; a socket already gone')
  const v6 = requestHeaders(req({ host: '[::1]:8080' }, '::1'), { proto: 'http', host: '[::1]:8080', client: '::1' }, 'node-b')
  t.equal(v6.forwarded, 'for="[::1]";proto=http;host="[::1]:8080"', 'IPv6 as RFC 7239 wants it')
  t.equal(v6['x-forwarded-port'], '8080')
  const v6bare = requestHeaders(req({ host: '[::1]' }, '::1'), { proto: 'http', host: '[::1]', client: '::1' }, 'node-b')
  t.equal(v6bare['x-forwarded-port'], '80', 'no port in a bracketed IPv6 host: the scheme default')
  const h2 = requestHeaders(req({ ':method': 'POST', ':path': '/x', ':scheme': 'http', ':authority': 'app.example:8080', 'content-type': 'text/plain' }, '10.1.2.3'), plain, 'node-b')
  t.equal(h2.host, 'app.example:8080', 'HTTP/2: :authority becomes Host')
  t.notOk(Object.keys(h2).some(k => k.startsWith(':')), 'no pseudo-header is sent in HTTP/1.1')
})

t.test('response headers: hop-by-hop dropped, everything else kept, repeated ones too', async t => {
  const raw = (...pairs: string[]): Buffer[] => pairs.map(p => Buffer.from(p, 'latin1'))
  t.same(responseHeaders(raw('Connection', 'close, X-Hop', 'Transfer-Encoding', 'chunked', 'X-Hop', '1', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/plain')),
    { headers: { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' }, sized: false, closing: false })
  t.same(responseHeaders(raw('Content-Length', '2', 'Set-Cookie', 'a', 'Set-Cookie', 'b', 'Set-Cookie', 'c')), { headers: { 'content-length': '2', 'set-cookie': ['a', 'b', 'c'] }, sized: true, closing: false })
  // A closing primary's word to its peers (primary-closing.ts): read, and not passed on.
  t.same(responseHeaders(raw('Litefs-Proxy-Closing', '1', 'Content-Length', '0')), { headers: { 'content-length': '0' }, sized: true, closing: true })
})

/** A dispatcher that fails; `connected`: after undici began to write the request (onConnect). */
function failing (err: Error & { code?: string }, connected = false): Dispatcher {
  return {
    dispatch: (_opts: unknown, handler: Dispatcher.DispatchHandler) => {
      queueMicrotask(() => {
        if (connected) handler.onConnect?.(() => {})
        handler.onError?.(err)
      })
      return true
    }
  } as unknown as Dispatcher
}
const base = {
  res: Object.assign(new EventEmitter(), { writableFinished: false }) as unknown as ServerResponse,
  path: '/x',
  origin: 'http://node-a:8080',
  view: plain,
  marker: 'node-b',
  bodyLimit: 100,
  timeout: 1000,
  takeOver: () => {}
}

t.test('failures: only what never left this node may be retried', async t => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  let r = await forward({ ...base, req: req({ 'content-length': '2' }), dispatcher: failing(refused) })
  t.match(r, { outcome: 'failed', retry: true, error: { statusCode: 503, code: 'LITEFS_NO_PRIMARY' } }, 'refused at connect, body untouched')
  r = await forward({ ...base, req: req({}), dispatcher: failing(Object.assign(new Error('x'), { code: 'ENOTFOUND' })) })
  t.match(r, { outcome: 'failed', retry: true }, 'a name that does not resolve yet')
  r = await forward({ ...base, req: req({}), dispatcher: failing(Object.assign(new Error('refused late'), { code: 'ECONNREFUSED' }), true) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502 } }, 'a refusal after writing began is not a refusal at connect')
  r = await forward({ ...base, req: req({}), dispatcher: failing(new Error('invalid header'), false) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, code: 'LITEFS_FORWARD_FAILED', message: /before anything was sent \(invalid header\)/ } }, 'refused before sending: said so, not retried')
  r = await forward({ ...base, req: req({}), dispatcher: failing(new Error('socket hang up'), true) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, code: 'LITEFS_FORWARD_FAILED', message: /\(socket hang up\); the request was not retried/ } })
  r = await forward({ ...base, idleResets: true, req: req({}), dispatcher: failing(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), true) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, message: /\(ECONNRESET\); the request was not retried/ } }, 'reset after sending, before any answer, on a connection not known to be reused: may have been read; never retried (the reused case: graceful-primary.test.ts)')
  r = await forward({ ...base, req: req({}), dispatcher: failing(Object.assign(new Error('reset'), { code: 'EPIPE' }), true) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502 } }, 'the same toward an app (no idleResets)')
  r = await forward({ ...base, req: req({}), dispatcher: failing(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), true) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, message: /\(UND_ERR_SOCKET\); the request was not retried/ } }, 'closed cleanly after sending: may have been applied; never retried')
  r = await forward({ ...base, req: req({}), dispatcher: failing(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), false) })
  t.match(r, { outcome: 'failed', retry: true, error: { statusCode: 503 } }, 'reset while connecting: nothing sent')
  r = await forward({ ...base, req: Object.assign(req({ 'content-length': '5' }), { readableDidRead: true }) as IncomingMessage, dispatcher: failing(refused) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 500, code: 'LITEFS_BODY_CONSUMED', message: /mount litefs-proxy before any body parser/ } }, 'a body something else already read')
  r = await forward({ ...base, req: req({ 'content-length': '101' }), dispatcher: failing(refused) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 413 } }, 'a declared length past the limit is refused before connecting')
  r = await forward({ ...base, resendable: true, req: req({}), dispatcher: failing(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), true) })
  t.match(r, { outcome: 'failed', retry: true, resend: true, error: { statusCode: 502, message: /closed the connection before answering \(UND_ERR_SOCKET\)/ } }, 'closed cleanly, and safe to send twice: sent again')
  r = await forward({ ...base, resendable: true, req: req({}), dispatcher: failing(new Error('socket hang up'), true) })
  t.match(r, { outcome: 'failed', retry: false }, 'safe twice, but a failure that is not a closed connection: not sent again')
  r = await forward({ ...base, req: req({}), dispatcher: failing(Object.assign(new Error('headers overflow'), { code: 'UND_ERR_HEADERS_OVERFLOW' }), true) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, code: 'LITEFS_ANSWER_TOO_LARGE', message: /may have been applied/ } })
})

t.test('a request safe twice whose body was too big to keep is not sent again', async t => {
  const source = req({ 'content-length': String(100_000), 'idempotency-key': 'k' })
  const dispatcher = {
    dispatch: (opts: { body: import('node:stream').Readable }, handler: Dispatcher.DispatchHandler) => {
      handler.onConnect?.(() => {})
      opts.body.resume()
      opts.body.once('data', () => {}) // reading: the body goes out
      setImmediate(() => {
        source.emit('data', Buffer.alloc(70_000)) // more than is kept for a resend
        setImmediate(() => handler.onError?.(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })))
      })
      return true
    }
  } as unknown as Dispatcher
  const r = await forward({ ...base, bodyLimit: Infinity, resendable: true, req: source, dispatcher })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, message: /not retried/ } })
})

t.test('firstValue: the value a trusting framework reads', async t => {
  t.equal(firstValue(undefined), undefined)
  t.equal(firstValue(' https , http'), 'https')
  t.equal(firstValue(['a.example, b.example', 'c.example']), 'a.example')
  t.equal(firstValue(', x'), undefined, 'an empty first entry is no value')
})

t.test('a client body that errors mid-forward ends the attempt; nothing retried', async t => {
  const source = req({ 'content-length': '10' })
  const dispatcher = {
    dispatch: (opts: { body: import('node:stream').Readable }, handler: Dispatcher.DispatchHandler) => {
      handler.onConnect?.(() => {})
      opts.body.on('error', err => handler.onError?.(err))
      opts.body.resume()
      setImmediate(() => source.emit('error', Object.assign(new Error('aborted'), { code: 'ECONNRESET' })))
      return true
    }
  } as unknown as Dispatcher
  const r = await forward({ ...base, req: source, dispatcher })
  t.same(r, { outcome: 'gone' }, 'the client went away: nobody to answer, nothing to retry')
})

t.test('an HTTP/2 body the client reset ends with `aborted` set: a cut body, never forwarded as a shorter one', async t => {
  for (const how of ['end after abort', 'aborted event'] as const) {
    const source = Object.assign(req({}), { httpVersionMajor: 2, stream: { endAfterHeaders: false }, aborted: false })
    let upstreamError: Error | undefined
    let upstreamEnded = false
    const dispatcher = {
      dispatch: (opts: { body: import('node:stream').Readable }, handler: Dispatcher.DispatchHandler) => {
        handler.onConnect?.(() => {})
        opts.body.on('error', err => { upstreamError = err; handler.onError?.(err) })
        opts.body.on('end', () => { upstreamEnded = true })
        opts.body.resume()
        setImmediate(() => {
          source.emit('data', Buffer.from('part'))
          source.aborted = true
          // node:http2's compatibility request: 'aborted', then (as for any stream) 'end'.
          if (how === 'aborted event') source.emit('aborted')
          else source.emit('end')
        })
        return true
      }
    } as unknown as Dispatcher
    const r = await forward({ ...base, req: source as unknown as IncomingMessage, dispatcher })
    t.same(r, { outcome: 'gone' }, `${how}: the client went away; nothing to answer or retry`)
    t.equal(upstreamEnded, false, `${how}: the body sent upstream never ended cleanly`)
    t.match(upstreamError, { message: /aborted/ }, `${how}: it was aborted upstream`)
  }
})
