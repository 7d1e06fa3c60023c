import t from 'tap'
import { NodeState, type StateDriver, type WaitResult } from '../lib/core/node-state.js'
import { until } from './helpers/fake-litefs.js'

function driver (): StateDriver & { demands: Array<[string[], boolean]>, pos: bigint | undefined, lag: number | undefined, closed: boolean } {
  const d = {
    demands: [] as Array<[string[], boolean]>,
    pos: undefined as bigint | undefined,
    lag: 12 as number | undefined,
    closed: false,
    readPosition: () => d.pos,
    readLag: () => d.lag,
    demand: (dbs: ReadonlySet<string>, primary: boolean) => { d.demands.push([[...dbs], primary]) },
    close: () => { d.closed = true }
  }
  return d
}

t.test('one position change releases every satisfied waiter, in one pass', async t => {
  const d = driver()
  const s = new NodeState(d)
  const results: Array<[number, WaitResult]> = []
  for (let i = 1; i <= 10; i++) s.waitForPosition('app.db', BigInt(i), 60_000, r => results.push([i, r]))
  s.waitForPosition('other.db', 1n, 60_000, r => results.push([99, r]))
  t.equal(s.waiterCount, 11)
  t.same(d.demands.at(-1), [['app.db', 'other.db'], false], 'the driver learns what is awaited')
  s.setPosition('app.db', 6n)
  t.same(results.map(r => r[0]).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6])
  t.ok(results.every(r => r[1] === 'ready'))
  t.equal(s.waiterCount, 5)
  s.setPosition('app.db', 6n) // nothing more to release
  s.setPosition('nobody.db', 100n)
  t.equal(s.position('nobody.db'), 100n)
  s.setPosition('app.db', 10n)
  t.equal(s.waiterCount, 1)
  t.same(d.demands.at(-1), [['other.db'], false], 'app.db no longer awaited')
  s.setPosition('other.db', 1n)
  t.same(d.demands.at(-1), [[], false])
  t.equal(s.waiterCount, 0)
})

t.test('already reached: answered at once, nothing held', async t => {
  const s = new NodeState(driver())
  s.setPosition('app.db', 5n)
  let r: WaitResult | undefined
  t.equal(s.waitForPosition('app.db', 5n, 1000, x => { r = x }), undefined)
  t.equal(r, 'ready')
  t.equal(s.waiterCount, 0)
})

t.test('timeouts: one timer, earliest first, re-armed for later deadlines', async t => {
  const s = new NodeState(driver())
  const order: string[] = []
  s.waitForPosition('app.db', 9n, 30, r => order.push(`late ${r}`))
  s.waitForPosition('app.db', 9n, 1, r => order.push(`early ${r}`))
  s.waitForPosition('app.db', 9n, 60_000, r => order.push(`never ${r}`))
  await until(() => order.length === 2, 'two timeouts')
  t.same(order, ['early timeout', 'late timeout'])
  t.equal(s.waiterCount, 1)
  await s.close()
  t.same(order, ['early timeout', 'late timeout', 'never closed'])
})

t.test('cancel removes a waiter at once', async t => {
  const d = driver()
  const s = new NodeState(d)
  const got: WaitResult[] = []
  const w = s.waitForPosition('app.db', 3n, 60_000, r => got.push(r))
  const w2 = s.waitForPosition('app.db', 4n, 60_000, r => got.push(r))
  s.cancel(w)
  t.same(got, ['cancelled'])
  t.equal(s.waiterCount, 1)
  s.cancel(w) // twice: nothing
  s.cancel(undefined)
  t.same(got, ['cancelled'])
  s.cancel(w2)
  t.same(d.demands.at(-1), [[], false], 'nothing awaited any more')
  const p = s.waitForPrimary(60_000, r => got.push(r))
  s.cancel(p)
  t.same(got, ['cancelled', 'cancelled', 'cancelled'])
  t.same(d.demands.at(-1), [[], false])
  await s.close()
})

