// The failover suite's history checker (test/helpers/failover-history.ts) on
// hand-made histories: each property found when it is there, and not when it
// is not.
import t from 'tap'
import { checkHistory, formatReports, now, type History, type LeaseSample, type RequestRecord } from './helpers/failover-history.js'

const write = (token: string, start: number, end: number, status: number | undefined, node: string | undefined, cookie?: string): RequestRecord =>
  ({ kind: 'write', token, client: 0, start, end, status, node, cookie })
const read = (token: string, start: number, end: number, status: number | undefined, found: boolean, cookie = 'c'): RequestRecord =>
  ({ kind: 'read', token, client: 0, start, end, status, node: 'node-2', cookie, found })
/** One poll every 100 ms from 0 to `until`, each answered 5 ms after it was sent; `holderAt(t)` says who held the lease. */
const polls = (until: number, holderAt: (t: number) => string | undefined): LeaseSample[] => {
  const out: LeaseSample[] = []
  for (let at = 0; at <= until; at += 100) out.push({ at, atEnd: at + 5, holder: holderAt(at) })
  return out
}
const final = (...tokens: string[]): Map<string, number> => {
  const m = new Map<string, number>()
  for (const tok of tokens) m.set(tok, (m.get(tok) ?? 0) + 1)
  return m
}
const BOUND = 1_000

t.test('lost: acknowledged 2xx and absent from the final database; a refused or unanswered write is not lost', async t => {
  const h: History = {
    requests: [write('a', 10, 20, 201, 'node-1', 'c'), write('b', 10, 20, 201, 'node-1'), write('c', 10, 20, 503, 'node-1'), write('d', 10, 20, undefined, undefined)],
    lease: polls(1000, () => 'node-1'),
    faults: []
  }
  const r = checkHistory(h, final('a'), BOUND)
  t.same(r.lost, ['b'])
  t.equal(r.writes, 4)
  t.equal(r.acked, 2)
  t.same(checkHistory(h, final('a', 'b'), BOUND).lost, [])
})

t.test('doubled: a token twice in the final database, whatever its answer was', async t => {
  const h: History = { requests: [write('a', 10, 20, 201, 'node-1'), write('b', 10, 20, 504, 'node-1')], lease: [], faults: [] }
  t.same(checkHistory(h, final('a', 'b', 'b'), BOUND).doubled, ['b'])
  t.same(checkHistory(h, final('a', 'b'), BOUND).doubled, [])
})

t.test('a 503 (nothing applied) whose token is in the database is reported', async t => {
  const h: History = { requests: [write('a', 10, 20, 503, 'node-1'), write('b', 10, 20, 503, 'node-1')], lease: [], faults: [] }
  t.same(checkHistory(h, final('a'), BOUND).refusedButApplied, ['a'])
  t.same(checkHistory(h, final(), BOUND).refusedButApplied, [])
})

t.test('stale own-read: a 2xx read with the cookie of its acknowledged write that misses it; not when found, failed, cookieless, or the write was lost', async t => {
  const base = [write('a', 10, 20, 201, 'node-1', 'c'), write('b', 10, 20, 201, 'node-1', 'c'), write('n', 10, 20, 201, 'node-1')]
  const stale = read('a', 30, 40, 200, false)
  const r = checkHistory({ requests: [...base, stale], lease: [], faults: [] }, final('a', 'b', 'n'), BOUND)
  t.same(r.staleOwnReads, [stale])
  for (const [why, rec, db] of [
    ['found', read('a', 30, 40, 200, true), final('a', 'b', 'n')],
    ['failed read', read('a', 30, 40, 504, false), final('a', 'b', 'n')],
    ['the write was lost', read('b', 30, 40, 200, false), final('a', 'n')],
    ['the write set no cookie', read('n', 30, 40, 200, false), final('a', 'b', 'n')],
    ['the read carried no cookie', { ...read('a', 30, 40, 200, false), cookie: undefined }, final('a', 'b', 'n')]
  ] as const) {
    t.same(checkHistory({ requests: [...base, rec], lease: [], faults: [] }, db, BOUND).staleOwnReads, [], why)
  }
})

