import { close, open, openSync, read, readSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { PosWorker, type BatchResult } from './pos-worker.js'
import { parsePos } from './txid.js'

// Reading `<db>-pos` through LiteFS's FUSE mount, measured on LiteFS v0.5.14:
// - fresh: open, read, close — three FUSE calls, about 130–150 µs. Always the
//   truth, including after LiteFS restarted.
// - kept: one fd held open, read at offset 0 for exactly POS_SIZE bytes — about
//   1 µs, answered from the kernel's page cache without LiteFS. LiteFS
//   invalidates that page on every position change (db.go setPos, inside the
//   commit's own FUSE call, so before SQLite returns to the app), and FUSE
//   refetches it on the next read: a kept read is as fresh as a fresh one. Read
//   one byte more (a 4 KB buffer) and the kernel asks LiteFS for the file's
//   attributes first on every read (a read past the cached size, and LiteFS
//   marks attributes valid for 0 s): a round trip costing LiteFS ~36 µs of CPU.
//   But after LiteFS exits the old fd keeps returning the old position, and an
//   fd held open while LiteFS stops makes its unmount fail ("Device or resource
//   busy"), leaving a dead mount. So fds are kept only while `keep(true)` (the
//   event stream proves LiteFS is up; litefs-node.ts) and only while in use: one
//   idle for IDLE_MS is closed, so an idle app never blocks an unmount.
// The asynchronous read (`read`) runs on libuv's thread pool: nothing on the
// event loop waits on FUSE. An fd is never closed while such a read is on it
// (its number could be reused by the next open, and the read would read that).
// Several databases read together (`readMany`) are one job on a worker thread
// once their fds are kept (pos-worker.ts): one hand-off for the batch instead of
// one per database. The worker starts with the first such batch and stops with
// keeping; until it is up, or while it is busy, the thread pool reads.

/** `%016x/%016x\n`: LiteFS's `-pos` is always this long (fuse/pos_node.go PosFileSize). */
export const POS_SIZE = 34

/** A kept `-pos` fd unread this long is closed (ms): below ten reads a second a fresh open costs nothing worth keeping. */
export const IDLE_MS = 100

// Closing is asynchronous so a close that fails (ENOTCONN on a dead mount) never throws.
const ignore = (): void => {}

interface Kept {
  fd: number
  /** Asynchronous reads on this fd now. */
  reading: number
  /** Dropped while read: closed when the last read ends. */
  dropped: boolean
}

export class PosFiles {
  private keeping = false
  private readonly kept = new Map<string, Kept>()
  private readonly paths = new Map<string, string>()
  private lastUse = 0
  private idle: NodeJS.Timeout | undefined
  private readonly buffer = Buffer.allocUnsafe(POS_SIZE) // synchronous reads only
  /** Reads batches of kept fds in one job (several databases); started by the first batch while keeping. */
  private worker: PosWorker | undefined

  constructor (private readonly mount: string) {}

  /** Keep fds open while in use (true), or close them all now and read fresh (false). */
  keep (on: boolean): void {
    this.keeping = on
    if (on) return
    this.dropAll()
    this.worker?.stop() // a batch on it ends first; its fds close when it does (drop)
    this.worker = undefined
  }

  /** The TXID in `<db>-pos` now, synchronously; undefined when absent or unreadable. */
  readSync (db: string): bigint | undefined {
    const content = this.keeping ? this.readKeptSync(db) : this.readFreshSync(this.path(db))
    return content === undefined ? undefined : parsePos(content)
  }

  /**
   * The TXID in `<db>-pos`, read on the thread pool by a read that starts after
   * this call; undefined when absent or unreadable. Never rejects. A plain
   * promise, not an async function: one promise and one microtask per read.
   */
  read (db: string): Promise<bigint | undefined> {
    return new Promise(resolve => {
      this.readContent(db, content => { resolve(content === undefined ? undefined : parsePos(content)) })
    })
  }

  /**
   * The TXIDs in each `<db>-pos` of `dbs`, in that order, as `read` gives them:
   * every read started at once on the thread pool, one promise for them all
   * (several databases: positions-read.ts). Never rejects.
   */
  readMany (dbs: readonly string[]): Promise<Array<bigint | undefined>> {
    return this.readBatch(dbs) ?? new Promise(resolve => {
      const out = new Array<bigint | undefined>(dbs.length)
      let left = dbs.length
      if (left === 0) return resolve(out)
      dbs.forEach((db, i) => {
        this.readContent(db, content => {
          out[i] = content === undefined ? undefined : parsePos(content)
          if (--left === 0) resolve(out)
        })
      })
    })
  }

  /**
   * Every database of `dbs` in one job on the worker, when each has a kept fd
   * and the worker is up and idle; undefined otherwise (the thread pool reads).
   * A read that failed there (the mount went away) is read fresh, as `read` does.
   */
  private readBatch (dbs: readonly string[]): Promise<Array<bigint | undefined>> | undefined {
    if (!this.keeping || dbs.length < 2) return undefined
    const ks: Kept[] = []
    for (const db of dbs) {
      const k = this.kept.get(db)
      if (k === undefined) return undefined // not open yet: the thread pool opens it, and keeps it for next time
      ks.push(k)
    }
    this.worker ??= new PosWorker()
    const batch = this.worker.read(ks.map(k => k.fd))
    if (batch === undefined) return undefined
    this.touch()
    for (const k of ks) k.reading++
    return batch.then(contents => this.afterBatch(dbs, ks, contents))
  }

  private afterBatch (dbs: readonly string[], ks: Kept[], contents: BatchResult): Promise<Array<bigint | undefined>> | Array<bigint | undefined> {
    const out = new Array<bigint | undefined>(dbs.length)
    const failed: Array<Promise<void>> = []
    ks.forEach((k, i) => {
      // Dropped while the batch was on it (idle, or LiteFS went away): closing is this batch's.
      if (--k.reading === 0 && k.dropped) close(k.fd, ignore)
      const content = contents[i]
      if (content !== undefined) {
        out[i] = parsePos(content)
        return
      }
      // ENOTCONN, EBADF, EIO: this fd belongs to a mount that is gone. Dropped, and read as any
      // database without a kept fd is (`read`: opened afresh, the truth if there is one).
      this.drop(dbs[i], k)
      failed.push(this.read(dbs[i]).then(pos => { out[i] = pos }))
    })
    return failed.length === 0 ? out : Promise.all(failed).then(() => out)
  }

  private readContent (db: string, done: (content: string | undefined) => void): void {
    if (!this.keeping) return this.readFresh(this.path(db), done)
    this.touch()
    const k = this.kept.get(db)
    if (k === undefined) return this.openAndRead(db, done)
    this.readKept(db, k, done)
  }

  private path (db: string): string {
    let p = this.paths.get(db)
    if (p === undefined) { p = join(this.mount, `${db}-pos`); this.paths.set(db, p) }
    return p
  }

  /** A read now: the idle timer (one for all fds, re-armed for what remains) costs a clock read, not a timer. */
  private touch (): void {
    this.lastUse = performance.now()
    if (this.idle === undefined) this.arm(IDLE_MS)
  }

  private arm (ms: number): void {
    this.idle = setTimeout(this.checkIdle, ms)
    this.idle.unref()
  }

  private readonly checkIdle = (): void => {
    this.idle = undefined
    const unused = performance.now() - this.lastUse
    if (unused >= IDLE_MS) this.dropAll()
    else this.arm(IDLE_MS - unused)
  }

  /** Forget `db`'s fd and close it, or let the read on it close it when it ends. */
  private drop (db: string, k: Kept): void {
    if (k.dropped) return
    k.dropped = true
    this.kept.delete(db) // a kept fd not dropped is always its database's entry
    if (k.reading === 0) close(k.fd, ignore) // on a dead mount close itself fails (ENOTCONN): nothing is left to release then
  }

  private dropAll (): void {
    clearTimeout(this.idle)
    this.idle = undefined
    for (const [db, k] of this.kept) this.drop(db, k)
  }

  private keepFd (db: string, fd: number): Kept {
    const k: Kept = { fd, reading: 0, dropped: false }
    this.kept.set(db, k)
    return k
  }

  private readKeptSync (db: string): string | undefined {
    this.touch()
    let k = this.kept.get(db)
    if (k === undefined) {
      let fd: number
      try {
        fd = openSync(this.path(db), 'r')
      } catch {
        return undefined // no database yet: tried again on the next read
      }
      k = this.keepFd(db, fd)
    }
    try {
      return this.buffer.toString('latin1', 0, readSync(k.fd, this.buffer, 0, POS_SIZE, 0))
    } catch {
      // ENOTCONN, EBADF, EIO: this fd belongs to a mount that is gone. The truth,
      // if there is one, is a fresh open away.
      this.drop(db, k)
      return this.readFreshSync(this.path(db))
    }
  }

  /** The file's content, or undefined when it cannot be opened or read (absent, mount dead or gone). */
  private readFreshSync (path: string): string | undefined {
    let fd: number
    try {
      fd = openSync(path, 'r')
    } catch {
      return undefined
    }
    let content: string | undefined
    try {
      content = this.buffer.toString('latin1', 0, readSync(fd, this.buffer, 0, POS_SIZE, 0))
    } catch {
      content = undefined // EIO, ENOTCONN: LiteFS went away between open and read
    }
    close(fd, ignore)
    return content
  }

  private readKept (db: string, k: Kept, done: (content: string | undefined) => void): void {
    const buf = Buffer.allocUnsafe(POS_SIZE)
    k.reading++
    read(k.fd, buf, 0, POS_SIZE, 0, (err, n) => {
      // Dropped while this read was on it (idle, or LiteFS went away): closing is this read's.
      if (--k.reading === 0 && k.dropped) close(k.fd, ignore)
      if (err === null) return done(buf.toString('latin1', 0, n))
      // ENOTCONN, EBADF, EIO: this fd belongs to a mount that is gone. The truth,
      // if there is one, is a fresh open away.
      this.drop(db, k)
      this.readFresh(this.path(db), done)
    })
  }

  /** No kept fd yet: open one (asynchronously too), keep it if still keeping, read it. */
  private openAndRead (db: string, done: (content: string | undefined) => void): void {
    open(this.path(db), 'r', (err, fd) => {
      if (err !== null) return done(undefined) // no database yet: tried again on the next read
      const k = this.kept.get(db)
      if (!this.keeping || k !== undefined) {
        // Keeping stopped, or a synchronous read kept its own meanwhile: read this one once.
        return this.readOpen(fd, done)
      }
      this.readKept(db, this.keepFd(db, fd), done)
    })
  }

  /** Read an fd opened for this read alone, then close it. */
  private readOpen (fd: number, done: (content: string | undefined) => void): void {
    const buf = Buffer.allocUnsafe(POS_SIZE)
    read(fd, buf, 0, POS_SIZE, 0, (err, n) => {
      close(fd, ignore)
      done(err === null ? buf.toString('latin1', 0, n) : undefined) // EIO, ENOTCONN: LiteFS went away between open and read
    })
  }

  private readFresh (path: string, done: (content: string | undefined) => void): void {
    open(path, 'r', (err, fd) => {
      if (err !== null) return done(undefined)
      this.readOpen(fd, done)
    })
  }
}
