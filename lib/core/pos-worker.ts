import { Worker } from 'node:worker_threads'

// Several `-pos` reads as one job (several databases: positions-read.ts). On
// libuv's thread pool each database's read is a job of its own: on a 2-core
// machine about 15 µs of CPU each for the hand-offs alone, for a read the
// kernel answers from its page cache in about 1 µs (pos-file.ts). Here one
// worker thread reads every kept fd of a batch, one after the other, and the
// batch costs one hand-off whatever its size: the main thread writes the fds
// to shared memory and wakes the worker (Atomics.notify); the worker reads,
// writes each result beside it and wakes the main thread, which learns it
// through Atomics.waitAsync without ever blocking. Nothing on the event loop
// waits on FUSE, as on the thread pool.
// What this leaves to its caller (pos-file.ts): which fds, keeping them open
// while read, what to do with a failed read, and the thread pool whenever
// `read` declines (no worker yet, a batch already on it, the worker gone).
// Idle, the worker is unref'd: it never keeps a process alive; terminating it
// interrupts its wait.

/** How many fds one batch can read (MAX_DATABASES, databases.ts). */
export const MAX_BATCH = 16
/** Bytes read per fd (POS_SIZE, pos-file.ts). */
const SIZE = 34

// Int32 slots of the shared control block.
const REQUEST = 0 // batches asked for (main thread writes)
const DONE = 1 // batches read (worker writes)
const COUNT = 2 // fds in the batch asked for
const READY = 3 // 1 once the worker waits for batches
const FDS = 4 // MAX_BATCH fds
const RESULTS = FDS + MAX_BATCH // MAX_BATCH byte counts, -1 for a failed read
const DATA = (RESULTS + MAX_BATCH) * 4 // byte offset of MAX_BATCH × SIZE bytes read

// CommonJS, evaluated: runs the same under the ESM and CommonJS builds and
// needs no file of its own. Every loop waits: Atomics.wait blocks until the
// next batch (or termination).
const SOURCE = `
const { workerData } = require('node:worker_threads')
const { readSync } = require('node:fs')
const ctl = new Int32Array(workerData)
const data = new Uint8Array(workerData, ${DATA})
let seen = 0
Atomics.store(ctl, ${READY}, 1)
for (;;) {
  Atomics.wait(ctl, ${REQUEST}, seen)
  const asked = Atomics.load(ctl, ${REQUEST})
  if (asked === seen) continue
  seen = asked
  const count = ctl[${COUNT}]
  for (let i = 0; i < count; i++) {
    try {
      ctl[${RESULTS} + i] = readSync(ctl[${FDS} + i], data, i * ${SIZE}, ${SIZE}, 0)
    } catch {
      ctl[${RESULTS} + i] = -1
    }
  }
  Atomics.store(ctl, ${DONE}, seen)
  Atomics.notify(ctl, ${DONE})
}
`

// ES2024's Atomics.waitAsync (V8, every Node ≥ 16), typed here: the build targets ES2022.
type WaitAsync = (typedArray: Int32Array, index: number, value: number) => { async: boolean, value: string | Promise<string> }
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync

/** Each fd's content as read (latin1), or undefined where the read failed (ENOTCONN, EBADF, EIO). */
export type BatchResult = Array<string | undefined>

/** One worker thread reading batches of `-pos` fds; one batch at a time. */
export class PosWorker {
  private readonly shared = new SharedArrayBuffer(DATA + MAX_BATCH * SIZE)
  private readonly ctl = new Int32Array(this.shared)
  private readonly data = Buffer.from(this.shared, DATA)
  private readonly worker: Worker | undefined
  private asked = 0
  /** The batch on the worker now: answered by the worker, or by its exit. */
  private pending: { count: number, resolve: (result: BatchResult) => void } | undefined
  private gone = false
  private stopping = false

  constructor () {
    try {
      // No preloads of the app's (execArgv: tracers, loaders): this thread only reads fds.
      this.worker = new Worker(SOURCE, { eval: true, workerData: this.shared, execArgv: [], stdout: false, stderr: false })
    } catch {
      this.gone = true // no threads here (resource limits): the thread pool does it all
      return
    }
    this.worker.unref()
    this.worker.on('error', this.exited) // it cannot throw, but an out-of-memory start can fail it
    this.worker.on('exit', this.exited)
  }

  /**
   * Read `fds` (at most MAX_BATCH), each at offset 0 for SIZE bytes, in one job
   * that starts now. Undefined when the worker cannot take it: not started yet,
   * a batch already on it, stopped or gone. The promise never rejects; a worker
   * that dies mid-batch answers every fd as failed.
   */
  read (fds: readonly number[]): Promise<BatchResult> | undefined {
    if (this.gone || this.stopping || this.pending !== undefined || fds.length > MAX_BATCH || Atomics.load(this.ctl, READY) !== 1) return undefined
    const ctl = this.ctl
    fds.forEach((fd, i) => { ctl[FDS + i] = fd })
    ctl[COUNT] = fds.length
    const before = this.asked
    // Kept an Int32, as the slots it is compared with: a plain count would pass
    // 2^31 after a few days of batches, and no wait would ever match it again.
    this.asked = (this.asked + 1) | 0
    // A pending Atomics.waitAsync keeps no event loop alive: while a batch is
    // on it, the worker does (a job or CLI awaiting its token has nothing else).
    const worker = this.worker as Worker // not gone: it exists
    worker.ref()
    return new Promise<BatchResult>(resolve => {
      this.pending = { count: fds.length, resolve }
      // The wait first, the wake after: DONE is still `before`, so this wait is
      // always pending (never 'not-equal') and cannot miss the worker's notify.
      const waited = waitAsync(ctl, DONE, before)
      Atomics.store(ctl, REQUEST, this.asked)
      Atomics.notify(ctl, REQUEST)
      void Promise.resolve(waited.value).then(this.answered)
    })
  }

  /** Stop the worker once no batch is on it (a batch in flight finishes first: its fds stay open until then). */
  stop (): void {
    this.stopping = true
    if (this.pending === undefined) void this.worker?.terminate()
  }

  /** Whether batches can be asked for now (for tests). */
  get ready (): boolean {
    return !this.gone && !this.stopping && Atomics.load(this.ctl, READY) === 1
  }

  private readonly answered = (): void => {
    const p = this.pending
    // The worker exited while this wait was pending: that batch was answered then.
    if (p === undefined || Atomics.load(this.ctl, DONE) !== this.asked) return
    this.pending = undefined
    const worker = this.worker as Worker // answered: it ran
    worker.unref()
    const result: BatchResult = []
    for (let i = 0; i < p.count; i++) {
      const n = this.ctl[RESULTS + i]
      result.push(n < 0 ? undefined : this.data.toString('latin1', i * SIZE, i * SIZE + n))
    }
    if (this.stopping) void worker.terminate()
    p.resolve(result)
  }

  private readonly exited = (): void => {
    this.gone = true
    const p = this.pending
    this.pending = undefined
    p?.resolve(new Array<undefined>(p.count).fill(undefined))
  }
}
