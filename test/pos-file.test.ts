import t from 'tap'
import { mkdirSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { PosFiles } from '../lib/core/pos-file.js'
import { NodeState } from '../lib/core/node-state.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'

// `-pos` read asynchronously on the thread pool, through a kept fd while
// LiteFS is known up: what is read, and that no fd is ever left open or closed
// under a read.

const openIn = (dir: string): number => readdirSync('/proc/self/fd').filter(fd => {
  try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir) } catch { return false }
}).length

t.test('asynchronous reads: fresh while not kept, through a kept fd while kept', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  const files = new PosFiles(fake.mount)
  t.equal(await files.read('app.db'), 2n, 'fresh')
  t.equal(openIn(fake.mount), 0, 'a fresh read leaves nothing open')
  t.equal(await files.read('none.db'), undefined, 'no database: no position')
  files.keep(true)
  t.equal(await files.read('app.db'), 2n, 'kept: opened on the thread pool')
  t.equal(openIn(fake.mount), 1)
  fake.advance(3n, { event: false })
  t.equal(await files.read('app.db'), 3n, 'the kept fd sees the new content')
  t.equal(files.readSync('app.db'), 3n, 'and a synchronous read uses the same fd')
  t.equal(openIn(fake.mount), 1)
  t.equal(await files.read('none.db'), undefined, 'no database yet: nothing kept')
  files.keep(false)
  await until(() => openIn(fake.mount) === 0, 'closed when no longer kept')
})

t.test('readMany: every database of a batch at once, in the order given, an absent one as no position; none asked, none read', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  fake.advanceDb('cache.db', 7n)
  const files = new PosFiles(fake.mount)
  t.same(await files.readMany(['cache.db', 'none.db', 'app.db']), [7n, undefined, 2n], 'fresh')
  files.keep(true)
  t.same(await files.readMany(['app.db', 'cache.db']), [2n, 7n], 'kept')
  t.equal(openIn(fake.mount), 2, 'one kept fd per database')
  t.same(await files.readMany([]), [])
  files.keep(false)
  await until(() => openIn(fake.mount) === 0, 'closed when no longer kept')
})

t.test('a -pos that cannot be read (EISDIR here, ENOTCONN on a dead mount): the kept fd is dropped and a fresh read tried', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  mkdirSync(join(fake.mount, 'odd.db-pos'))
  const files = new PosFiles(fake.mount)
  files.keep(true)
  t.equal(await files.read('odd.db'), undefined)
  await until(() => openIn(fake.mount) === 0, 'nothing left open')
  files.keep(false)
  t.equal(await files.read('odd.db'), undefined, 'a fresh read fails the same way')
})

t.test('keeping stops, or a synchronous read keeps its own fd, while an asynchronous open is on its way: read once, then closed', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 5n, api: false })
  t.teardown(async () => { await fake.close() })
  const files = new PosFiles(fake.mount)
  files.keep(true)
  const stopped = files.read('app.db')
  files.keep(false)
  t.equal(await stopped, 5n)
  await until(() => openIn(fake.mount) === 0, 'not kept')
  files.keep(true)
  const racing = files.read('app.db')
  t.equal(files.readSync('app.db'), 5n, 'the synchronous read keeps an fd first')
  t.equal(await racing, 5n)
  await until(() => openIn(fake.mount) === 1, 'only the one kept')
  files.keep(false)
  await until(() => openIn(fake.mount) === 0)
})

t.test('an fd dropped while a read is on it is closed by that read, not under it', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 7n, api: false })
  t.teardown(async () => { await fake.close() })
  const files = new PosFiles(fake.mount)
  files.keep(true)
  t.equal(await files.read('app.db'), 7n)
  const inFlight = files.read('app.db')
  files.keep(false) // LiteFS went away: drop everything, now
  t.equal(openIn(fake.mount), 1, 'still open: a read is on it')
  t.equal(await inFlight, 7n)
  await until(() => openIn(fake.mount) === 0, 'closed once the read ended')
})

