// A primary named by LiteFS counts once `.lag` proves the replica hears from it
// (primary-confirm.ts). `.lag` is driven here by hand: the last-contact instant
// (`now − lag`) standing still is "no frame", moving is "a frame arrived".
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { PrimaryConfirmation } from '../lib/core/primary-confirm.js'
import { until } from './helpers/fake-litefs.js'

/** `.lag` as LiteFS computes it: now − the instant of the last frame (undefined: unreadable). */
function lagFile (): { read: () => number | undefined, contactAt: (at: number | undefined) => void, reads: () => number } {
  let contact: number | undefined = performance.now() - 5000
  let reads = 0
  return {
    read: () => { reads++; return contact === undefined ? undefined : Math.round(performance.now() - contact) },
    contactAt: at => { contact = at },
    reads: () => reads
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

t.test('a snapshot with a fresh .lag is believed at once; a stale one waits for a frame', async t => {
  const lag = lagFile()
  const got: string[] = []
  const c = new PrimaryConfirmation(lag.read, h => got.push(h))
  lag.contactAt(performance.now() - 10)
  c.announce('node-a', true)
  t.same(got, ['node-a'], 'heard from it within the heartbeat interval: connected')
  t.equal(c.pending, undefined)

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
