// What a replica knows about reaching the primary's app (primary-reach.ts),
// as health reads it: unreachable only when the last attempt failed AND
// nothing got through for the whole window a write waits. The window and the
// record per primary are the logic here; health's answers over real sockets
// are in behaviour.test.ts.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { reasonOf } from '../lib/core/errors.js'
import { PrimaryReach } from '../lib/core/primary-reach.js'

t.test('a failure right after a success is not unreachable until the window has passed', async t => {
  const reach = new PrimaryReach('me/00000000', () => { throw new Error('not asked here') })
  t.equal(reach.unreachable('http://a', 0), undefined, 'nothing known')
  reach.reached('http://a')
  reach.missed('http://a', 'ECONNREFUSED')
  t.equal(reach.unreachable('http://a', 60_000), undefined, 'reached within the window: a write arriving now may still get through')
  t.same(reach.unreachable('http://a', 0), { origin: 'http://a', error: 'ECONNREFUSED' }, 'past the window')
  t.equal(reach.unreachable('http://b', 0), undefined, 'another primary: nothing known about it')
  reach.missed('http://b', 'ENOTFOUND')
  t.same(reach.unreachable('http://b', 60_000), { origin: 'http://b', error: 'ENOTFOUND' }, 'a new primary starts a new record: never reached')
  t.equal(reach.unreachable('http://a', 0), undefined, 'the old record is gone')
})

t.test("asking the primary's health: an answer of any status is reached; a refusal is missed, by its code", async t => {
  const server = createServer((_req, res) => { res.writeHead(503).end() }).listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  const agent = new Agent()
  t.teardown(async () => { server.close(); await agent.close() })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const reach = new PrimaryReach('me/00000000', () => agent)
  await reach.check(origin, `${origin}/litefs/health`)
  t.equal(reach.unreachable(origin, 0), undefined, 'its app is there, even if its health says 503')
  await reach.check('http://127.0.0.1:9', 'http://127.0.0.1:9/litefs/health')
  t.same(reach.unreachable('http://127.0.0.1:9', 0), { origin: 'http://127.0.0.1:9', error: 'ECONNREFUSED' })
})

t.test("asking the primary's health and reaching this node itself (its own mark echoed with a 508): missed; an app's own 508 is reached", async t => {
  const server = createServer((req, res) => {
    // The node asked echoes its asker's mark only when the mark is its own (health.ts).
    if (req.url === '/self') res.writeHead(508, { 'litefs-proxy-reach': String(req.headers['litefs-proxy-reach']) }).end()
    else res.writeHead(508).end()
  }).listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  const agent = new Agent()
  t.teardown(async () => { server.close(); await agent.close() })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const reach = new PrimaryReach('me/00000000', () => agent)
  await reach.check(origin, `${origin}/other`)
  t.equal(reach.unreachable(origin, 0), undefined, 'a 508 without the mark: some app, there')
  const self = new PrimaryReach('me/00000000', () => agent)
  await self.check(origin, `${origin}/self`)
  t.same(self.unreachable(origin, 0), { origin, error: `${origin} is this node itself, not the primary: is "primaryUrl" right?` })
})

t.test("a primary's app that takes the connection and never answers: missed, as 'no answer within 1000 ms'", async t => {
  const server = createServer(() => {}).listen(0, '127.0.0.1') // holds every request
  await new Promise(resolve => server.once('listening', resolve))
  const agent = new Agent()
  t.teardown(async () => { server.closeAllConnections(); server.close(); await agent.close() })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const reach = new PrimaryReach('me/00000000', () => agent)
  await reach.check(origin, `${origin}/litefs/health`)
  t.same(reach.unreachable(origin, 0), { origin, error: 'no answer within 1000 ms' })
})

t.test('reasonOf: the code when there is one, else the message', async t => {
  t.equal(reasonOf(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED')
  t.equal(reasonOf(new Error('Invalid URL')), 'Invalid URL')
  t.equal(reasonOf('a string thrown'), 'a string thrown')
})
