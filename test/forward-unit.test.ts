// The forwarder's header rules and failure classification, without sockets
// (forward.test.ts covers the same code over real servers).
import t from 'tap'
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { forward, requestHeaders, responseHeaders, FORWARDED_HEADER } from '../lib/core/forward.js'

const req = (headers: Record<string, string>, remoteAddress?: string): IncomingMessage =>
  Object.assign(new EventEmitter(), { method: 'POST', url: '/x', headers, socket: { remoteAddress }, resume () {} }) as unknown as IncomingMessage

t.test('request headers: hop-by-hop dropped, forwarding headers added', async t => {
  const h = requestHeaders(req({ host: 'app.example', connection: 'Keep-Alive, X-Secret', 'x-secret': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'transfer-encoding': 'chunked', upgrade: 'websocket', 'proxy-foo': '1', expect: '100-continue', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'edge.example', 'x-keep': 'yes' }, '10.1.2.3'), false, 'node-b')
  t.same(h, { host: 'app.example', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'edge.example', 'x-keep': 'yes', 'x-forwarded-for': '10.1.2.3', [FORWARDED_HEADER]: 'node-b' },
    'what an earlier proxy said about the scheme and host is kept')
  const tricky = requestHeaders(req({ host: 'app.example', connection: 'host, cookie, x-forwarded-for', cookie: 'a=1', 'x-forwarded-for': '6.6.6.6' }, '10.1.2.3'), false, 'node-b')
  t.equal(tricky.host, 'app.example', '`Connection: host` does not take the Host away')
  t.equal(tricky.cookie, undefined, 'other named headers go')
  t.equal(tricky['x-forwarded-for'], '6.6.6.6, 10.1.2.3', 'X-Forwarded-For is the list so far plus this hop, named or not')
  const bare = requestHeaders(req({}), true, 'node-b')
  t.same(bare, { 'x-forwarded-for': 'unknown', 'x-forwarded-proto': 'https', [FORWARDED_HEADER]: 'node-b' }, 'HTTPS; no Host; a socket already gone')
})

t.test('response headers: hop-by-hop dropped, everything else kept, repeated ones too', async t => {
  const raw = (...pairs: string[]): Buffer[] => pairs.map(p => Buffer.from(p, 'latin1'))
  t.same(responseHeaders(raw('Connection', 'close, X-Hop', 'Transfer-Encoding', 'chunked', 'X-Hop', '1', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/plain')),
    { headers: { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' }, sized: false })
  t.same(responseHeaders(raw('Content-Length', '2', 'Set-Cookie', 'a', 'Set-Cookie', 'b', 'Set-Cookie', 'c')), { headers: { 'content-length': '2', 'set-cookie': ['a', 'b', 'c'] }, sized: true })
})

function failing (err: Error & { code?: string }): Dispatcher {
  return { dispatch: (_opts: unknown, handler: Dispatcher.DispatchHandler) => { queueMicrotask(() => handler.onError?.(err)); return true } } as unknown as Dispatcher
}
const base = {
  res: Object.assign(new EventEmitter(), { writableFinished: false }) as unknown as ServerResponse,
  path: '/x',
  origin: 'http://node-a:8080',
  secure: false,
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
  r = await forward({ ...base, req: req({}), dispatcher: failing(new Error('socket hang up')) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, code: 'LITEFS_FORWARD_FAILED', message: /\(socket hang up\)/ } })
  r = await forward({ ...base, req: req({}), dispatcher: failing(Object.assign(new Error('reset'), { code: 'ECONNRESET' })) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 502, message: /\(ECONNRESET\)/ } }, 'reset after sending: never retried')
  r = await forward({ ...base, req: req({ 'content-length': '101' }), dispatcher: failing(refused) })
  t.match(r, { outcome: 'failed', retry: false, error: { statusCode: 413 } }, 'a declared length past the limit is refused before connecting')
})
