import { MAX_TIMER_MS, MAX_TIMER_WORDS, parseDuration } from './duration.js'
import { PathPatterns, type PathPattern, type PathRules } from './path-match.js'

// The options of replica reports and durability (DESIGN §3.5, issue 21),
// checked and given their defaults: options.ts hands them here so it keeps to
// the options every request uses. What they do is peer-link.ts's (reports),
// peer-endpoint.ts's (the primary's endpoint) and durability.ts's (the wait).

/** Where a primary's litefs-proxy takes its peers' reports (POST, signed). */
export const PEER_PATH = '/litefs/peers'

export interface DurabilityInput {
  /**
   * Hold the answer of a write served here as primary until every connected
   * candidate has it: `true` for every write, path patterns for those writes
   * only (a route's own setting wins). Needs `peerSecret`. Default false.
   */
  durability?: boolean | PathPattern[]
  /** The longest a write's answer waits for its candidates, then 500 LITEFS_NOT_REPLICATED. Default `5s`. */
  durabilityTimeout?: number | string
  /**
   * The secret (at least 16 characters; an array while rotating: the first
   * signs, all verify) shared by every node's litefs-proxy: with it each node
   * reports its position to the primary's, which accepts only signed reports.
   * Without it nothing is reported and the endpoint does not exist.
   */
  peerSecret?: string | string[]
  /** This node's name in the primary's table of peers. Default: `consul.hostname`, else the OS host name. */
  peerName?: string
}

export interface DurabilitySettings {
  /** Writes whose answers wait: all, none, or those matching (a route's own setting wins). */
  on: boolean | PathPatterns
  timeout: number
  /** Empty: reports off. */
  secrets: string[]
  name: string | undefined
}

export const DURABILITY_KEYS = ['durability', 'durabilityTimeout', 'peerSecret', 'peerName'] as const

type Fail = (name: string, expected: string, got: unknown) => never

export function resolveDurability (opts: Record<string, unknown>, fail: Fail): DurabilitySettings {
  const raw = opts.durability ?? false
  let on: boolean | PathPatterns
  if (typeof raw === 'boolean') on = raw
  else if (Array.isArray(raw) && raw.length > 0 && raw.every(p => (typeof p === 'string' && p.startsWith('/')) || p instanceof RegExp)) on = new PathPatterns(raw)
  else fail('durability', 'true, false, or a non-empty array of path globs starting with "/" or RegExps', raw)
  const timeout = opts.durabilityTimeout === undefined ? 5000 : parseDuration(opts.durabilityTimeout)
  if (timeout === undefined || timeout === 0) fail('durabilityTimeout', 'a positive duration (milliseconds, or a string such as "5s")', opts.durabilityTimeout)
  if (timeout > MAX_TIMER_MS) fail('durabilityTimeout', `a duration ${MAX_TIMER_WORDS}`, opts.durabilityTimeout)
  const secret = opts.peerSecret ?? []
  const secrets = typeof secret === 'string' ? [secret] : secret
  // An empty array given would turn replica reports off, silently.
  if (!Array.isArray(secrets) || (opts.peerSecret !== undefined && secrets.length === 0) || !secrets.every(s => typeof s === 'string' && s.length >= 16)) {
    // Never echo a secret, not even a bad one.
    fail('peerSecret', 'a string of at least 16 characters, or an array of them', Array.isArray(secret) ? `an array of ${secret.length}` : typeof secret === 'string' ? `a string of ${secret.length} characters` : secret)
  }
  const name = opts.peerName
  if (name !== undefined && (typeof name !== 'string' || name === '' || name.length > 253)) fail('peerName', "this node's name among its peers (1–253 characters)", name)
  return { on, timeout, secrets, name }
}

/** Whether a write on `path` (its route's own setting `route`) waits for its candidates. */
export function durableFor (settings: DurabilitySettings, route: boolean | undefined, path: string, rules: PathRules, routeUrl: string | undefined): boolean {
  if (route !== undefined) return route
  const on = settings.on
  if (typeof on === 'boolean') return on
  return on.matches(path, rules) || (routeUrl !== undefined && on.matches(routeUrl))
}
