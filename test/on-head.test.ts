import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { appendOnHead } from '../lib/core/on-head.js'

// A header added just before the head goes out, whichever form of writeHead the
// app uses (Server-Timing: observe.ts): appended to the app's own value for the
// same name, never lost to headers the app passes, and the app's header object
// or list never changed (it may be a constant used for every answer).

const OBJECT = Object.freeze({ 'Server-Timing': 'app;dur=1', 'x-app': '1' })
const LIST = Object.freeze(['x-app', '1', 'server-timing', 'app;dur=1'])
const OTHER = Object.freeze(['x-app', '1'])

t.test('every form of writeHead: ours appended, the app\'s headers kept and unchanged', async t => {
  const forms: Record<string, (res: ServerResponse) => void> = {
    '/object': res => res.writeHead(200, OBJECT as Record<string, string>),
    '/object-other-name': res => res.writeHead(200, { 'x-app': '1' }),
    '/reason-and-object': res => res.writeHead(200, 'Fine', OBJECT as Record<string, string>),
    '/list': res => { res.setHeader('x-before', '1'); res.writeHead(200, LIST as unknown as string[]) },
    '/list-other-name': res => { res.setHeader('x-before', '1'); res.writeHead(200, OTHER as unknown as string[]) },
    '/implicit': res => { res.setHeader('server-timing', 'app;dur=1') }
  }
  const server = createServer((req, res) => {
    appendOnHead(res, 'server-timing', () => 'litefs;dur=2')
    appendOnHead(res, 'x-none', () => undefined) // nothing to add: nothing added
    forms[req.url as string](res)
    res.end('ok')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  for (const path of Object.keys(forms)) {
    const res = await request(url + path)
    await res.body.dump()
    const timing = ([] as string[]).concat(res.headers['server-timing'] as string | string[]).join(', ')
    const own = path.includes('other-name') ? '' : 'app;dur=1, '
    t.equal(timing, `${own}litefs;dur=2`, `${path}: ours after the app's own`)
    t.notOk('x-none' in res.headers, `${path}: an undefined value adds nothing`)
    if (path !== '/implicit') t.equal(res.headers['x-app'], '1', `${path}: the app's headers kept`)
  }
  t.same(OBJECT, { 'Server-Timing': 'app;dur=1', 'x-app': '1' }, 'the app\'s object unchanged')
  t.same(LIST, ['x-app', '1', 'server-timing', 'app;dur=1'], 'the app\'s list unchanged')
  t.same(OTHER, ['x-app', '1'])
})
