import { ANSWERS, litefsError } from './answers.js'
import type { LitefsAnswer } from './request.js'
import type { CoreContext } from './context.js'

// No success for a write whose commit is not confirmed (DESIGN §3.5; issue 19).
// Between a handler's commit and its answer, this node can lose what makes a
// commit stay: LiteFS stopping (a commit SQLite reported done can be rolled
// back, or truncated when LiteFS restarts: fixtures README), a demotion, or
// the Consul lease (the fence closed: another node may be primary). So once
// the `-pos` read that followed the commit is back, a success is sent only if
// this node still writes as primary then; else the client is told the outcome
// is unknown. The app's error answers pass as they are: they claim nothing.
// When to ask is write-cookie.ts's; what the fence knows is lease-fence.ts's.

/**
 * Whether this node can still vouch for a write it served as primary: it
 * writes as primary now (LiteFS up, primary, fence open). `txid`: the position
 * read after the commit; undefined (none could be read) has the mount itself
 * looked at, so a dead mount is not taken for a missing database.
 */
export function commitConfirmed<C> (core: CoreContext<C>, txid: bigint | undefined): boolean {
  const state = core.state
  state.refresh()
  return (txid !== undefined || state.mountAnswers()) && state.writable
}

/**
 * What to send instead of the app's answer to an unconfirmed write: 502
 * LITEFS_OUTCOME_UNKNOWN for a success (logged once per answer), undefined for
 * the app's error answers, which claim nothing and pass as they are.
 */
export function outcomeUnknown<C> (core: CoreContext<C>, c: C): LitefsAnswer | undefined {
  const status = core.hooks.res(c).statusCode
  if (status >= 400) return undefined
  const state = core.state
  const why = state.litefs !== 'up' ? 'LiteFS on this node went away' : state.role !== 'primary' ? 'this node is no longer the primary' : 'Consul no longer confirms this node\'s lease'
  core.hooks.log(c).warn({ status, role: state.role, litefs: state.litefs }, `litefs-proxy: ${ANSWERS.LITEFS_OUTCOME_UNKNOWN.line} (${why})`)
  return litefsError('LITEFS_OUTCOME_UNKNOWN', `the write ran, but ${why} before its commit was confirmed: it may or may not have been applied`)
}
