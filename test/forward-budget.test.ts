// The forward budget (hop-by-hop.ts BUDGET_HEADER, write-path.ts holdLimit): a
// write a replica forwards to a node that then holds it for a primary (its
// lease unconfirmed, a failover under way) is answered by that node within 90%
// of the replica's forwardTimeout, so the client gets its 503 "nothing was
// applied" rather than the replica's 504, whose write may or may not have
// happened. In every adapter and behind serve, through real sockets.
import t from 'tap'
import { request } from 'undici'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until } from './helpers/fake-litefs.js'

const routes = (): Record<string, (req: any, res: any) => void> => ({
  'POST /items': (_req, res) => { res.writeHead(201).end('{}') },
  'POST /seen': (req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.headers)) }
})

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a forwarded write held by a node that lost its primary is answered 503 within the forwarder's budget, not 504`, async t => {
    const { primary, replica } = await pair(t, flavour, {
      routes,
      replica: { forwardTimeout: 400 },
      primary: { primaryRedirectTimeout: 60_000 }
    })
    // The node the replica forwards to stops being primary and knows no other (a failover under way).
    primary.fake.losePrimary()
    await until(() => primary.state.role === 'replica' && primary.state.primaryHostname === undefined, 'the old primary knows no primary')
    const res = await request(`${replica.url}/items`, { method: 'POST', body: '{}' })
    const body = await res.body.json() as { code: string, error: string }
    t.equal(res.statusCode, 503, 'the holding node\'s answer, relayed')
    t.equal(body.code, 'LITEFS_NO_PRIMARY')
    t.match(body.error, /within 360 ms/, '90% of the replica\'s 400 ms, not the holding node\'s 60 s')
    t.notOk(primary.hits.includes('POST /items'), 'nothing was applied')
    t.equal(res.headers['retry-after'], '1')
  })
}

t.test('what a forward carries: the budget beside the marker, replaced by each forwarder; ignored without the marker or when malformed', async t => {
  const { primary, replica } = await pair(t, 'http', { routes, replica: { forwardTimeout: 1234 }, primary: { primaryRedirectTimeout: 100 } })
  // What the primary's app receives: the replica's budget, not the one its client sent.
  const seen = await request(`${replica.url}/seen`, { method: 'POST', body: '{}', headers: { 'litefs-forward-budget': '5' } })
  const headers = await seen.body.json() as Record<string, string>
  t.equal(seen.statusCode, 200)
  t.ok(headers['litefs-forwarded'] !== undefined, 'the marker')
  t.equal(headers['litefs-forward-budget'], '1234', 'the replica\'s forwardTimeout, in place of the client\'s')
  primary.fake.losePrimary()
  await until(() => primary.state.primaryHostname === undefined)
  for (const [label, headers, within] of [
    ['no marker: a client\'s budget header is ignored', { 'litefs-forward-budget': '10' }, 100],
    ['marker and a malformed budget: ignored', { 'litefs-forwarded': 'node-x', 'litefs-forward-budget': '1e3' }, 100],
    ['marker and a budget above the hold: the hold', { 'litefs-forwarded': 'node-x', 'litefs-forward-budget': '999999' }, 100],
    ['marker and a budget: 90% of it', { 'litefs-forwarded': 'node-x', 'litefs-forward-budget': '50' }, 45]
  ] as const) {
    const res = await request(`${primary.url}/items`, { method: 'POST', body: '{}', headers })
    const body = await res.body.json() as { code: string, error: string }
    t.equal(res.statusCode, 503, label)
    t.match(body.error, new RegExp(`within ${within} ms`), label)
  }
})

