import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ForwardedView } from './forwarded-headers.js'
import type { Logger } from './logger.js'
import type { Role } from './node-state.js'
import type { LitefsRouteOptions } from './options.js'
import type { PathRules } from './path-match.js'

// What the core knows about one request, and how an adapter shows it one. The
// paths (read-path.ts, write-path.ts…) fill in a LitefsInfo; the adapter reads
// it back through nextStep(). Types only, and the one function adapters need.

/** `peer`: another node's litefs-proxy reporting its position (peer-endpoint.ts), only with `peerSecret`. */
export type RequestKind = 'passthrough' | 'health' | 'peer' | 'read' | 'write'

/** An answer the proxy gives instead of the app (errors are LitefsHttpError). */
export interface LitefsAnswer {
  statusCode: number
  headers: Record<string, string>
  body: string
}

/** What litefs-proxy did with one request (`request.litefs` in Fastify, `req.litefs` elsewhere). */
export interface LitefsInfo {
  kind: RequestKind
  /** This node's role when the request was decided. */
  role: Role
  /** The client's TXID (cookie) that a read was checked against, as 16 hex digits (several databases: the last one it was held for). */
  awaitedTxid?: string
  /** Several databases (option `db` a list or `'*'`): the database a read was last held for. Unset with one database. */
  awaitedDb?: string
  /** Milliseconds a read was held for the replica to catch up. */
  waitedMs?: number
  /** `durability`: milliseconds a write's answer waited for its candidates. */
  replicatedMs?: number
  /** Milliseconds a write was held for a primary to be known. */
  heldMs?: number
  /** The TXID set in the response cookie, as 16 hex digits. */
  setTxid?: string
  /** A write served by this node as primary: its response gets the cookie. */
  local: boolean
  /** The primary's origin the request was streamed to, and how long the exchange took. */
  forwardedTo?: string
  forwardMs?: number
  /** The proxy's own answer (an error, the health check, a fly-replay), sent instead of the app's. */
  answer?: LitefsAnswer
  /** The client went away while the request was held: answer nothing. */
  aborted?: boolean
  /** The read timed out and was served here anyway (`readTimeoutAction: 'stale'`): it may miss the client's last write. */
  stale?: boolean
  /** The read's TXID was ahead of the primary itself (lost in a failover, a restore, a forgery): served at once. */
  unreachable?: boolean
}

/** A route's litefs setting: options, `false` (passthrough), or nothing. */
export type RouteSetting = LitefsRouteOptions | false | undefined

/**
 * How an adapter exposes one request to the core. `C` is whatever the adapter
 * holds per request (Fastify's reply, a ServerResponse): the core asks through
 * these functions instead of building a context object per request.
 */
export interface AdapterHooks<C> {
  req: (c: C) => IncomingMessage
  res: (c: C) => ServerResponse
  /** The request target as the client sent it (Express rewrites `req.url` inside mounted routers). */
  url: (c: C) => string
  route: (c: C) => RouteSetting
  log: (c: C) => Logger
  /** The client's request came over HTTPS (the adapter applies its trust-proxy rules). */
  secure: (c: C) => boolean
  /** The client's request as the framework believes it under its trust setting: what a forward vouches for. */
  view: (c: C) => ForwardedView
  /** How the framework's router compares paths (shared object, not one per request). */
  pathRules: (c: C) => PathRules
  /** The path pattern of the route the router matched (Fastify), if any: classified too, so every spelling the router accepts is. */
  routeUrl: (c: C) => string | undefined
  /** The core is about to write a forwarded answer straight to the raw response. */
  takeOver: (c: C) => void
  /** Make `info` visible on the request at once (hooks that run while it is held or forwarded see it). */
  attach: (c: C, info: LitefsInfo) => void
}

/** What the adapter does after `decide`: run the app, send `info.answer`, or nothing (answered or client gone). */
export function nextStep (info: LitefsInfo): 'app' | 'answer' | 'none' {
  if (info.aborted === true || info.forwardedTo !== undefined) return 'none'
  return info.answer === undefined ? 'app' : 'answer'
}
