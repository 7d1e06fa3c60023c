// Asking the primary for its position (primary-probe.ts), against a stand-in
// primary that answers what a litefs-proxy health check answers — or not.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { NodeState, type WaitResult } from '../lib/core/node-state.js'
import { PrimaryProbe } from '../lib/core/primary-probe.js'
import { until } from './helpers/fake-litefs.js'

const silent = { debug () {}, info () {}, warn () {}, error () {} }

async function primary (t: typeof import('tap'), answer: () => [number, string]): Promise<{ url: string, asked: () => number }> {
  let asked = 0
  const server: Server = createServer((_req, res) => {
    asked++
    const [status, body] = answer()
    res.writeHead(status, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/litefs/health`, asked: () => asked }
}

function setup (t: typeof import('tap'), url: () => string | undefined, log: typeof silent = silent): { state: NodeState, probe: PrimaryProbe, results: WaitResult[], hold: (txid: bigint, db?: string) => void, of: Map<string, WaitResult[]> } {
  const state = new NodeState({ readPosition: () => undefined, readLag: () => 0 })
  state.setRole('replica', 'node-a')
  const agent = new Agent()
  const probe = new PrimaryProbe(state, 'app.db', url, () => agent, log)
  t.teardown(async () => { probe.close(); await state.close(); await agent.close() })
  const results: WaitResult[] = []
  const of = new Map<string, WaitResult[]>() // per database
  const hold = (txid: bigint, db = 'app.db'): void => {
    state.waitForPosition(db, txid, 60_000, r => {
      results.push(r)
      of.set(db, [...(of.get(db) ?? []), r])
    })
    probe.held(db, txid)
  }
  return { state, probe, results, hold, of }
}

t.test('a TXID above the primary is unreachable; one at or below it is waited for, and asks nothing more', async t => {
  let txid = '0000000000000003'
  const p = await primary(t, () => [200, JSON.stringify({ status: 'ok', role: 'primary', txid })])
  const lines: string[] = [] // a logger that JSON.stringify()s its fields, as many custom ones do
  const json = { ...silent, info: (fields: object, msg: string) => { lines.push(JSON.stringify({ ...fields, msg })) } }
  const { state, results, hold } = setup(t, () => p.url, json)
  hold(5n)
  hold(3n)
  await until(() => results.length === 1, 'the unreachable one served')
  t.same(results, ['unreachable'])
  t.match(JSON.parse(lines[0] ?? '{}'), { db: 'app.db', primaryTxid: '0000000000000003', reads: 1 }, 'the primary\'s position logged as a TXID string, not a BigInt')
  t.equal(state.waiterCount, 1, 'TXID 3 exists on the primary: waited for')
  const asked = p.asked()
  hold(2n) // at or below what the primary was seen at: no question
  t.equal(p.asked(), asked)
  state.setPosition('app.db', 3n)
  t.same(results, ['unreachable', 'ready', 'ready'])
  txid = 'garbage'
  hold(9n)
  await until(() => p.asked() === asked + 1)
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(state.waiterCount, 1, 'an answer without a TXID settles nothing')
})

t.test('answers that are not a primary\'s, errors, and no primary known: nothing is released', async t => {
  for (const [label, status, body] of [
    ['a replica answers', 200, '{"status":"ok","role":"replica","txid":"0000000000000001"}'],
    ['unavailable', 503, '{"status":"unavailable","role":"unknown","txid":"0000000000000001"}'],
      ['not JSON', 200, 'hello'],
    ['a primary without any position', 200, '{"status":"ok","role":"primary","txid":null,"databases":"none"}'],
    ['databases null', 200, '{"status":"ok","role":"primary","txid":null,"databases":null}'],
    ['databases a list', 200, '{"status":"ok","role":"primary","txid":null,"databases":["app.db"]}'],
    ['positions that are not strings', 200, '{"status":"ok","role":"primary","txid":5,"databases":{"app.db":5}}']
  ] as const) {
    const p = await primary(t, () => [status, body])
    const { state, hold } = setup(t, () => p.url)
    hold(5n)
    await until(() => p.asked() === 1, label)
    await new Promise(resolve => setTimeout(resolve, 20))
    t.equal(state.waiterCount, 1, `${label}: still held`)
  }
  const nowhere = setup(t, () => 'http://127.0.0.1:9/litefs/health')
  nowhere.hold(5n)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(nowhere.state.waiterCount, 1, 'no answer at all: still held')
  const unknown = setup(t, () => undefined)
  unknown.hold(5n)
  await new Promise(resolve => setTimeout(resolve, 60))
  t.equal(unknown.state.waiterCount, 1, 'no primary to ask')
  t.equal(unknown.state.releaseUnreachable('other.db', 1n, Infinity), 0, 'nothing held for that database')
})

t.test('reads held while a question is on its way get a question of their own', async t => {
  let answers = 0
  const p = await primary(t, () => { answers++; return [200, JSON.stringify({ status: 'ok', role: 'primary', txid: '0000000000000001' })] })
  const { results, hold } = setup(t, () => p.url)
  hold(5n)
  await until(() => answers === 1)
  hold(6n) // held after the first question was sent
  await until(() => results.length === 2)
  t.same(results, ['unreachable', 'unreachable'])
  t.ok(p.asked() >= 2)
})

t.test('several databases: one answer settles each one\'s held reads; one the primary does not list, it does not have', async t => {
  const p = await primary(t, () => [200, JSON.stringify({ status: 'ok', role: 'primary', txid: '0000000000000003', databases: { 'app.db': '0000000000000003', 'cache.db': '0000000000000007', 'bad.db': 'garbage' } })])
  const { state, of, hold } = setup(t, () => p.url)
  hold(9n, 'cache.db') // above the primary's cache.db
  hold(7n, 'cache.db') // the primary has it: replication brings it
  hold(1n, 'ghost.db') // not on the primary at all (a forged token, or a database dropped in a restore)
  hold(4n) // above the primary's app.db
  await until(() => of.get('ghost.db')?.length === 1 && of.get('app.db')?.length === 1 && of.get('cache.db')?.length === 1, 'one answer for every database')
  t.same([of.get('cache.db'), of.get('ghost.db'), of.get('app.db')], [['unreachable'], ['unreachable'], ['unreachable']])
  t.equal(state.waiterCount, 1, 'cache.db at 7 is waited for')
  const asked = p.asked()
  hold(6n, 'cache.db') // at or below what the primary was seen at: no question
  hold(2n, 'bad.db') // a position the primary wrote badly: listed, so nothing to settle it with but "absent"
  await until(() => of.get('bad.db')?.length === 1)
  t.equal(p.asked(), asked + 1, 'only bad.db asked again')
  state.setPosition('cache.db', 7n)
  t.same(of.get('cache.db'), ['unreachable', 'ready', 'ready'])
})

t.test('several databases held, a primary that reports only its main database: only that one is settled', async t => {
  const p = await primary(t, () => [200, JSON.stringify({ status: 'ok', role: 'primary', txid: '0000000000000003' })])
  const { state, of, hold } = setup(t, () => p.url)
  hold(9n, 'cache.db')
  hold(4n)
  await until(() => of.get('app.db')?.length === 1)
  await new Promise(resolve => setTimeout(resolve, 20))
  t.same(of.get('app.db'), ['unreachable'])
  t.equal(state.waiterCount, 1, 'cache.db: this primary said nothing of it, still held')
})

t.test('a read held while a slow question is on its way: asked again once that one ends, not before', async t => {
  let answers = 0
  const server = createServer((_req, res) => {
    // Slower than PROBE_AFTER: the next tick finds the first question still out.
    setTimeout(() => { answers++; res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', role: 'primary', txid: '0000000000000001' })) }, 150)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  const { results, hold } = setup(t, () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/litefs/health`)
  hold(5n)
  await new Promise(resolve => setTimeout(resolve, 50)) // the first question is out
  hold(6n)
  await until(() => results.length === 2, 'both served')
  t.same(results, ['unreachable', 'unreachable'])
  t.ok(answers >= 1)
})

t.test('a read that caught up before the probe\'s tick: nothing is asked', async t => {
  const p = await primary(t, () => [200, JSON.stringify({ status: 'ok', role: 'primary', txid: '0000000000000009' })])
  const { state, results, hold } = setup(t, () => p.url)
  hold(7n)
  state.setPosition('app.db', 7n) // replication brought it within PROBE_AFTER
  t.same(results, ['ready'])
  await new Promise(resolve => setTimeout(resolve, 60)) // past the tick
  t.equal(p.asked(), 0, 'no read waits: no question')
})
