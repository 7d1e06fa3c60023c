import { performance } from 'node:perf_hooks'
import { failure } from './answers.js'
import type { CoreContext } from './context.js'
import { txidToken } from './cookie.js'
import { dbLabel, missingDbCause } from './db-missing.js'
import { positionsToken, readPositions, type Positions } from './positions-token.js'
import { sayRefused } from './token-refused.js'
import { trackedPositions } from './token-dbs.js'
import type { LitefsHttpError } from './errors.js'
import { waitOutside } from './hold.js'
import type { Logger } from './logger.js'
import type { WaitResult } from './node-state.js'
import { formatTxid } from './txid.js'

// Writers and readers outside HTTP (superfly/litefs#326): a job, a queue
// consumer, a CLI. After a write, `tokenAfterWrite` reads the position from
// the authority (`-pos`) and returns the token a write's answer would carry,
// for the app to hand to a client over SSE, a websocket or an email. Before a
// read, `waitForToken` waits as a held read does — the same `readTimeout`, the
// same early ends (on the primary, for a TXID the primary is behind, the
// core closing, `maxWaiting`) and the same codes, thrown as LitefsHttpError
// instead of answered. Holding is hold.ts's; what a timeout yields is
// `readTimeoutAction`'s, except that a wait outside HTTP cannot be forwarded:
// `'primary'` throws LITEFS_READ_TIMEOUT there.

/** How a wait for a token ended, when it did not throw. */
export interface TokenWait {
  /** The TXID waited for (16 hex digits; several databases: the last one's), or undefined for no (or a malformed) token. */
  txid?: string
  waitedMs: number
  /** The primary itself is behind the token: nothing will bring it (as a read served at once). */
  unreachable?: true
  /** Timed out with `readTimeoutAction: 'stale'`: go on, the data may miss the token's write. */
  stale?: true
}

/** The token for this node's position now, after a write the caller made (the shared asynchronous -pos read, as a write's answer). */
export async function tokenAfterWrite<C> (core: CoreContext<C>, log: Logger): Promise<string> {
  const { state, options } = core
  const mount = options.mount
  if (state.litefs !== 'up') {
    // Not yet (a job that writes as its process starts: the event stream is
    // still subscribing) or no longer: waited for as a write waits for a
    // primary, within readTimeout. Still not up, the mount may be dead or a
    // plain directory: the write's outcome is unknown.
    const result = await waitOutside(core, 'mount', undefined, undefined, done => state.waitForLitefs(options.readTimeout, done))
    if (result === 'timeout') {
      throw failure(log, 'LITEFS_UNAVAILABLE', `LiteFS on this node did not answer within ${options.readTimeout} ms (${state.litefs}); the write's outcome is unknown`, { litefs: state.litefs, mount })
    }
    if (result !== 'ready') throw ended(core, log, result as 'closed' | 'overloaded', undefined)
  }
  const db = dbLabel(options)
  if (core.several !== undefined) {
    // Several databases: every tracked one's position, as a write's answer (write-cookie.ts).
    const positions: Positions = new Map()
    for (const [name, txid] of await core.several.read.after()) if (txid !== undefined) positions.set(name, txid)
    if (positions.size === 0) throw noPosition(core, log)
    return positionsToken(options.cookie, positions, options.db)
  }
  const txid = await state.positionAfter(db)
  if (txid === undefined) throw noPosition(core, log)
  return txidToken(options.cookie, txid)
}

/** No position after a write: where it was looked for (the state, or the mount) and what is there instead. */
function noPosition<C> (core: CoreContext<C>, log: Logger): Error {
  const { mount } = core.options
  const db = dbLabel(core.options)
  return failure(log, 'LITEFS_NO_POSITION', `no position for ${db} after the write: ${missingDbCause(core, '')}`, core.options.state !== undefined ? { db } : { mount, db })
}

function notAToken (token: unknown): TypeError {
  const got = Array.isArray(token) ? 'an array' : typeof token === 'object' ? 'an object' : `${typeof token} ${String(token)}`
  return Object.assign(new TypeError(`litefs-proxy: waitForToken(token): the token must be a string (a write's cookie or token header value), or null or undefined for none; got ${got}`), { code: 'ERR_INVALID_ARG_TYPE' })
}

/**
 * An AbortSignal, by what the wait uses of one (a signal of another realm or
 * polyfill is one too). Anything else — the AbortController itself is the
 * usual slip — is refused before a wait is registered: found only when the
 * wait ended, it threw from a timer and took the process down.
 */
function isSignal (signal: unknown): signal is AbortSignal {
  const s = signal as Partial<AbortSignal> | null
  return typeof s === 'object' && s !== null && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function' && typeof s.removeEventListener === 'function'
}