t.test('positionAfter: shared asynchronous reads raise the cached position, never lower it; a failing driver reads as no position', async t => {
  let next: bigint | Error = 5n
  const state = new NodeState({
    readPosition: () => 1n,
    readLag: () => 0,
    readPositionAsync: async () => { if (next instanceof Error) throw next; return next }
  })
  const a = state.positionAfter('app.db')
  t.equal(state.positionAfter('app.db'), a, 'joined before it started: one read')
  t.equal(await a, 5n)
  t.equal(state.position('app.db'), 5n, 'raised')
  state.setPosition('app.db', 9n) // an event brought a newer one meanwhile
  next = 6n
  t.equal(await state.positionAfter('app.db'), 6n, 'the read says what it read')
  t.equal(state.position('app.db'), 9n, 'but the cache is never lowered')
  next = new Error('EIO')
  t.equal(await state.positionAfter('app.db'), undefined)
  const sync = new NodeState({ readPosition: () => 4n, readLag: () => 0 })
  t.equal(sync.positionAfter('app.db'), 4n, 'a driver without asynchronous reads: at once')
})

t.test('a read that fails on an fd dropped meanwhile closes it once, and leaves a newer kept fd alone', async t => {
  // The failure is made to order: node:fs's read, held until the test ends it.
  const fs = await import('node:fs')
  const held: Array<(err: NodeJS.ErrnoException | null, n: number) => void> = []
  const closed: number[] = []
  const { PosFiles: Mocked } = await t.mockImport<typeof import('../lib/core/pos-file.js')>('../lib/core/pos-file.js', {
    'node:fs': {
      ...fs,
      read: (_fd: number, _buf: Buffer, _o: number, _l: number, _p: number, cb: (err: NodeJS.ErrnoException | null, n: number) => void) => { held.push(cb) },
      close: (fd: number, cb: () => void) => { closed.push(fd); fs.close(fd, cb) }
    }
  })
  const fake = await FakeLitefs.start({ role: 'primary', txid: 7n, api: false })
  t.teardown(async () => { await fake.close() })
  const files = new Mocked(fake.mount)
  files.keep(true)
  const first = files.read('app.db') // opens and keeps an fd, its read held
  await until(() => held.length === 1, 'the read is on the kept fd')
  const kept = openIn(fake.mount)
  t.equal(kept, 1)
  files.keep(false) // LiteFS went away: dropped, but a read is on it
  t.same(closed, [], 'not closed under the read')
  files.keep(true)
  t.equal(files.readSync('app.db'), 7n, 'a newer fd kept meanwhile')
  held[0](Object.assign(new Error('ENOTCONN'), { code: 'ENOTCONN' }), 0) // the read fails on the dropped fd
  await until(() => held.length === 2, 'then a fresh read')
  held[1](null, 0)
  t.equal(await first, undefined)
  t.equal(closed.length, 2, 'the dropped fd, closed once, and the fresh one')
  // fs.close ends on the thread pool: the dropped fd is gone once it has (a busy machine made it late).
  await until(() => openIn(fake.mount) <= 1, 'the dropped fd closed')
  t.equal(openIn(fake.mount), 1, 'the newer kept fd is still open')
  files.keep(false)
  await until(() => openIn(fake.mount) === 0)
})

