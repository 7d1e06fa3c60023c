// Closing while a durable write waits for its replicas' reports (walk 5: a
// SIGTERM to serve's primary answered such a write 500 only after the whole
// `durabilityTimeout`, blaming the peer secret, and LiteFS, which waits for its
// `exec` app before it hands the lease over, waited as long). The reports stop
// with the server, so the wait ends when the close begins: 500
// LITEFS_NOT_REPLICATED at once, saying the app is closing, the cookie set.
// Every flavour, through real sockets; the candidate is played by signed reports.
import t from 'tap'
import { request } from 'undici'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until } from './helpers/fake-litefs.js'
import { PEER_HEADER, signReport } from '../lib/core/replica-report.js'
import { PEER_PATH } from '../lib/core/durability-options.js'

const SECRET = 'a-peer-secret-of-some-length'

async function report (url: string, position: bigint): Promise<void> {
  const body = JSON.stringify({ hostname: 'c1', candidate: true, positions: { 'app.db': position.toString(16).padStart(16, '0') } })
  const res = await request(url + PEER_PATH, { method: 'POST', body, headers: { 'content-type': 'application/json', [PEER_HEADER]: signReport(SECRET, body) } })
  await res.body.dump()
  if (res.statusCode !== 204) throw new Error(`report refused: ${res.statusCode}`)
}

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a durable write waiting when the close begins is answered at once, 500 LITEFS_NOT_REPLICATED, saying so`, async t => {
    const { primary } = await pair(t, flavour, {
      primary: { peerSecret: SECRET, durability: true, durabilityTimeout: 600_000 }, // far beyond this test: only the close can end the wait
      routes: fake => ({
        'POST /items': (_req, res) => { fake.advance(fake.txid + 1n, { event: false }); res.writeHead(201, { 'content-type': 'application/json' }).end('{}') }
      })
    })
    await report(primary.url, 10n) // a candidate, behind the write to come
    const answer = request(`${primary.url}/items`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }).then(async res => ({ status: res.statusCode, cookie: res.headers['set-cookie'], body: JSON.parse(await res.body.text()) as { code?: string, error?: string } }))
    await until(() => primary.stats().durability?.waits === 1, 'the answer waits for the candidate')
    const closing = primary.close()
    const a = await answer
    t.equal(a.status, 500)
    t.equal(a.body.code, 'LITEFS_NOT_REPLICATED')
    t.match(a.body.error, /the app is closing, and the replicas' reports stop with it/, 'the reason is the close, not a peer secret')
    t.match(String(a.cookie), /^(litefs-txid|__txid)=000000000000000b;/, 'the cookie set: the write is there')
    await closing
  })
}