function notASignal (signal: unknown): TypeError {
  const got = typeof signal === 'object' && signal !== null ? `an object (${(signal as object).constructor?.name ?? 'no prototype'})` : `${typeof signal} ${String(signal)}`
  return Object.assign(new TypeError(`litefs-proxy: waitForToken(token, { signal }): signal must be an AbortSignal (controller.signal, AbortSignal.timeout(ms)); got ${got}`), { code: 'ERR_INVALID_ARG_TYPE' })
}

/** Wait until this node has the write `token` names; resolves as a held read is served, throws as it is answered. */
export async function waitForToken<C> (core: CoreContext<C>, log: Logger, token: string | null | undefined, signal?: AbortSignal): Promise<TokenWait> {
  const { state, options } = core
  // null: what a database column holds for "no token". Anything else not a string is a caller's mistake, said as one.
  if (token !== null && token !== undefined && typeof token !== 'string') throw notAToken(token)
  if (signal !== undefined && !isSignal(signal)) throw notASignal(signal)
  const positions = token == null ? undefined : readPositions(options.cookie, token, options.db)
  if (token != null && positions === undefined) sayRefused(core, token)
  // The databases this core tracks, the main one first; the others said once, as over HTTP (token-dbs.ts).
  const wanted = positions === undefined ? [] : trackedPositions(core, positions)
  if (wanted.length === 0) return { waitedMs: 0 }
  const started = performance.now()
  const waited = (): number => performance.now() - started
  if (state.litefs === 'down') {
    const result = await waitOutside(core, 'mount', formatTxid(wanted[0][1]), signal, done => state.waitForMount(options.readTimeout, done))
    if (result === 'timeout') {
      throw failure(log, 'LITEFS_UNAVAILABLE', `LiteFS on this node did not answer within ${options.readTimeout} ms`, { litefs: state.litefs, mount: options.mount })
    }
    if (result !== 'ready') throw ended(core, log, result as 'cancelled' | 'closed' | 'overloaded', signal)
  }
  // Each database behind in turn, all within one readTimeout (as a held read: read-path.ts).
  const deadline = performance.now() + options.readTimeout
  let hex = formatTxid(wanted[0][1])
  for (const [db, txid] of wanted) {
    hex = formatTxid(txid)
    if (state.role === 'primary' || state.reached(db, txid)) continue
    const result = await waitOutside(core, 'position', hex, signal, done => {
      const w = state.waitForPosition(db, txid, Math.max(0, deadline - performance.now()), done)
      // The primary's position settles a TXID it is behind; it is asked on the port reads arrive on.
      if (w !== undefined && core.probePort !== 0) core.probe.held(db, txid)
      return w
    })
    if (result === 'ready') continue
    if (result === 'unreachable') {
      // Debug: the probe's one info line says it for every wait its answer ended (primary-probe.ts).
      log.debug({ db, txid: hex }, 'litefs-proxy: the primary is behind this token; going on as the primary would')
      return { txid: hex, waitedMs: waited(), unreachable: true }
    }
    if (result !== 'timeout') throw ended(core, log, result, signal)
    return timedOut(core, log, db, hex, waited())
  }
  return { txid: hex, waitedMs: waited() }
}

function timedOut<C> (core: CoreContext<C>, log: Logger, db: string, hex: string, waitedMs: number): TokenWait {
  const { state, options } = core
  const position = formatTxid(state.position(db))
  if (options.readTimeoutAction === 'stale') {
    log.warn({ db, txid: hex, position }, 'litefs-proxy: a wait for a token timed out; going on with this replica\'s data, it may be stale')
    core.observer.readTimedOut(undefined, 'stale', hex, position)
    return { txid: hex, waitedMs, stale: true }
  }
  log.warn({ db, txid: hex, position }, 'litefs-proxy: a wait for a token timed out')
  core.observer.readTimedOut(undefined, 'error', hex, position)
  throw failure(log, 'LITEFS_READ_TIMEOUT', `replica did not reach TXID ${hex} within ${options.readTimeout} ms (at ${position})`, {})
}

function ended<C> (core: CoreContext<C>, log: Logger, result: Exclude<WaitResult, 'ready' | 'timeout' | 'unreachable'> | 'overloaded', signal: AbortSignal | undefined): unknown {
  // Aborted by the caller: its own reason, as fetch() and timers/promises reject.
  if (result === 'cancelled') return (signal as AbortSignal).reason
  if (result === 'overloaded') {
    const max = core.options.maxWaiting
    return failure(log, 'LITEFS_OVERLOADED', `${max} requests are held already; try again shortly`, { maxWaiting: max })
  }
  return failure(log, 'LITEFS_CLOSED', 'the app is shutting down', {}) satisfies LitefsHttpError
}
