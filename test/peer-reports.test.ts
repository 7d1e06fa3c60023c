// Replica reports (issue 21): what a replica's litefs-proxy tells the primary's,
// how it is signed, and the primary's table of candidates and the answers held
// until every connected candidate has a write.
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { PeerTable, STALE, HEARTBEAT, parseReport } from '../lib/core/peer-table.js'
import { ReplicaReporter, signReport, verifyReport, PEER_HEADER, SKEW } from '../lib/core/replica-report.js'
import { silentLogger } from '../lib/core/logger.js'
import { until } from './helpers/fake-litefs.js'

const SECRET = 'a-shared-secret-of-some-length'

t.test('a report, signed and checked', async t => {
  const body = '{"hostname":"node-2","candidate":true,"positions":{}}'
  const sig = signReport(SECRET, body, 1_000_000)
  t.ok(verifyReport([SECRET], body, sig, 1_000_000))
  t.ok(verifyReport(['old-secret-of-some-length', SECRET], body, sig, 1_000_000 + SKEW), 'any of the secrets; at the edge of the skew')
  t.notOk(verifyReport([SECRET], body, sig, 1_000_000 + SKEW + 1), 'too old: a replay')
  t.notOk(verifyReport([SECRET], body, sig, 1_000_000 - SKEW - 1), 'too far ahead')
  t.notOk(verifyReport([SECRET], body + ' ', sig, 1_000_000), 'another body')
  t.notOk(verifyReport(['another-secret-of-length'], body, sig, 1_000_000), 'another secret')
  for (const bad of [undefined, '', 'x', '1.2', `${1_000_000}.${'a'.repeat(42)}`, `abc.${'a'.repeat(43)}`]) t.notOk(verifyReport([SECRET], body, bad, 1_000_000), `malformed: ${String(bad)}`)

  t.same(parseReport('{"hostname":"n","candidate":false,"positions":{"app.db":"000000000000000a"}}'), { hostname: 'n', candidate: false, positions: { 'app.db': '000000000000000a' } })
  for (const bad of ['nope', 'null', '[]', '{}', '{"hostname":"","candidate":true,"positions":{}}', `{"hostname":"${'h'.repeat(254)}","candidate":true,"positions":{}}`,
    '{"hostname":"n","candidate":"yes","positions":{}}', '{"hostname":"n","candidate":true,"positions":[]}', '{"hostname":"n","candidate":true,"positions":null}',
    '{"hostname":"n","candidate":true,"positions":{"app.db":"10"}}', '{"hostname":"n","candidate":true,"positions":{"":"000000000000000a"}}',
    '{"hostname":"n","candidate":true,"positions":{"app.db":"000000000000000A"}}']) t.equal(parseReport(bad), undefined, `refused: ${bad.slice(0, 60)}`)
  const many: Record<string, string> = {}
  for (let i = 0; i < 1001; i++) many[`db${i}`] = '0000000000000001'
  t.equal(parseReport(JSON.stringify({ hostname: 'n', candidate: true, positions: many })), undefined, 'at most 1000 databases')
  t.same(parseReport('{"hostname":"n","candidate":true,"positions":{},"instance":"aB3_-x"}'), { hostname: 'n', candidate: true, positions: {}, instance: 'aB3_-x' }, 'the reporting process')
  for (const instance of ['', 'x'.repeat(65), 'a b', 7]) t.equal(parseReport(JSON.stringify({ hostname: 'n', candidate: true, positions: {}, instance })), undefined, `refused instance ${JSON.stringify(instance)}`)
})

t.test('two processes reporting one name are two peers, each counted, and that is said; a restart is not', async t => {
  const shared: string[] = []
  const table = new PeerTable(1, hostname => { shared.push(hostname) })
  t.teardown(() => table.close())
  const at = (n: number): string => n.toString(16).padStart(16, '0')
  table.report({ hostname: 'vm', candidate: true, positions: { 'app.db': at(9) }, instance: 'a' }, 0)
  table.report({ hostname: 'vm', candidate: true, positions: { 'app.db': at(4) }, instance: 'b' }, 10)
  t.same(table.replicated('app.db', 20), { candidates: 2, position: 4n }, 'the one behind counts: its report is not the other\'s')
  t.same(shared, [], 'not said yet: b could be the restart of a')
  table.report({ hostname: 'vm', candidate: true, positions: { 'app.db': at(9) }, instance: 'a' }, 30)
  t.same(shared, ['vm'], 'a reports again after b began: both run')
  // A restart: the old process goes silent, the new one reports on.
  const restarts: string[] = []
  const other = new PeerTable(1, hostname => { restarts.push(hostname) })
  t.teardown(() => other.close())
  other.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(3) }, instance: 'old' }, 0)
  other.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(5) }, instance: 'new' }, 100)
  other.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(6) }, instance: 'new' }, 200)
  t.same(restarts, [], 'a restart is not two nodes')
  t.same(other.replicated('app.db', 300), { candidates: 2, position: 3n }, 'the old row counts until it is STALE…')
  t.same(other.replicated('app.db', STALE + 1), { candidates: 1, position: 6n }, '…then only the running one')
  other.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(7) }, instance: 'new' }, STALE + 100)
  t.same(other.peers(STALE + 100).map(p => p.hostname), ['node-2'], 'and its row is dropped: restarts do not pile up')
  const quiet = new PeerTable() // no one to tell: two processes under one name are still counted apart
  t.teardown(() => quiet.close())
  quiet.report({ hostname: 'vm', candidate: true, positions: {}, instance: 'a' }, 0)
  quiet.report({ hostname: 'vm', candidate: true, positions: {}, instance: 'b' }, 1)
  quiet.report({ hostname: 'vm', candidate: true, positions: {}, instance: 'a' }, 2)
  t.equal(quiet.peers(3).length, 2)
})

