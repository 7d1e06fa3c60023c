import t from 'tap'
import { SharedRead } from '../lib/core/shared-read.js'

// The rule (DESIGN §3.5): a caller is answered by a read that started after it
// joined, never by one already in flight; one read in flight, one queued.

/** A read whose start is recorded and whose end the test decides. */
function gated (): { shared: SharedRead<number>, started: number[], finish: (value: number) => void, log: string[] } {
  const started: number[] = []
  const log: string[] = []
  let finishing: ((value: number) => void) | undefined
  let reads = 0
  const shared = new SharedRead<number>(async () => await new Promise<number>(resolve => {
    started.push(++reads)
    log.push(`start ${reads}`)
    finishing = resolve
  }))
  return {
    shared,
    started,
    log,
    finish: value => {
      const f = finishing as (value: number) => void
      finishing = undefined
      log.push(`end ${value}`)
      f(value)
    }
  }
}

const turn = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

t.test('callers that join before a read starts share it; a caller that joins while it is in flight gets the next', async t => {
  const g = gated()
  const got: string[] = []
  const join = (who: string): void => { void g.shared.join().then(v => { got.push(`${who}=${v}`); g.log.push(`${who} got ${v}`) }) }
  join('a')
  join('b')
  t.same(g.started, [], 'the read starts once the event loop has handled what is ready now, not at once')
  await turn()
  t.same(g.started, [1], 'one read for both')
  join('c') // ready after read 1 started: read 1 may predate its commit
  join('d')
  await turn()
  t.same(g.started, [1], 'never two reads in flight')
  t.equal(g.shared.queued, true, 'c and d wait for the next read')
  g.finish(10)
  await turn()
  t.same(got, ['a=10', 'b=10'], 'read 1 answers only those who joined before it started')
  t.same(g.started, [1, 2], 'the queued read started as soon as read 1 ended')
  t.equal(g.shared.queued, false)
  join('e') // during read 2
  g.finish(11)
  await turn()
  t.same(got, ['a=10', 'b=10', 'c=11', 'd=11'], 'c and d: read 2, which started after they joined')
  t.same(g.started, [1, 2, 3])
  g.finish(12)
  await turn()
  t.same(got, ['a=10', 'b=10', 'c=11', 'd=11', 'e=12'])
  // The whole history: every answer came from a read that started after its caller joined.
  t.same(g.log, ['start 1', 'end 10', 'start 2', 'a got 10', 'b got 10', 'end 11', 'start 3', 'c got 11', 'd got 11', 'end 12', 'e got 12'])
  await turn()
  t.same(g.started, [1, 2, 3], 'nobody waits: no read')
})

t.test('a caller alone after a quiet time: one read, started after it joined', async t => {
  const g = gated()
  const first = g.shared.join()
  t.equal(g.shared.join(), first, 'joined before the start: the same answer')
  await turn()
  g.finish(7)
  t.equal(await first, 7)
  const later = g.shared.join()
  t.not(later, first, 'a new read for a caller that came after')
  await turn()
  g.finish(8)
  t.equal(await later, 8)
})
