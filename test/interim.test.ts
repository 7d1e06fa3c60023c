// Issue 18, kind 8: interim (1xx) answers. An app's 103 Early Hints (and 102
// Processing) were dropped by serve on every request and by the adapters on
// forwarded requests. They reach the client where its protocol allows: HTTP/1.1
// and HTTP/2 clients, never HTTP/1.0 ones; a 100 Continue is this hop's own
// (the client's Expect was answered by the node it reached) and is never doubled.
import t from 'tap'
import { connect as h2connect } from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FakeLitefs } from './helpers/fake-litefs.js'
import { until } from './helpers/fake-litefs.js'
import { FLAVOURS, pair, type PairNode } from './helpers/pairs.js'
import { RawConnection } from './helpers/raw-http.js'

const LINKS = ['</app.css>; rel=preload; as=style', '</app.js>; rel=preload; as=script']

/** An app that hints before it answers; a POST commits first. */
const routes = (fake: FakeLitefs): Record<string, (req: IncomingMessage, res: ServerResponse) => void> => {
  const hinted = (status: number) => (req: IncomingMessage, res: ServerResponse): void => {
    req.resume()
    req.on('end', () => {
      if (req.method === 'POST') fake.advance(fake.txid + 1n, { event: false })
      res.writeEarlyHints({ link: LINKS })
      res.writeProcessing()
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`answered ${req.method as string}`)
    })
  }
  return { 'POST /page': hinted(201), 'GET /page': hinted(200) }
}

async function exchange (node: PairNode, method: string, version: '1.1' | '1.0', headers: Record<string, string> = {}, body?: string): Promise<Awaited<ReturnType<RawConnection['answer']>>> {
  const c = await RawConnection.open(node.url)
  try {
    if (version === '1.0') {
      c.write(`${method} /page HTTP/1.0\r\nhost: test\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}${body === undefined ? '' : `content-length: ${body.length}\r\n`}\r\n${body ?? ''}`)
    } else {
      c.send(method, '/page', headers, body)
    }
    return await c.answer(method)
  } finally {
    c.close()
  }
}

function interimOf (a: Awaited<ReturnType<RawConnection['answer']>>): Array<[number, string[] | undefined]> {
  return a.interim.map(i => [i.status, i.headers.link])
}

const HINTS: Array<[number, string[] | undefined]> = [[103, [LINKS.join(', ')]], [102, undefined]]

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: 103 and 102 reach HTTP/1.1 clients, never HTTP/1.0 ones; 100 Continue once`, async t => {
    const { primary, replica } = await pair(t, flavour, { routes, replica: { readTimeout: 50, readTimeoutAction: 'primary' }, framework: { unread: true } })
    let a = await exchange(replica, 'POST', '1.1', {}, 'x')
    t.equal(a.status, 201, 'a write on the replica: answered by the primary')
    t.same(interimOf(a), HINTS, 'its 103 (with every Link) and 102 first')
    t.match(String(a.headers['set-cookie']), /txid=/, 'the cookie on the final answer')

    a = await exchange(replica, 'POST', '1.0', {}, 'x')
    t.equal(a.status, 201)
    t.same(a.interim, [], 'HTTP/1.0: no interim answer (it could not read one)')

    a = await exchange(replica, 'POST', '1.1', { expect: '100-continue' }, 'x')
    t.equal(a.status, 201)
    t.same(interimOf(a), [[100, undefined], ...HINTS], "one 100 Continue (this node's server answered the Expect), then the primary's hints")

    const ahead = primary.fake.txid.toString(16).padStart(16, '0') // the primary has it; the replica does not
    a = await exchange(replica, 'GET', '1.1', { cookie: `${flavour === 'serve' ? '__txid' : 'litefs-txid'}=${ahead}` })
    t.equal(a.status, 200, 'a read that waited past readTimeout, sent to the primary')
    t.same(interimOf(a), HINTS, 'its hints too')
    t.equal(primary.hits.filter(h => h === 'GET /page').length, 1)

    if (flavour === 'serve') {
      a = await exchange(replica, 'GET', '1.1')
      t.same(interimOf(a), HINTS, "serve: a read served by the replica's own app")
      t.equal(replica.hits.length, 1)
      a = await exchange(primary, 'POST', '1.1', {}, 'x')
      t.same(interimOf(a), HINTS, 'serve: a write on the primary')
      t.equal(a.headers['set-cookie']?.filter(c => c.startsWith('__txid=')).length, 1, 'its cookie on the final answer, not on a hint')
      t.notOk(a.interim.some(i => i.headers['set-cookie'] !== undefined))
    }
  })
}

t.test('HTTP/2 clients get the hints of an HTTP/1.1 primary as informational HEADERS frames', async t => {
  for (const [adapter, framework] of [['fastify', { fastify: { http2: true } as any }], ['http', { http2: true }]] as const) {
    const { primary, replica } = await pair(t, adapter, { routes, replica: { forwardProtocol: 'http1' }, framework: { ...framework, unread: true }, primaryFramework: { fastify: undefined, http2: false } })
    await until(() => replica.state.primaryHostname === 'node-a')
    const session = h2connect(replica.url)
    t.teardown(() => session.close())
    const got = await new Promise<{ interim: Array<[number, unknown]>, status: number, text: string }>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/page' })
      const interim: Array<[number, unknown]> = []
      let status = 0
      let text = ''
      stream.on('headers', h => { interim.push([h[':status'] as number, h.link]) })
      stream.on('response', h => { status = h[':status'] as number })
      stream.on('data', c => { text += c })
      stream.on('end', () => resolve({ interim, status, text }))
      stream.on('error', reject)
      stream.end('x')
    })
    t.equal(got.status, 201, `${adapter}: answered by the primary`)
    t.same(got.interim, [[103, LINKS.join(', ')], [102, undefined]], `${adapter}: 103 and 102 as HEADERS frames`)
    t.equal(primary.hits.length, 1)
    session.close()
  }
})

t.test('interim answers not passed on (a 104, which Node cannot send; a Link that is not one; no Link at all) are dropped; the answer that follows is not', async t => {
  const { createServer } = await import('node:net')
  const { FakeLitefs } = await import('./helpers/fake-litefs.js')
  const { serve } = await import('./helpers/apps.js')
  const raw = createServer(socket => {
    socket.once('data', () => socket.end('HTTP/1.1 104 Upload Resumption Supported\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: not a link\r\n\r\nHTTP/1.1 103 Early Hints\r\nx-hint: no link at all\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'))
  })
  await new Promise<void>(resolve => raw.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { raw.close() })
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await fake.close() })
  const replica = await serve('http', fake, { primaryUrl: () => `http://127.0.0.1:${(raw.address() as { port: number }).port}` })
  t.teardown(async () => { await replica.close() })
  const c = await RawConnection.open(replica.url)
  c.send('POST', '/items', {}, 'x')
  const a = await c.answer()
  c.close()
  t.equal(a.status, 201)
  t.equal(a.body, 'ok')
  t.same(a.interim, [], 'no hint')
})