t.test('waiting for a primary', async t => {
  const d = driver()
  const s = new NodeState(d)
  const got: string[] = []
  t.equal(s.primaryKnown, false)
  s.waitForPrimary(60_000, r => got.push(`a ${r}`))
  s.waitForPrimary(60_000, r => got.push(`b ${r}`))
  t.same(d.demands.at(-1), [[], true])
  s.setRole('replica', undefined)
  s.setRole('replica', '')
  t.same(got, [], 'a replica without a primary hostname is no help')
  s.setRole('replica', 'node-b')
  t.same(got, ['a ready', 'b ready'])
  t.equal(s.primaryHostname, 'node-b')
  t.same(d.demands.at(-1), [[], false])
  let now: string | undefined
  s.waitForPrimary(10, r => { now = r })
  t.equal(now, 'ready', 'known already: answered at once')
  s.setRole('primary', 'ignored')
  t.equal(s.primaryHostname, undefined)
  t.equal(s.primaryKnown, true)
  s.setRole('unknown')
  s.waitForPrimary(1, r => got.push(`c ${r}`))
  await until(() => got.length === 3)
  t.same(got.at(-1), 'c timeout')
  await s.close()
})

t.test('promotion releases held reads: a primary has every transaction there is', async t => {
  const s = new NodeState(driver())
  s.setRole('replica', 'node-a')
  const got: WaitResult[] = []
  s.waitForPosition('app.db', 50n, 60_000, r => got.push(r))
  s.waitForPosition('b.db', 50n, 60_000, r => got.push(r))
  s.setRole('replica', 'node-c')
  t.same(got, [])
  s.setRole('primary')
  t.same(got, ['ready', 'ready'])
  t.equal(s.waiterCount, 0)
  await s.close()
})

t.test('authoritative reads, lag and close', async t => {
  const d = driver()
  const s = new NodeState(d)
  t.equal(s.readPosition('app.db'), undefined)
  t.equal(s.position('app.db'), 0n)
  d.pos = 8n
  t.equal(s.readPosition('app.db'), 8n)
  t.equal(s.position('app.db'), 8n, 'an authoritative read refreshes the cache')
  t.same(s.databases, ['app.db'])
  t.equal(s.readLag(), 12)
  s.setRole('primary')
  t.equal(s.readLag(), 0, 'the primary has no lag')
  s.refresh() // a driver without refresh: nothing to do
  await s.close()
  await s.close()
  t.ok(d.closed)
  const got: WaitResult[] = []
  s.waitForPosition('app.db', 99n, 10, r => got.push(r))
  s.waitForPrimary(10, r => got.push(r))
  t.same(got, ['closed', 'closed'], 'a closed state holds nothing')
  const bare = new NodeState({ readPosition: () => undefined, readLag: () => undefined })
  bare.waitForPosition('x', 1n, 60_000, () => {})
  await bare.close()
})

t.test('a driver that reads asynchronously: a wait asks it after the waiter is in place, and no caller waits on it synchronously', async t => {
  let pos: bigint | undefined = 3n
  let lag: number | undefined = 40
  const asked: string[] = []
  const releases: Array<() => void> = []
  const later = async <T>(what: string, value: () => T): Promise<T> => {
    asked.push(what)
    await new Promise<void>(resolve => releases.push(resolve))
    return value()
  }
  const s = new NodeState({
    readPosition: () => { throw new Error('no synchronous read') },
    readLag: () => { throw new Error('no synchronous read') },
    readPositionAsync: async () => await later('pos', () => pos),
    readLagAsync: async () => await later('lag', () => lag)
  })
  t.equal(s.reached('app.db', 1n), false, 'the cache alone says; the mount is not read')
  const got: WaitResult[] = []
  const w = s.waitForPosition('app.db', 2n, 60_000, r => got.push(r))
  t.ok(w !== undefined, 'held')
  await until(() => asked.length === 1)
  t.same(asked, ['pos'], 'the authority is asked once the waiter is in place')
  releases.shift()?.()
  await until(() => got.length === 1)
  t.same(got, ['ready'], 'its answer releases the waiter')
  t.equal(s.reached('app.db', 3n), true)
  // Never answered (LiteFS stopped): the wait ends at its deadline.
  pos = undefined
  s.waitForPosition('app.db', 9n, 5, r => got.push(r))
  await until(() => got.length === 2)
  t.same(got, ['ready', 'timeout'])
  // The lag: one read for every caller that joined before it started.
  const lags = [s.lagAfter(), s.lagAfter()]
  t.equal(lags[0], lags[1], 'callers joining before the read starts share it')
  await until(() => asked.length === 3)
  for (const release of releases.splice(0)) release()
  t.same(await Promise.all(lags), [40, 40])
  lag = undefined
  const none = s.lagAfter()
  await until(() => asked.length === 4)
  releases.shift()?.()
  t.equal(await none, undefined)
  s.setRole('primary')
  t.equal(s.lagAfter(), 0, 'a primary has no lag: nothing is read')
  await s.close()
})

