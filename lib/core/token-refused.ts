import type { CoreContext } from './context.js'
import type { CookieSettings } from './cookie.js'
import { readPositions } from './positions-token.js'

// A token that does not verify is no token (token.ts): its read is served
// without waiting. Most such tokens are a client's invention. But when the
// nodes do not all sign alike, every token one node writes is refused by the
// next, and reads miss their own writes with nothing said. So the first token
// refused for a reason that names a misconfiguration is said, once per reason
// (LITEFS_TOKEN_SECRET):
// - signed with a secret this node does not have: nodes with different
//   `secret`s, a rotation that dropped the old secret too soon, or a forgery;
// - unsigned on a node with a `secret`: a node without one, or a token from
//   before the secret was set;
// - signed on a node without a `secret`: the other way round.
// A token that reads as none of these (garbage) names no misconfiguration
// and is not said. Only refused tokens come here: valid ones cost nothing.
// Said once per mount and reason, as a token for a database not tracked is.

/** A MAC as cookie.ts writes it: HMAC-SHA256 in base64url without padding. */
const MAC = /^[A-Za-z0-9_-]{43}$/

export type Refusal = 'other-secret' | 'unsigned' | 'signed'

/**
 * Why a token this node refused (`settings` did not verify it) names a
 * misconfiguration, if it does: its payload reads as positions once its
 * signature is set aside (or once none is expected).
 */
export function refusal (settings: CookieSettings, value: string, main: string | undefined): Refusal | undefined {
  const token = value.trim()
  const unsigned: CookieSettings = { ...settings, secrets: [] }
  const dot = token.lastIndexOf('.')
  if (dot > 0 && MAC.test(token.slice(dot + 1)) && readPositions(unsigned, token.slice(0, dot), main) !== undefined) {
    return settings.secrets.length > 0 ? 'other-secret' : 'signed'
  }
  if (settings.secrets.length > 0 && readPositions(unsigned, token, main) !== undefined) return 'unsigned'
  return undefined
}

const SAID: Record<Refusal, string> = {
  'other-secret': 'a read\'s token is signed with a secret this node does not have: nodes whose "secret" differs (or a rotation that dropped the old secret before its tokens expired), or a forged token',
  unsigned: 'a read\'s token is not signed, but this node has a "secret": a node without "secret" wrote it, or it is from before the secret was set',
  signed: 'a read\'s token is signed, but this node has no "secret": a node with one wrote it'
}

/** Say, once per reason, a refused token that names a misconfiguration (see above). */
export function sayRefused<C> (core: CoreContext<C>, value: string): void {
  const why = refusal(core.options.cookie, value, core.options.db)
  if (why === undefined) return
  core.warn.say('LITEFS_TOKEN_SECRET', `${core.options.mount}\0${why}`, `${SAID[why]}. Its position is ignored, so a read here may miss the client's own write (said once: such tokens may be many). Give every node the same "secret" (while rotating, the same list: the first signs, all verify)`, { reason: why })
}
