// One asynchronous read shared by every caller that joined it (DESIGN §3.5).
// A write's answer needs a value read *after* the answer was ready (a `-pos`
// read that includes the handler's own commit), and a read that started before
// a caller joined may predate its commit, so it never counts for that caller.
// Here: at most one read in flight, plus one queued; whoever joins while a read
// is in flight is answered by the queued one, which starts when the one in
// flight ends. What is read, and how, is the caller's.

interface Batch<T> {
  promise: Promise<T>
  resolve: (value: T) => void
}

/** Coalesces asynchronous reads of one value. `read` starts one read; its promise must never reject. */
export class SharedRead<T> {
  /** Callers waiting for a read that has not started yet: all get its one promise. */
  private next: Batch<T> | undefined
  private inFlight = false

  constructor (private readonly read: () => Promise<T>) {}

  /**
   * The result of a read that starts after this call. The read starts once the
   * event loop has handled what is ready now (setImmediate), so every answer
   * that became ready meanwhile shares it.
   */
  join (): Promise<T> {
    if (this.next === undefined) {
      let resolve!: (value: T) => void
      const promise = new Promise<T>(r => { resolve = r })
      this.next = { promise, resolve }
      if (!this.inFlight) setImmediate(this.start)
    }
    return this.next.promise
  }

  /** Whether callers wait for a read that has not started yet (for tests). */
  get queued (): boolean {
    return this.next !== undefined
  }

  private readonly start = (): void => {
    const batch = this.next as Batch<T>
    this.next = undefined
    this.inFlight = true
    void this.read().then(value => {
      this.inFlight = false
      // Joined while this read was in flight: the next read, at once.
      if (this.next !== undefined) this.start()
      batch.resolve(value)
    })
  }
}