t.test('the table: every connected candidate, at least min of them', async t => {
  const table = new PeerTable()
  t.teardown(() => table.close())
  const at = (hex: number): string => hex.toString(16).padStart(16, '0')
  t.same(table.replicated('app.db', 0), { candidates: 0, position: undefined })
  table.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(5) } }, 0)
  table.report({ hostname: 'node-3', candidate: true, positions: { 'app.db': at(7) } }, 0)
  table.report({ hostname: 'node-4', candidate: false, positions: { 'app.db': at(1) } }, 0)
  t.same(table.replicated('app.db', 10), { candidates: 2, position: 5n }, 'the lowest candidate; a non-candidate does not count')
  t.same(table.replicated('other.db', 10), { candidates: 2, position: 0n }, 'a database a peer has not reported is at 0')
  t.same(table.replicated('app.db', STALE), { candidates: 0, position: undefined }, 'silent for STALE ms: not connected')
  t.same(table.peers(10).map(p => [p.hostname, p.connected]), [['node-2', true], ['node-3', true], ['node-4', true]])
  t.same(table.peers(STALE).map(p => p.connected), [false, false, false])
  const since = table.peers(10)[0].since
  table.report({ hostname: 'node-2', candidate: true, positions: {} }, 100)
  t.equal(table.peers(100)[0].since, since, 'a run of reports keeps its start')
  t.equal(table.peers(100)[0].positions.get('app.db'), 5n, 'a report naming no database keeps what was known')
  table.report({ hostname: 'node-2', candidate: true, positions: {} }, 100 + STALE)
  t.equal(table.peers(100 + STALE)[0].positions.size, 0, 'back after silence: a new row')
})

t.test('answers wait for the candidates, in TXID order; a timeout; cancel; close', async t => {
  const table = new PeerTable()
  const at = (n: number): string => n.toString(16).padStart(16, '0')
  const ended: string[] = []
  table.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(5) } })
  table.wait('app.db', 5n, 1000, r => ended.push(`5:${r}`))
  t.same(ended, ['5:replicated'], 'there already: at once')
  table.wait('app.db', 7n, 10_000, r => ended.push(`7:${r}`))
  table.wait('app.db', 6n, 10_000, r => ended.push(`6:${r}`))
  const gone = table.wait('app.db', 6n, 10_000, r => ended.push(`gone:${r}`))
  table.cancel(gone)
  table.cancel(gone) // twice: nothing
  table.cancel(undefined)
  table.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(6) } })
  t.same(ended, ['5:replicated', '6:replicated'], '7 not there yet; the cancelled one never called')
  table.report({ hostname: 'node-3', candidate: true, positions: { 'app.db': at(9) } })
  t.same(ended.length, 2, 'a second candidate at 9 does not lift the first one at 6')
  table.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(7) } })
  t.same(ended.slice(2), ['7:replicated'])
  table.wait('app.db', 50n, 30, r => ended.push(`50:${r}`))
  await until(() => ended.length === 4, 'the timeout')
  t.same(ended.slice(3), ['50:timeout'])
  table.wait('app.db', 60n, 10_000, r => ended.push(`60:${r}`))
  table.close()
  t.same(ended.slice(4), ['60:closed'])
  table.wait('app.db', 1n, 10, r => ended.push(`after:${r}`))
  t.same(ended.slice(5), ['after:closed'])
})

t.test('minCandidates: a write must reach at least that many', async t => {
  const table = new PeerTable(2)
  t.teardown(() => table.close())
  const at = (n: number): string => n.toString(16).padStart(16, '0')
  const ended: string[] = []
  table.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(9) } })
  table.wait('app.db', 3n, 60_000, r => ended.push(r))
  table.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(10) } })
  t.same(ended, [], 'one candidate has it; two are needed')
  table.report({ hostname: 'node-3', candidate: false, positions: { 'app.db': at(10) } })
  t.same(ended, [], 'a replica that cannot become primary does not count')
  table.report({ hostname: 'node-4', candidate: true, positions: { 'app.db': at(3) } })
  t.same(ended, ['replicated'])
})