t.test('split brain: an acknowledgement by a node that held the lease at no moment of the request, at the polls\' resolution', async t => {
  // node-1 holds the lease until 500, node-2 from 500 on (the polls at 500 and after say node-2).
  const lease = polls(1000, at => at < 500 ? 'node-1' : 'node-2')
  const late = write('late', 700, 720, 201, 'node-1')
  const r = checkHistory({ requests: [write('early', 200, 220, 201, 'node-1'), write('new', 700, 720, 201, 'node-2'), late], lease, faults: [] }, final('early', 'new', 'late'), BOUND)
  t.same(r.splitBrain, [late], 'node-1 acknowledging at 700 is flagged; node-1 at 200 and node-2 at 700 are not')
  t.equal(r.unchecked, 0)
  // Across the change of holder (the poll before says node-1): not counted, the change may have come after the commit.
  const straddle = write('straddle', 450, 520, 201, 'node-1')
  t.same(checkHistory({ requests: [straddle], lease, faults: [] }, final('straddle'), BOUND).splitBrain, [])
  // Between two polls that both say node-2 and a request fully inside: counted.
  t.same(checkHistory({ requests: [write('x', 610, 690, 201, 'node-1')], lease, faults: [] }, final('x'), BOUND).splitBrain.length, 1)
  // A free lease (nobody) counts against the acknowledging node too.
  const free = polls(1000, () => undefined)
  t.equal(checkHistory({ requests: [write('f', 300, 320, 201, 'node-1')], lease: free, faults: [] }, final('f'), BOUND).splitBrain.length, 1)
  // A failed poll says nothing.
  const failed: LeaseSample[] = lease.map(s => s.at >= 600 && s.at <= 700 ? { ...s, holder: undefined, error: 'timeout' } : s)
  t.same(checkHistory({ requests: [write('y', 610, 690, 201, 'node-2')], lease: failed, faults: [] }, final('y'), BOUND).splitBrain, [], 'failed polls are skipped: the bracket is the polls at 500 and 800')
  // Not bracketed by polls on both sides: unchecked, not clean and not flagged.
  const edge = checkHistory({ requests: [write('z', 990, 1100, 201, 'node-1')], lease, faults: [] }, final('z'), BOUND)
  t.same([edge.splitBrain.length, edge.unchecked], [0, 1])
  // Non-2xx answers are no acknowledgement.
  t.same(checkHistory({ requests: [write('w', 700, 720, 503, 'node-1')], lease, faults: [] }, final(), BOUND).splitBrain, [])
})

t.test('outside the bound: an answer, or a failure, later than the bound', async t => {
  const slow = write('s', 0, 1_500, 201, 'node-1')
  const hung = write('h', 0, 1_200, undefined, undefined)
  const refused = { ...write('r', 0, 10, 503, undefined), code: 'LITEFS_NO_PRIMARY' }
  const r = checkHistory({ requests: [write('f', 0, 900, 201, 'node-1'), slow, hung, read('f', 0, 1_000, 200, true), refused], lease: [], faults: [] }, final('f', 's'), BOUND)
  t.same(r.outsideBound, [slow, hung])
  t.same(r.statuses, { 201: 2, none: 1, 200: 1, '503/LITEFS_NO_PRIMARY': 1 }, 'statuses, with the error answer\'s code')
})

t.test('failover time: from the fault to the first acknowledged write by another node, within the fault\'s window', async t => {
  const h: History = {
    requests: [
      write('before', 0, 50, 201, 'node-1'),
      write('old', 150, 160, 201, 'node-1'), // the old primary acknowledges once more after the fault
      write('refused', 200, 300, 503, 'node-2'),
      write('new', 1_000, 1_100, 201, 'node-2'),
      write('again', 5_000, 5_050, 201, 'node-2')
    ],
    lease: [],
    faults: [{ at: 100, kind: 'crash', node: 'node-1' }, { at: 4_000, kind: 'crash', node: 'node-2' }]
  }
  const r = checkHistory(h, final('before', 'old', 'new', 'again'), BOUND)
  t.same(r.failovers.map(f => [f.toNewPrimaryMs, f.newPrimary, f.toAnyAckMs]), [[1_000, 'node-2', 60], [undefined, undefined, 1_050]],
    'the second fault (node-2) saw only node-2 acknowledge: no new primary')
  const table = formatReports('crash', [{ label: '#1', report: r }])
  t.match(table, /^crash\ntrial +writes/)
  t.match(table, /1000→node-2 -\(any 1050\)/)
  t.match(formatReports('none', [{ label: '#1', report: checkHistory({ requests: [], lease: [], faults: [{ at: 0, kind: 'x', node: 'n' }] }, final(), BOUND) }]), /-\(any -\)/)
  t.match(formatReports('none', [{ label: '#1', report: checkHistory({ requests: [], lease: [], faults: [] }, final(), BOUND) }]), /#1 +0/)
})

t.test('now() is one increasing clock in milliseconds since the epoch', async t => {
  const a = now()
  const b = now()
  t.ok(b >= a && Math.abs(a - Date.now()) < 1_000)
})
