// litefs-proxy: the framework-free core. Adapters: litefs-proxy/fastify (and,
// as they land, /express and /http).
export { LitefsCore, type LitefsInfo, type RequestKind, type RouteSetting, type TokenWait } from './core/proxy.js'
export { LitefsHttpError } from './core/errors.js'
export { LitefsOptionsError, resolveOptions, type LitefsOptions, type LitefsRouteOptions, type Duration } from './core/options.js'
export { NodeState, Waiter, type Role, type StateDriver, type WaitResult } from './core/node-state.js'
export { openLitefsNode, type LitefsNodeOptions } from './core/litefs-node.js'
export { acquireLitefsNode, type NodeLease } from './core/shared-node.js'
export { parseTxid, formatTxid, parsePos } from './core/txid.js'
export { readTxidCookie, readToken, txidSetCookie, txidToken, type CookieSettings } from './core/cookie.js'
export { compilePatterns, type PathPattern, type PathMatcher } from './core/path-match.js'
export { parseDuration } from './core/duration.js'
export type { Logger } from './core/logger.js'
export { CHANNELS, type LitefsStats } from './core/observe.js'
