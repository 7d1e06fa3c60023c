// A primary named by LiteFS counts once `.lag` proves the replica hears from it
// (primary-confirm.ts). `.lag` is driven here by hand: the last-contact instant
// (`now − lag`) standing still is "no frame", moving is "a frame arrived".
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { PrimaryConfirmation } from '../lib/core/primary-confirm.js'
import { until } from './helpers/fake-litefs.js'

/** `.lag` as LiteFS computes it: now − the instant of the last frame (undefined: unreadable), read asynchronously as the mount is. */
function lagFile (): { read: () => Promise<number | undefined>, contactAt: (at: number | undefined) => void, reads: () => number } {
  let contact: number | undefined = performance.now() - 5000
  let reads = 0
  return {
    read: async () => { reads++; return contact === undefined ? undefined : Math.round(performance.now() - contact) },
    contactAt: at => { contact = at },
    reads: () => reads
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

t.test('a snapshot with a fresh .lag is believed at its first read; a stale one waits for a frame', async t => {
  const lag = lagFile()
  const got: string[] = []
  const c = new PrimaryConfirmation(lag.read, h => got.push(h))
  lag.contactAt(performance.now() - 10)
  c.announce('node-a', true)
  t.equal(c.pending, 'node-a', 'pending while .lag is read')
  await until(() => got.length === 1)
  t.same(got, ['node-a'], 'heard from it within the heartbeat interval: connected')
  t.equal(c.pending, undefined)
  t.equal(lag.reads(), 1, 'one read')

  lag.contactAt(performance.now() - 5000)
  c.announce('node-b', true)
  t.equal(c.pending, 'node-b')
  c.announce('node-b', false) // the same name again changes nothing
  const before = lag.reads()
  await until(() => lag.reads() > before + 3, 'checked a few times')
  t.same(got, ['node-a'], 'no frame: not confirmed')
  lag.contactAt(performance.now()) // a heartbeat
  await until(() => got.length === 2)
  t.same(got, ['node-a', 'node-b'])
  t.equal(c.pending, undefined)
})

t.test('a change is never believed at once; a retraction cancels it', async t => {
  const lag = lagFile()
  const got: string[] = []
  const c = new PrimaryConfirmation(lag.read, h => got.push(h))
  lag.contactAt(performance.now() - 10)
  c.announce('node-a', false)
  t.equal(c.pending, 'node-a', 'primaryChange comes before the dial: prove it first')
  c.cancel()
  lag.contactAt(performance.now())
  await sleep(50)
  t.same(got, [], 'retracted: never confirmed')
})

t.test('a new primary whose clock is behind moves the contact instant backwards: still a frame', async t => {
  const lag = lagFile()
  const got: string[] = []
  const c = new PrimaryConfirmation(lag.read, h => got.push(h))
  lag.contactAt(performance.now() - 1500)
  c.announce('node-c', false)
  await until(() => lag.reads() > 2)
  lag.contactAt(performance.now() - 9000) // its timestamps are 9 s behind ours
  await until(() => got.length === 1)
  t.same(got, ['node-c'])
})

t.test('without a readable .lag: believed once the announcement stood; a later readable .lag sets the baseline', async t => {
  const lag = lagFile()
  const got: string[] = []
  const c = new PrimaryConfirmation(lag.read, h => got.push(h))
  lag.contactAt(undefined)
  c.announce('node-d', true)
  t.equal(c.pending, 'node-d')
  await until(() => got.length === 1, 'settled')
  t.same(got, ['node-d'])

  let base = lag.reads()
  c.announce('node-e', false) // .lag unreadable at first…
  await until(() => lag.reads() > base + 2)
  lag.contactAt(performance.now() - 3000) // …then readable: its first value is the baseline
  base = lag.reads()
  await until(() => lag.reads() > base + 3)
  t.equal(got.length, 1, 'a baseline alone proves nothing')
  lag.contactAt(undefined) // unreadable again while a baseline exists: keep waiting
  base = lag.reads()
  await until(() => lag.reads() > base + 25, 'past the settling time')
  t.equal(got.length, 1)
  lag.contactAt(performance.now())
  await until(() => got.length === 2)
  t.same(got, ['node-d', 'node-e'])
})

t.test('an announcement that stands without contact is checked less often after a second', async t => {
  const lag = lagFile()
  const got: string[] = []
  const c = new PrimaryConfirmation(lag.read, h => got.push(h))
  c.announce('node-f', false)
  await sleep(1300)
  const early = lag.reads()
  await sleep(300)
  t.ok(lag.reads() - early < 10, 'slower checks (no assertion on time, only on how many)')
  t.same(got, [])
  c.cancel()
})

t.test('a .lag read that never answers (LiteFS stopped) leaves the announcement pending and the event loop free', async t => {
  let reads = 0
  const got: string[] = []
  const c = new PrimaryConfirmation(async () => { reads++; return await new Promise<number | undefined>(() => {}) }, h => got.push(h))
  c.announce('node-g', true)
  for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve)) // the loop turns
  t.equal(reads, 1, 'one read in flight, no second one queued behind it')
  t.equal(c.pending, 'node-g')
  t.same(got, [])
  c.cancel()
})

t.test('an answer that comes after a cancel or a newer announcement is dropped', async t => {
  const resolvers: Array<(lag: number | undefined) => void> = []
  const got: string[] = []
  const c = new PrimaryConfirmation(async () => await new Promise<number | undefined>(resolve => { resolvers.push(resolve) }), h => got.push(h))
  c.announce('node-h', true)
  c.cancel()
  resolvers[0](5) // fresh: would have confirmed node-h
  await sleep(20)
  t.same(got, [], 'cancelled: its read\'s answer is about nothing pending')
  c.announce('node-i', true)
  c.announce('node-j', true) // LiteFS named another before the first read answered
  resolvers[1](5)
  await sleep(20)
  t.same(got, [], 'node-i was replaced')
  resolvers[2](5)
  await until(() => got.length === 1)
  t.same(got, ['node-j'])
})

t.test('slow reads (a busy loop, a LiteFS that paused) widen the span in doubt: they never prove a frame', async t => {
  // LiteFS computes the lag at the start of each read; the first answer reaches
  // the loop at once, every later one 60 ms after. Nothing arrives from the
  // primary: the instant of the last frame stands still.
  const contact = performance.now() - 3000
  let reads = 0
  const got: string[] = []
  const c = new PrimaryConfirmation(async () => {
    reads++
    const lag = Math.round(performance.now() - contact)
    if (reads > 1) await sleep(60)
    return lag
  }, h => got.push(h))
  c.announce('node-k', false)
  await until(() => reads >= 5, 'sampled a few times')
  t.same(got, [], 'a 60 ms delay is no frame (stamped when the answer came, the instant would move 60 ms > MOVED)')
  c.cancel()
})
