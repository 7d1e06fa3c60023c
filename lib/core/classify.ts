import { PEER_PATH } from './durability-options.js'
import type { ResolvedOptions } from './options.js'
import { EXACT, normalizePath, pathOf, type PathRules } from './path-match.js'
import type { RequestKind, RouteSetting } from './request.js'

// What a request is, by DESIGN §3's first three rules: passthrough (a glob, or
// the route's own `false`), the health check, a read (the safe methods, unless
// `alwaysForward` says it writes), else a write. Paths are compared as the
// app's router compares them (`rules`), and the pattern of the route the router
// matched, when the adapter knows it, is checked too, so every spelling that
// reaches a handler is classified as that handler. The peers' endpoint
// (`peerSecret`) comes first: it is litefs-proxy's own, as the health check. What happens to each kind
// is the paths' business (read-path.ts, write-path.ts, health.ts).

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

export class Classifier {
  // The health path as each router spells it: one per rules object, not one per request.
  private readonly healthFor = new WeakMap<PathRules, string>()

  constructor (private readonly options: ResolvedOptions) {}

  classify (method: string, url: string, route: RouteSetting, rules: PathRules = EXACT, routeUrl?: string): RequestKind {
    const path = pathOf(url)
    const o = this.options
    // The peers' endpoint exists only with the secret that guards it; no route or glob hides it.
    if (method === 'POST' && path === PEER_PATH && o.durability.secrets.length > 0) return 'peer'
    if (route === false) return 'passthrough'
    if (o.passthrough.matches(path, rules) || (routeUrl !== undefined && o.passthrough.matches(routeUrl))) return 'passthrough'
    if ((method === 'GET' || method === 'HEAD') && this.isHealth(path, rules, routeUrl)) return 'health'
    if (READS.has(method) && route?.alwaysForward !== true && !o.alwaysForward.matches(path, rules) &&
      (routeUrl === undefined || !o.alwaysForward.matches(routeUrl))) return 'read'
    return 'write'
  }

  private isHealth (path: string, rules: PathRules, routeUrl: string | undefined): boolean {
    const health = this.options.healthPath
    if (health === false) return false
    if (routeUrl === health) return true
    let normalized = this.healthFor.get(rules)
    if (normalized === undefined) {
      normalized = normalizePath(health, { ...rules, decode: 'none' })
      this.healthFor.set(rules, normalized)
    }
    return (rules === EXACT ? path : normalizePath(path, rules)) === normalized
  }
}