t.test('readMany on kept fds: one job on the worker for the whole batch, no thread-pool read; what it reads is as fresh', async t => {
  // Thread-pool reads counted: node:fs's read, wrapped.
  const fs = await import('node:fs')
  let poolReads = 0
  const { PosFiles: Counted } = await t.mockImport<typeof import('../lib/core/pos-file.js')>('../lib/core/pos-file.js', {
    'node:fs': {
      ...fs,
      read: (...args: Parameters<typeof fs.read>) => { poolReads++; return (fs.read as (...a: unknown[]) => void)(...args) }
    }
  })
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  fake.advanceDb('cache.db', 7n)
  fake.advanceDb('queue.db', 3n)
  const dbs = ['app.db', 'cache.db', 'queue.db']
  const files = new Counted(fake.mount)
  files.keep(true)
  t.same(await files.readMany(dbs), [2n, 7n, 3n], 'first batch: the thread pool opens and keeps the fds')
  t.equal(poolReads, 3, 'one thread-pool read per database')
  const worker = (): { ready: boolean } | undefined => (files as unknown as { worker: { ready: boolean } | undefined }).worker
  // The next batches start the worker; until it is up they are read on the thread pool.
  for (let i = 0; worker()?.ready !== true; i++) {
    if (i > 100_000) throw new Error('the worker never came up')
    await files.readMany(dbs)
  }
  const before = poolReads
  fake.advance(5n, { event: false })
  fake.advanceDb('queue.db', 4n)
  t.same(await files.readMany(dbs), [5n, 7n, 4n], 'the worker reads what is there now')
  t.same(await files.readMany(['queue.db', 'app.db']), [4n, 5n], 'any subset, in the order given')
  t.equal(poolReads, before, 'no thread-pool read for those batches')
  t.equal(openIn(fake.mount), 3, 'the same kept fds')
  const inFlight = files.readMany(dbs)
  files.keep(false) // LiteFS went away while the batch is on the worker
  t.equal(openIn(fake.mount), 3, 'nothing closed under the batch')
  t.same(await inFlight, [5n, 7n, 4n])
  await until(() => openIn(fake.mount) === 0, 'closed once the batch ended')
  t.equal(worker(), undefined, 'the worker stopped with keeping')
})

t.test('readMany on the worker: a -pos that cannot be read is dropped and read fresh; the rest are read', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 2n, api: false })
  t.teardown(async () => { await fake.close() })
  fake.advanceDb('cache.db', 7n)
  const files = new PosFiles(fake.mount)
  files.keep(true)
  await files.readMany(['app.db', 'cache.db']) // kept
  const worker = (): { ready: boolean } | undefined => (files as unknown as { worker: { ready: boolean } | undefined }).worker
  for (let i = 0; worker()?.ready !== true; i++) {
    if (i > 100_000) throw new Error('the worker never came up')
    await files.readMany(['app.db', 'cache.db'])
  }
  // The kept cache.db fd now reads a directory (EISDIR, as ENOTCONN on a dead mount): its file replaced under it.
  const { renameSync, rmSync } = await import('node:fs')
  renameSync(join(fake.mount, 'cache.db-pos'), join(fake.mount, 'old-cache.db-pos'))
  mkdirSync(join(fake.mount, 'cache.db-pos'))
  const kept = (files as unknown as { kept: Map<string, { fd: number }> }).kept
  const oldFd = kept.get('cache.db')?.fd as number
  const { openSync, closeSync, constants } = await import('node:fs')
  const dirFd = openSync(join(fake.mount, 'cache.db-pos'), constants.O_RDONLY | constants.O_DIRECTORY)
  // Put the directory under the kept fd's number: dup2 is not in node:fs, so the kept entry is pointed at it.
  kept.set('cache.db', { ...(kept.get('cache.db') as object), fd: dirFd } as never)
  t.same(await files.readMany(['app.db', 'cache.db']), [2n, undefined], 'the failed one: dropped, read fresh (a directory: nothing)')
  t.equal(kept.has('cache.db'), false, 'its fd is no longer kept')
  closeSync(oldFd)
  rmSync(join(fake.mount, 'cache.db-pos'), { recursive: true })
  renameSync(join(fake.mount, 'old-cache.db-pos'), join(fake.mount, 'cache.db-pos'))
  t.same(await files.readMany(['app.db', 'cache.db']), [2n, 7n], 'back: read again')
  // A kept fd that fails on the worker (EBADF here: its number no longer open) while the file is there: the fresh read has it.
  for (let i = 0; worker()?.ready !== true || kept.size < 2; i++) {
    if (i > 100_000) throw new Error('never kept and ready again')
    await files.readMany(['app.db', 'cache.db'])
  }
  const cacheFd = kept.get('cache.db')?.fd as number
  kept.set('cache.db', { ...(kept.get('cache.db') as object), fd: 1_000_000 } as never) // no such fd
  t.same(await files.readMany(['app.db', 'cache.db']), [2n, 7n], 'the failed one read fresh, with its position')
  closeSync(cacheFd)
  files.keep(false)
  await until(() => openIn(fake.mount) === 0)
})
