import t from 'tap'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_BATCH, PosWorker } from '../lib/core/pos-worker.js'
import { until } from './helpers/fake-litefs.js'

// Several `-pos` fds read in one job on a worker thread: what it reads, when it
// declines (the caller then uses the thread pool), and that it never leaves a
// batch unanswered or a thread running.

interface Inside { worker: { threadId: number, terminate: () => Promise<number> } | undefined, gone: boolean, exited: () => void, asked: number }
type Test = typeof t
const inside = (w: PosWorker): Inside => w as unknown as Inside

function files (t: Test, contents: string[]): number[] {
  const dir = mkdtempSync(join(tmpdir(), 'pos-worker-'))
  const fds = contents.map((c, i) => {
    writeFileSync(join(dir, `${i}.db-pos`), c)
    return openSync(join(dir, `${i}.db-pos`), 'r')
  })
  t.teardown(() => {
    fds.forEach(fd => closeSync(fd))
    rmSync(dir, { recursive: true })
  })
  return fds
}

const pos = (txid: number): string => `${txid.toString(16).padStart(16, '0')}/00000000000000ab\n`

t.test('one batch reads every fd, in order; a read that fails is undefined; then it stops', async t => {
  const w = new PosWorker()
  t.equal(w.read([0]), undefined, 'declined until the worker waits for batches')
  await until(() => w.ready, 'the worker is up')
  const [a, b, c] = files(t, [pos(42), pos(7), pos(3)])
  t.same(await w.read([a, b, c]), [pos(42), pos(7), pos(3)])
  const dir = mkdtempSync(join(tmpdir(), 'pos-worker-dir-'))
  mkdirSync(join(dir, 'odd.db-pos'))
  const odd = openSync(join(dir, 'odd.db-pos'), 'r') // EISDIR on read, as ENOTCONN on a dead mount
  t.teardown(() => { closeSync(odd); rmSync(dir, { recursive: true }) })
  t.same(await w.read([odd, b]), [undefined, pos(7)], 'a failed read is no content, the others are read')
  t.same(await w.read([c]), [pos(3)], 'the next batch, on the same thread')
  const tooMany = new Array<number>(MAX_BATCH + 1).fill(a)
  t.equal(w.read(tooMany), undefined, 'more fds than a batch holds: declined')
  const first = w.read([a])
  t.equal(w.read([b]), undefined, 'a batch already on it: declined')
  t.same(await first, [pos(42)])
  w.stop()
  t.equal(w.ready, false)
  t.equal(w.read([a]), undefined, 'stopped: declined')
  await until(() => inside(w).gone, 'the thread has exited')
})

t.test('the batch count wraps as an Int32, as the shared slots do: batches go on past 2^31', async t => {
  const w = new PosWorker()
  await until(() => w.ready, 'the worker is up')
  const [a] = files(t, [pos(5)])
  // As after 2^31 − 2 batches: the worker's own count is set to match (it saw every one).
  const shared = (w as unknown as { ctl: Int32Array }).ctl
  const last = 2 ** 31 - 2
  inside(w).asked = last
  Atomics.store(shared, 1, last) // DONE
  Atomics.store(shared, 0, last) // REQUEST: the worker's next wake reads it as seen
  Atomics.notify(shared, 0)
  await until(() => Atomics.load(shared, 1) === last, 'the worker has caught up')
  for (let i = 0; i < 3; i++) t.same(await w.read([a]), [pos(5)], `batch ${i + 1} past the count ${last}`)
  t.equal(inside(w).asked, -(2 ** 31) + 1, 'wrapped')
  w.stop()
})

t.test('stopped while a batch is on it: the batch is answered, then the thread exits', async t => {
  const w = new PosWorker()
  await until(() => w.ready, 'the worker is up')
  const [a] = files(t, [pos(9)])
  const batch = w.read([a]) as Promise<Array<string | undefined>>
  w.stop()
  t.equal(inside(w).gone, false, 'not terminated under its batch')
  t.same(await batch, [pos(9)])
  await until(() => inside(w).gone, 'then the thread has exited')
})

t.test('a worker that exits mid-batch answers every fd as failed, once', async t => {
  const w = new PosWorker()
  await until(() => w.ready, 'the worker is up')
  const [a, b] = files(t, [pos(1), pos(2)])
  const batch = w.read([a, b]) as Promise<Array<string | undefined>>
  inside(w).exited() // as its 'exit' event would, before the batch's answer is seen
  t.same(await batch, [undefined, undefined])
  t.equal(w.ready, false, 'gone: nothing more is asked of it')
  t.equal(w.read([a]), undefined)
  await inside(w).worker?.terminate()
})

t.test('a real exit mid-life: batches stop being asked for', async t => {
  const w = new PosWorker()
  await until(() => w.ready, 'the worker is up')
  await inside(w).worker?.terminate() // as an out-of-memory death would
  await until(() => inside(w).gone, 'its exit is seen')
  t.equal(w.read([0]), undefined)
  w.stop() // stopping a dead worker is harmless
})

t.test('no threads here (the Worker constructor throws): every batch is declined', async t => {
  const { PosWorker: Mocked } = await t.mockImport<typeof import('../lib/core/pos-worker.js')>('../lib/core/pos-worker.js', {
    'node:worker_threads': { Worker: class { constructor () { throw Object.assign(new Error('ERR_WORKER_INIT_FAILED'), { code: 'ERR_WORKER_INIT_FAILED' }) } } }
  })
  const w = new Mocked()
  t.equal(w.ready, false)
  t.equal(w.read([0]), undefined)
  w.stop()
})

t.test('a batch keeps its process alive until answered; an idle worker does not', async t => {
  const { spawnSync } = await import('node:child_process')
  const helper = new URL('./helpers/pos-worker-idle.ts', import.meta.url).pathname
  const run = spawnSync(process.execPath, [...process.execArgv, helper], { encoding: 'utf8', timeout: 60_000 })
  t.equal(run.stdout.trim(), JSON.stringify(['000000000000002a/00000000000000ab\n', '000000000000002a/00000000000000ab\n']), `a batch that is all a process waits for is answered ${run.stderr}`)
  t.equal(run.status, 0, 'then the process ended by itself with the worker idle')
})
