// A request answered 503 LITEFS_CLOSED because the app is shutting down also
// closes its HTTP/1.1 connection (Connection: close): a keep-alive client sends
// its next request elsewhere instead of to a server on its way out. Every
// flavour, through a raw socket.
import t from 'tap'
import { connect } from 'node:net'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'

const routes = (): Record<string, Handler> => ({
  'GET /items': (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{}') }
})

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a held read answered LITEFS_CLOSED at close says Connection: close, and the connection ends`, async t => {
    const { replica } = await pair(t, flavour, { routes })
    await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
    const { hostname, port } = new URL(replica.url)
    const socket = connect(Number(port), hostname)
    t.teardown(() => { socket.destroy() })
    let got = ''
    let ended = false
    socket.setEncoding('latin1').on('data', (d: string) => { got += d }).on('close', () => { ended = true }).on('error', () => {})
    socket.write('GET /items HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\nlitefs-txid: 00000000000000ff\r\n\r\n')
    await until(() => replica.state.waiterCount === 1, 'held')
    const closing = replica.close()
    await until(() => ended, 'the server closed the connection after its answer')
    await closing
    t.match(got, /^HTTP\/1\.1 503 /)
    t.match(got, /\r\nconnection: close\r\n/i)
    t.match(got, /"code":"LITEFS_CLOSED"/)
    if (flavour === 'serve') {
      // serve's access log names the code of its own answer, as the body does.
      t.ok(replica.lines.some(l => l.includes('"msg":"request"') && l.includes('"status":503') && l.includes('"code":"LITEFS_CLOSED"')), 'the request line has code LITEFS_CLOSED')
    }
  })
}