t.test('a driver without an asynchronous lag: lagAfter is readLag', async t => {
  const s = new NodeState(driver())
  t.equal(s.lagAfter(), 12)
  await s.close()
})

t.test('10,000 held reads released by one change', async t => {
  const s = new NodeState(driver())
  let released = 0
  for (let i = 0; i < 10_000; i++) s.waitForPosition('app.db', BigInt(1 + (i % 100)), 60_000, () => { released++ })
  s.setPosition('app.db', 100n)
  t.equal(released, 10_000)
  t.equal(s.waiterCount, 0)
  await s.close()
})

t.test('LiteFS gone: role and primary forgotten; held requests wait for what they need', async t => {
  const d = driver()
  const s = new NodeState(d)
  t.equal(s.litefs, 'up', 'a state nobody says otherwise of is up')
  s.setRole('replica', 'node-a')
  t.equal(s.primaryKnown, true)
  s.setLitefs('stream-lost')
  t.equal(s.role, 'unknown')
  t.equal(s.primaryHostname, undefined)
  t.equal(s.primaryKnown, false)
  const got: string[] = []
  s.waitForMount(60_000, r => got.push(`mount ${r}`))
  t.same(got, ['mount ready'], 'the mount answers: nothing to wait for')
  s.setLitefs('down')
  s.setLitefs('down') // the same again changes nothing
  s.waitForMount(60_000, r => got.push(`mount2 ${r}`))
  s.waitForPrimary(60_000, r => got.push(`primary ${r}`))
  s.waitForPrimary(60_000, r => got.push(`self ${r}`), true)
  t.same(d.demands.at(-1), [[], true], 'the driver learns somebody waits for a condition')
  t.equal(s.waiterCount, 3)
  s.setLitefs('up')
  t.same(got, ['mount ready', 'mount2 ready'], 'back up: the mount waiter goes, the role is not known yet')
  s.setRole('replica', 'node-b')
  t.same(got, ['mount ready', 'mount2 ready', 'primary ready'])
  s.setRole('primary')
  t.same(got, ['mount ready', 'mount2 ready', 'primary ready', 'self ready'])
  t.same(d.demands.at(-1), [[], false])
  await s.close()
})

t.test('onLitefs: every change of LiteFS status, once; unsubscribed listeners hear nothing', async t => {
  const s = new NodeState(driver())
  const heard: string[] = []
  const other: string[] = []
  const off = s.onLitefs(status => heard.push(status))
  s.onLitefs(status => other.push(status))
  s.setLitefs('stream-lost')
  s.setLitefs('stream-lost') // no change: nobody hears it
  s.setLitefs('down')
  s.setLitefs('up')
  t.same(heard, ['stream-lost', 'down', 'up'])
  off()
  s.setLitefs('down')
  t.same(heard, ['stream-lost', 'down', 'up'], 'unsubscribed')
  t.same(other, ['stream-lost', 'down', 'up', 'down'], 'the other listener still hears')
  await s.close()
})
