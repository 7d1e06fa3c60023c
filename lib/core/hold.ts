import { performance } from 'node:perf_hooks'
import { answer } from './answers.js'
import { clientGone, closeSource } from './client-gone.js'
import type { CoreContext } from './context.js'
import type { Logger } from './logger.js'
import type { WaitKind } from './observe.js'
import type { NodeState, WaitResult, Waiter } from './node-state.js'
import type { LitefsInfo } from './request.js'

// Holding one request: a wait in NodeState (for a position, a primary, the
// mount) that ends early when the client leaves, that counts against
// `maxWaiting` for the whole process, and that closing the core ends (its own
// waits only: another app sharing the mount's state keeps its own). What the
// request waits for, and what happens after it got it, is the read and write
// paths'; the answers for a wait that ended otherwise are here.

/** Requests held by every core of the process (maxWaiting is per process). */
let heldInProcess = 0

export function heldNow (): number {
  return heldInProcess
}

/**
 * Run one wait, cancelling it if the client disconnects meanwhile. Past
 * `maxWaiting` held requests in the process, nothing more is held: 'overloaded'.
 */
// Not an async function, nor are the held paths' callers where it matters:
// each suspended async frame costs a held request about 300 bytes of heap.
export function waitFor<C> (core: CoreContext<C>, c: C, kind: WaitKind, txid: string | undefined, start: (done: (r: WaitResult) => void) => ReturnType<NodeState['waitForPosition']>): Promise<WaitResult | 'overloaded'> {
  const lifecycle = core.lifecycle
  if (lifecycle.closing) return Promise.resolve('closed')
  const res = core.hooks.res(c)
  const req = core.hooks.req(c)
  if (heldInProcess >= core.options.maxWaiting) {
    core.observer.waitEnded(req, kind, 'overloaded', 0, res)
    return Promise.resolve('overloaded')
  }
  const started = performance.now()
  core.observer.waitStarted(req, kind, txid)
  return new Promise<WaitResult>(resolve => {
    let gone: (() => void) | undefined
    let waiter: Waiter | undefined
    const closes = closeSource(res) // a pipelined answer still queued: its connection
    waiter = start(r => {
      if (gone !== undefined) closes.off('close', gone)
      if (waiter !== undefined) {
        lifecycle.held.delete(waiter)
        heldInProcess--
      }
      core.observer.waitEnded(req, kind, r, performance.now() - started, res)
      resolve(r)
    })
    if (waiter === undefined) return
    lifecycle.held.set(waiter, c)
    heldInProcess++
    const w = waiter
    gone = () => { core.state.cancel(w) }
    // on, not once (its wrapper costs more); the end of the wait removes it.
    closes.on('close', gone)
    // A client already gone before the wait began sends no 'close' any more.
    if (clientGone(res)) gone()
  })
}

/**
 * A wait outside HTTP (waitForToken: a job, a queue consumer): the same count
 * against `maxWaiting` and the same end when the core closes, but cancelled by
 * an AbortSignal instead of a client leaving.
 */
export function waitOutside<C> (core: CoreContext<C>, kind: WaitKind, txid: string | undefined, signal: AbortSignal | undefined, start: (done: (r: WaitResult) => void) => Waiter | undefined): Promise<WaitResult | 'overloaded'> {
  const lifecycle = core.lifecycle
  if (lifecycle.closing) return Promise.resolve('closed')
  if (signal?.aborted === true) return Promise.resolve('cancelled')
  if (heldInProcess >= core.options.maxWaiting) {
    core.observer.waitEnded(undefined, kind, 'overloaded', 0)
    return Promise.resolve('overloaded')
  }
  const started = performance.now()
  core.observer.waitStarted(undefined, kind, txid)
  return new Promise<WaitResult>(resolve => {
    let waiter: Waiter | undefined
    const abort = (): void => { core.state.cancel(waiter) }
    waiter = start(r => {
      signal?.removeEventListener('abort', abort)
      if (waiter !== undefined) {
        lifecycle.outside.delete(waiter)
        heldInProcess--
      }
      core.observer.waitEnded(undefined, kind, r, performance.now() - started)
      resolve(r)
    })
    if (waiter === undefined) return
    lifecycle.outside.add(waiter)
    heldInProcess++
    signal?.addEventListener('abort', abort)
  })
}

/**
 * A wait that did not end with what it waited for, the same for reads and
 * writes: the client left (answer nothing), too many were held, or the core closed.
 */
export function ended<C> (core: CoreContext<C>, info: LitefsInfo, result: Exclude<WaitResult, 'ready' | 'timeout'> | 'overloaded', log: Logger): LitefsInfo {
  if (result === 'cancelled') {
    info.aborted = true
    return info
  }
  if (result === 'overloaded') {
    const max = core.options.maxWaiting
    return answer(info, log, 'LITEFS_OVERLOADED', `${max} requests are held already; try again shortly`, { held: heldInProcess, maxWaiting: max })
  }
  return answer(info, log, 'LITEFS_CLOSED', 'the server is shutting down', {})
}

/** LiteFS on this node did not answer (stream lost, mount dead) for `waited` ms: nothing was applied. */
export function unavailable<C> (core: CoreContext<C>, info: LitefsInfo, log: Logger, waited: number): LitefsInfo {
  return answer(info, log, 'LITEFS_UNAVAILABLE', `LiteFS on this node did not answer within ${waited} ms; nothing was applied`, { litefs: core.state.litefs, mount: core.options.mount })
}
