// Issue 18, kind 2: answers with large heads. A sign-in setting ~24 KB of
// cookies, posted to a replica, was committed by the primary and answered 502
// (UND_ERR_HEADERS_OVERFLOW): the forwarder read heads up to Node's 16 KiB,
// which neither Node's server nor browsers impose on answers (Chrome reads
// 256 KiB). Every path an answer takes through litefs-proxy: forwarded writes,
// reads sent to the primary after readTimeout, serve's reads and local writes,
// serve's upgrade path, an h2c primary; past 256 KiB an answer that says so.
import t from 'tap'
import { Agent, request } from 'undici'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FakeLitefs } from './helpers/fake-litefs.js'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { RawConnection } from './helpers/raw-http.js'

// The test's own client reads heads as a browser does.
const client = new Agent({ maxHeaderSize: 1 << 20 })
t.teardown(async () => { await client.close() })

/** `n` cookies of 8 KB each: what a session store or an auth provider sets at sign-in. */
const cookies = (n: number): string[] => Array.from({ length: n }, (_, i) => `session.${i}=${'s'.repeat(8000)}; Path=/; HttpOnly`)

const routes = (fake: FakeLitefs): Record<string, (req: IncomingMessage, res: ServerResponse) => void> => {
  const answer = (n: number) => (req: IncomingMessage, res: ServerResponse): void => {
    req.resume()
    req.on('end', () => {
      if (req.method === 'POST') fake.advance(fake.txid + 1n, { event: false })
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'text/plain', 'set-cookie': cookies(n) }).end('signed in')
    })
  }
  return { 'POST /sign-in': answer(3), 'GET /sign-in': answer(3), 'POST /huge': answer(40), 'GET /huge': answer(40) }
}

async function call (url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number, cookies: string[], body: string }> {
  const res = await request(url, { method, headers, body: method === 'POST' ? 'x' : undefined, dispatcher: client })
  return { status: res.statusCode, cookies: ([] as string[]).concat(res.headers['set-cookie'] ?? []), body: await res.body.text() }
}

/** A WebSocket handshake the app answers with a large head: accepted (101) on /ws, refused (403) elsewhere. */
function upgrade (req: IncomingMessage, socket: Duplex): void {
  const head = cookies(3).map(c => `set-cookie: ${c}\r\n`).join('')
  if (req.url === '/ws') {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n${head}\r\nhello`)
    socket.end()
  } else {
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n${head}\r\nno`)
  }
}

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: answers with 24 KB of Set-Cookie pass, on every path; past 256 KiB, 502 LITEFS_ANSWER_TOO_LARGE`, async t => {
    const { primary, replica } = await pair(t, flavour, { routes, replica: { readTimeout: 50, readTimeoutAction: 'primary' }, upgrade, framework: { unread: true } })
    const cookieName = flavour === 'serve' ? '__txid' : 'litefs-txid'
    let res = await call(`${replica.url}/sign-in`, 'POST')
    t.equal(res.status, 201, 'a write on the replica, committed by the primary, answered')
    t.equal(res.cookies.filter(c => c.startsWith('session.')).length, 3, 'every cookie of the app')
    t.equal(res.cookies.filter(c => c.startsWith(`${cookieName}=`)).length, 1, 'and the TXID cookie')

    const has = primary.fake.txid.toString(16).padStart(16, '0')
    res = await call(`${replica.url}/sign-in`, 'GET', { cookie: `${cookieName}=${has}` })
    t.equal(res.status, 200, 'a read sent to the primary after readTimeout')
    t.equal(res.cookies.length, 3)
    t.equal(primary.hits.filter(h => h === 'GET /sign-in').length, 1, 'it was the primary that answered')

    const before = primary.fake.txid
    res = await call(`${replica.url}/huge`, 'POST')
    t.equal(res.status, 502, 'a head of 320 KB: more than a browser reads')
    t.match(JSON.parse(res.body), { code: 'LITEFS_ANSWER_TOO_LARGE', error: /larger than 262144 bytes.*may have been applied/ })
    t.equal(primary.fake.txid, before + 1n, 'the write was applied: the answer says it may have been')

    if (flavour === 'serve') {
      res = await call(`${replica.url}/sign-in`, 'GET')
      t.equal(res.status, 200, "serve: a read served by the replica's own app")
      t.equal(res.cookies.length, 3)
      res = await call(`${primary.url}/sign-in`, 'POST')
      t.equal(res.status, 201, 'serve: a write on the primary')
      t.equal(res.cookies.length, 4, "the app's cookies and the TXID cookie")
      res = await call(`${replica.url}/huge`, 'GET')
      t.match(JSON.parse(res.body), { code: 'LITEFS_ANSWER_TOO_LARGE' }, 'serve: the same answer for its own app')

      for (const [path, status] of [['/ws', 101], ['/refused', 403]] as const) {
        const c = await RawConnection.open(replica.url)
        c.send('GET', path, { connection: 'upgrade', upgrade: 'websocket' })
        const a = await c.answer()
        t.equal(a.status, status, `serve: a WebSocket handshake answered ${status} with a 24 KB head`)
        t.equal(a.headers['set-cookie']?.length, 3)
        c.close()
      }
    }
  })
}

t.test('an h2c primary: 24 KB of cookies over HTTP/2', async t => {
  for (const [adapter, framework] of [['fastify', { fastify: { http2: true } as any }], ['http', { http2: true }]] as const) {
    const { replica } = await pair(t, adapter, { routes, replica: { forwardProtocol: 'http2' }, primaryFramework: framework, framework: { unread: true } })
    const res = await call(`${replica.url}/sign-in`, 'POST')
    t.equal(res.status, 201, `${adapter}: forwarded over h2c, answered`)
    t.equal(res.cookies.length, 4)
  }
})