t.test('waiting with no peer at all: the timeout ends it', async t => {
  const table = new PeerTable()
  t.teardown(() => table.close())
  const result = await new Promise(resolve => table.wait('app.db', 1n, 20, resolve))
  t.equal(result, 'timeout')
})

t.test('a laggard candidate falling silent releases what waited only for it', async t => {
  const table = new PeerTable()
  t.teardown(() => table.close())
  const at = (n: number): string => n.toString(16).padStart(16, '0')
  const ended: string[] = []
  table.report({ hostname: 'slow', candidate: true, positions: { 'app.db': at(1) } })
  table.wait('app.db', 3n, 60_000, r => ended.push(r))
  // node-2 keeps reporting (its heartbeat); 'slow' goes silent.
  const beat = setInterval(() => table.report({ hostname: 'node-2', candidate: true, positions: { 'app.db': at(3) } }), HEARTBEAT / 5)
  t.teardown(() => clearInterval(beat))
  await until(() => ended.length === 1, 'the silent laggard stops counting')
  t.same(ended, ['replicated'])
})

t.test('the reporter: signed POSTs on change and on a heartbeat; failures said once', async t => {
  const got: Array<{ body: string, ok: boolean }> = []
  let status = 204
  const server = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', c => { body += c })
    req.on('end', () => {
      got.push({ body, ok: verifyReport([SECRET], body, req.headers[PEER_HEADER] as string) })
      res.writeHead(status).end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/litefs/report`
  const agent = new Agent()
  const positions = new Map([['app.db', 3n]])
  let primary: string | undefined
  let candidate: boolean | undefined = true
  const warns: string[] = []
  const infos: string[] = []
  const reporter = new ReplicaReporter({ hostname: 'node-2', candidate: () => candidate, url: () => primary, positions: () => positions }, SECRET, agent,
    { ...silentLogger, warn: (_o, m) => warns.push(m), info: (_o, m) => infos.push(m) })
  t.teardown(async () => { reporter.close(); await agent.close(); server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })

  reporter.start()
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(got.length, 0, 'no primary known: nothing sent')
  primary = url
  candidate = undefined
  reporter.changed()
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(got.length, 0, 'candidacy unknown: nothing sent')
  candidate = true
  reporter.changed()
  await until(() => got.length === 1, 'a report')
  t.same(JSON.parse(got[0].body), { hostname: 'node-2', candidate: true, positions: { 'app.db': '0000000000000003' } })
  t.ok(got[0].ok, 'signed with the secret')
  await until(() => got.length === 2, 'a heartbeat, nothing having changed')
  // Changes while one is in flight ride on the next.
  for (let i = 4; i < 20; i++) { positions.set('app.db', BigInt(i)); reporter.changed() }
  await until(() => JSON.parse(got[got.length - 1].body).positions['app.db'] === '0000000000000013', 'the latest position arrives')
  t.ok(got.length <= 5, `coalesced: ${got.length} reports for 16 changes`)
  status = 500
  await until(() => warns.length === 1, 'a refusal said')
  t.match(warns[0], /did not take this replica's report/)
  const refused500 = reporter.refused
  await until(() => reporter.refused > refused500 + 1, 'still trying')
  t.equal(warns.length, 1, 'the same reason: not said again')
  status = 403
  await until(() => warns.length === 2, 'a new reason is said (walk 5: a primary not listening yet, then refusing the secret, hid the secret)')
  const refused = reporter.refused
  await until(() => reporter.refused > refused + 1, 'still trying')
  t.equal(warns.length, 2, 'the same reason again: not said again')
  status = 204
  await until(() => infos.length === 1, 'said when it works again')
  primary = 'http://127.0.0.1:1/litefs/report'
  await until(() => warns.length === 3, 'an unreachable primary is said too')
  // Closed while a report is in flight, with a change waiting: nothing more is sent.
  primary = url
  status = 204
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  server.removeAllListeners('request')
  server.on('request', (req: IncomingMessage, res) => { req.resume(); req.on('end', () => { void gate.then(() => { got.push({ body: '', ok: true }); res.writeHead(204).end() }) }) })
  const before = got.length
  reporter.changed()
  await new Promise(resolve => setTimeout(resolve, 50))
  reporter.changed()
  reporter.close()
  release()
  await until(() => got.length === before + 1, 'the one in flight lands')
  await new Promise(resolve => setTimeout(resolve, HEARTBEAT * 2))
  t.equal(got.length, before + 1, 'nothing after close')
  reporter.changed() // closed: nothing
})
