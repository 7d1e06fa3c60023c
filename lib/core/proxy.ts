import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { resetIdleConnections } from './idle-reset.js'
import { clientGone } from './client-gone.js'
import { hostname as osHostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Agent } from 'undici'
import { readTxidCookie, txidSetCookie } from './cookie.js'
import { LitefsHttpError } from './errors.js'
import { FORWARDED_HEADER, bodyTaken, forward } from './forward.js'
import { ownOrigin } from './own-origin.js'
import { acquireLitefsNode, type NodeLease } from './litefs-node.js'
import { PrimaryProbe } from './primary-probe.js'
import { warnings, type Warnings } from './warnings.js'
import { Observer, type LitefsStats, type WaitKind } from './observe.js'
import { silentLogger, type Logger } from './logger.js'
import type { NodeState, Role, WaitResult, Waiter } from './node-state.js'
import { resolveOptions, type LitefsRouteOptions, type ResolvedOptions } from './options.js'
import { EXACT, normalizePath, pathOf, type PathRules } from './path-match.js'
import type { ForwardedView } from './forwarded-headers.js'
import { formatTxid } from './txid.js'

export type RequestKind = 'passthrough' | 'health' | 'read' | 'write'

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
  /** The client's TXID (cookie) that a read was checked against, as 16 hex digits. */
  awaitedTxid?: string
  /** Milliseconds a read was held for the replica to catch up. */
  waitedMs?: number
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

/**
 * Resolves once each response has finished or its connection closed, or after
 * `withinMs`: a caller about to cut connections lets answers just given leave
 * first, and never hangs on a client.
 */
export async function whenAnswered (responses: ServerResponse[], withinMs = 1000): Promise<void> {
  const pending = responses.filter(res => !res.writableFinished && !res.destroyed)
  if (pending.length === 0) return
  await new Promise<void>(resolve => {
    let left = pending.length
    const timer = setTimeout(resolve, withinMs)
    for (const res of pending) {
      res.once('close', () => {
        if (--left === 0) { clearTimeout(timer); resolve() }
      })
    }
  })
}

/** What the adapter does after `decide`: run the app, send `info.answer`, or nothing (answered or client gone). */
export function nextStep (info: LitefsInfo): 'app' | 'answer' | 'none' {
  if (info.aborted === true || info.forwardedTo !== undefined) return 'none'
  return info.answer === undefined ? 'app' : 'answer'
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])
const RETRY_EVERY = 100 // ms between connection attempts to a primary that refuses (as LiteFS)

/**
 * The framework-free core: classifies a request, holds reads until the replica
 * has the client's last write, serves, forwards or replays writes, and writes
 * the cookie. Adapters only translate between their framework and these calls.
 */
export class LitefsCore<C = ServerResponse> {
  readonly options: ResolvedOptions
  readonly state: NodeState
  /** This node's name in the loop-guard header of the requests it forwards. */
  readonly nodeName = osHostname()
  private readonly lease: NodeLease | undefined
  private readonly dispatcher = new Agent({ connectTimeout: 2000 })
  private readonly probe: PrimaryProbe
  private saidBodyConsumed = false
  private dbMissing = false
  private readonly warn: Warnings
  /** This server's port, for the primary's URL (every node serves on the same port by default). */
  private probePort = 0

  constructor (input: unknown, private readonly hooks: AdapterHooks<C>, log: Logger = silentLogger) {
    const options = resolveOptions(input)
    this.options = options
    this.warn = warnings(log)
    this.observer = new Observer(options.serverTiming)
    if (options.state !== undefined) {
      this.state = options.state
    } else {
      this.lease = acquireLitefsNode({
        mount: options.mount,
        api: options.api,
        role: options.role,
        databases: [options.db],
        pollInterval: options.pollInterval,
        log
      })
      this.state = this.lease.state
    }
    const health = options.healthPath
    this.probe = new PrimaryProbe(this.state, options.db, () => {
      const primary = this.state.primaryHostname
      if (primary === undefined || health === false || this.state.role === 'primary') return undefined
      return this.options.primaryOrigin(primary, this.probePort) + health
    }, this.dispatcher, log)
  }

  /** The client's request as the adapter's framework believes it (what a proxy vouches for upstream). */
  view (c: C): ForwardedView {
    return this.hooks.view(c)
  }

  /**
   * What a request is (DESIGN §3, in order), its path compared as the app's
   * router compares paths (`rules`), and the pattern of the route it matched,
   * if the adapter knows it, as well.
   */
  classify (method: string, url: string, route: RouteSetting, rules: PathRules = EXACT, routeUrl?: string): RequestKind {
    if (route === false) return 'passthrough'
    const path = pathOf(url)
    const o = this.options
    if (o.passthrough.matches(path, rules) || (routeUrl !== undefined && o.passthrough.matches(routeUrl))) return 'passthrough'
    if ((method === 'GET' || method === 'HEAD') && this.isHealth(path, rules, routeUrl)) return 'health'
    if (READS.has(method) && route?.alwaysForward !== true && !o.alwaysForward.matches(path, rules) &&
      (routeUrl === undefined || !o.alwaysForward.matches(routeUrl))) return 'read'
    return 'write'
  }

  private readonly healthFor = new WeakMap<PathRules, string>()

  private isHealth (path: string, rules: PathRules, routeUrl: string | undefined): boolean {
    const health = this.options.healthPath
    if (health === false) return false
    if (routeUrl === health) return true
    let normalized = this.healthFor.get(rules)
    if (normalized === undefined) {
      normalized = normalizePath(health, { ...rules, decode: false })
      this.healthFor.set(rules, normalized)
    }
    return (rules === EXACT ? path : normalizePath(path, rules)) === normalized
  }

  /**
   * Decide a request before the app sees it. Synchronous on the fast paths; a
   * Promise when the request is held or forwarded. Then see `nextStep(info)`.
   */
  decide (c: C): LitefsInfo | Promise<LitefsInfo> {
    const req = this.hooks.req(c)
    // A server's IncomingMessage always has a method (the type also covers client responses).
    const hooks = this.hooks
    this.server = (req.socket as Socket & { server?: Server }).server
    const info: LitefsInfo = { kind: this.classify(req.method as string, hooks.url(c), hooks.route(c), hooks.pathRules(c), hooks.routeUrl(c)), role: this.state.role, local: false }
    hooks.attach(c, info)
    switch (info.kind) {
      case 'read': return this.read(c, req, info)
      case 'write': return this.write(c, req, info)
      case 'health': info.answer = this.health(); return info
      default: return info
    }
  }

  private read (c: C, req: IncomingMessage, info: LitefsInfo): LitefsInfo | Promise<LitefsInfo> {
    const txid = readTxidCookie(this.options.cookie, req.headers.cookie)
    if (txid !== undefined && txid !== 0n) info.awaitedTxid = formatTxid(txid)
    // A dead mount serves nothing but errors, or an empty directory where SQLite
    // creates a new database: wait for LiteFS to come back.
    if (this.state.litefs === 'down') return this.holdForMount(c, info, txid)
    return this.readNow(c, info, txid)
  }

  private readNow (c: C, info: LitefsInfo, txid: bigint | undefined): LitefsInfo | Promise<LitefsInfo> {
    if (txid === undefined || txid === 0n) return info
    // The primary has every transaction there is; a cookie ahead of it cannot be
    // satisfied by waiting (see DESIGN §3.4).
    if (this.state.role === 'primary') return info
    const db = this.options.db
    if (this.state.position(db) >= txid || (this.state.readPosition(db) ?? 0n) >= txid) return info
    return this.hold(c, info, txid)
  }

  private async holdForMount (c: C, info: LitefsInfo, txid: bigint | undefined): Promise<LitefsInfo> {
    const log = this.hooks.log(c)
    const started = performance.now()
    log.debug({ mount: this.options.mount }, 'litefs-proxy: holding read until LiteFS is back')
    const result = await this.waitFor(c, 'mount', info.awaitedTxid, done => this.state.waitForMount(this.options.readTimeout, done))
    info.waitedMs = performance.now() - started
    info.role = this.state.role
    if (result === 'timeout') return this.unavailable(info, log, this.options.readTimeout)
    if (result === 'overloaded') return this.overloaded(info, log)
    if (result !== 'ready') return this.ended(info, result)
    return await this.readNow(c, info, txid)
  }

  // A promise chain, not an async function: a suspended async frame is most of
  // what a held read would otherwise cost in heap (see waitFor).
  private hold (c: C, info: LitefsInfo, txid: bigint): Promise<LitefsInfo> {
    const state = this.state
    const db = this.options.db
    const log = this.hooks.log(c)
    const started = performance.now()
    log.debug({ db, txid: info.awaitedTxid, position: formatTxid(state.position(db)) }, 'litefs-proxy: holding read until the replica catches up')
    this.probePort = this.hooks.req(c).socket.localPort as number
    return this.waitFor(c, 'position', info.awaitedTxid, done => {
      const waiter = state.waitForPosition(db, txid, this.options.readTimeout, done)
      if (waiter !== undefined) this.probe.held(txid)
      return waiter
    }).then(result => this.afterHold(c, info, result, started, log))
  }

  /** How a held read's wait ended: serve it, send it to the primary, or answer it. */
  private async afterHold (c: C, info: LitefsInfo, result: WaitResult | 'overloaded', started: number, log: Logger): Promise<LitefsInfo> {
    const state = this.state
    const db = this.options.db
    info.waitedMs = performance.now() - started
    info.role = state.role
    if (result === 'ready') {
      log.debug({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: replica caught up; serving read')
    } else if (result === 'unreachable') {
      info.unreachable = true
      log.info({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: the primary is behind this read\'s TXID; serving it as the primary would')
    } else if (result === 'timeout') {
      log.warn({ db, txid: info.awaitedTxid, position: formatTxid(state.position(db)) }, 'litefs-proxy: read timed out waiting for replication')
      if (this.options.readTimeoutAction === 'primary' && state.primaryKnown && state.role !== 'primary') {
        return await this.elsewhere(c, info, performance.now() + this.options.primaryRedirectTimeout)
      }
      info.answer = new LitefsHttpError(504, 'LITEFS_READ_TIMEOUT',
        `replica did not reach TXID ${info.awaitedTxid as string} within ${this.options.readTimeout} ms (at ${formatTxid(state.position(db))})`)
    } else if (result === 'overloaded') {
      this.overloaded(info, log)
    } else {
      this.ended(info, result)
    }
    return info
  }

  private write (c: C, req: IncomingMessage, info: LitefsInfo): LitefsInfo | Promise<LitefsInfo> {
    const state = this.state
    state.refresh()
    info.role = state.role
    if (state.role === 'primary') {
      info.local = true
      return info
    }
    const deadline = performance.now() + this.options.primaryRedirectTimeout
    // Loop guard: a request another node already forwarded is never forwarded again.
    if (req.headers[FORWARDED_HEADER] !== undefined) return this.holdForPrimaryRole(c, info, deadline)
    return this.elsewhere(c, info, deadline)
  }

  /**
   * Send a request to the primary (stream it, or ask Fly.io to replay it),
   * holding it while no primary is known, until `deadline`.
   */
  private async elsewhere (c: C, info: LitefsInfo, deadline: number): Promise<LitefsInfo> {
    const state = this.state
    const req = this.hooks.req(c)
    const res = this.hooks.res(c)
    const log = this.hooks.log(c)
    const started = performance.now()
    for (;;) {
      state.refresh()
      info.role = state.role
      let origin: string
      if (state.role === 'primary') {
        info.heldMs = performance.now() - started
        if (!bodyTaken(req)) {
          // Promoted while the request waited: serve it here.
          info.local = info.kind === 'write'
          return info
        }
        // An attempt to the old primary read the body before that primary
        // reset it unread, so the app here would wait for a body already gone.
        // The kept copy goes to this node's own server, as to any primary.
        const own = ownOrigin(req)
        if (own === undefined) return this.primaryChanged(info, log)
        origin = own
      } else {
        const primary = state.primaryHostname
        if (primary === undefined) {
          const result = await this.waitFor(c, 'primary', undefined, done => state.waitForPrimary(Math.max(0, deadline - performance.now()), done))
          if (result === 'timeout') return this.noPrimary(info, log)
          if (result === 'overloaded') return this.overloaded(info, log)
          if (result !== 'ready') return this.ended(info, result)
          continue
        }
        info.heldMs = performance.now() - started
        if (this.options.forward === 'fly-replay') {
          info.answer = { statusCode: 200, headers: { 'fly-replay': `instance=${primary}` }, body: '' }
          log.debug({ primary }, 'litefs-proxy: asking Fly.io to replay the request on the primary')
          return info
        }
        origin = this.options.primaryOrigin(primary, req.socket.localPort as number)
      }
      const elapsed = this.observer.forwardStarted(req, origin, res)
      const result = await forward({
        req,
        res,
        path: this.hooks.url(c),
        origin,
        view: this.hooks.view(c),
        marker: this.nodeName,
        bodyLimit: this.options.forwardBodyLimit,
        timeout: this.options.forwardTimeout,
        dispatcher: this.dispatcher,
        takeOver: () => this.hooks.takeOver(c)
      })
      this.observer.forwardEnded(req, origin, result.outcome, result.outcome === 'failed' ? result.error.code : undefined, elapsed())
      if (result.outcome === 'gone') return this.ended(info, 'cancelled')
      if (result.outcome === 'sent') {
        if (this.unresolvedSaid) { // a flag: nothing built per forward otherwise
          this.unresolvedSaid = false
          this.warn.clear('LITEFS_PRIMARY_UNRESOLVED', 'primaryUrl', `forwarding reaches the primary again (${origin})`)
        }
        info.forwardedTo = origin
        info.forwardMs = elapsed()
        log.debug({ primary: origin, forwardMs: info.forwardMs, heldMs: info.heldMs }, 'litefs-proxy: forwarded to the primary')
        return info
      }
      if (result.unresolved === true) {
        // Often a misconfiguration, not a blip: LiteFS names the primary by its
        // lease hostname, which the network here need not know (said once).
        this.unresolvedSaid = true
        this.warn.say('LITEFS_PRIMARY_UNRESOLVED', 'primaryUrl', `the primary's address ${origin} does not resolve: writes on this replica wait for it and then fail. Is "primaryUrl" right? It maps LiteFS's lease hostname to a URL this node can reach`, { primary: origin })
      }
      if (!result.retry || performance.now() + RETRY_EVERY > deadline) {
        if (result.error.code === 'LITEFS_BODY_CONSUMED' && !this.saidBodyConsumed) {
          // A misconfiguration, said once loudly; each request still gets its 500.
          this.saidBodyConsumed = true
          log.error({ path: this.hooks.url(c) }, 'litefs-proxy: a body parser (or other body reader) runs before litefs-proxy: writes on replicas cannot be forwarded. Mount litefs-proxy first')
        }
        log.warn({ primary: origin, code: result.error.code, err: result.error.message }, 'litefs-proxy: forwarding to the primary failed')
        info.answer = result.error
        return info
      }
      // Refused at connect: nothing was sent. The primary may be restarting or
      // gone; look again shortly (LiteFS itself retries every 100 ms).
      log.debug({ primary: origin }, 'litefs-proxy: primary refused the connection; retrying')
      await this.pause(c)
      if (this.closing) return this.ended(info, 'closed')
      // A client that left meanwhile: forward() sees it before sending anything.
    }
  }

  /** A forwarded request on a node that is not primary: only this node becoming primary can serve it. */
  private async holdForPrimaryRole (c: C, info: LitefsInfo, deadline: number): Promise<LitefsInfo> {
    const log = this.hooks.log(c)
    log.debug({ from: this.hooks.req(c).headers[FORWARDED_HEADER] }, 'litefs-proxy: a forwarded write reached a replica; not forwarding it again')
    const started = performance.now()
    const result = await this.waitFor(c, 'primary', undefined, done => this.state.waitForPrimary(Math.max(0, deadline - started), done, true))
    info.heldMs = performance.now() - started
    info.role = this.state.role
    if (result === 'ready') {
      info.local = true
      return info
    }
    if (result === 'timeout') return this.noPrimary(info, log)
    if (result === 'overloaded') return this.overloaded(info, log)
    return this.ended(info, result)
  }

  /**
   * Run one wait, cancelling it if the client disconnects meanwhile. The core
   * keeps its own waiters: closing it ends them (503 LITEFS_CLOSED), and only
   * them — another app sharing the mount's state keeps its own. Past
   * `maxWaiting` held requests in the process, nothing more is held: 'overloaded'.
   */
  // Not an async function, nor are the held paths' callers where it matters:
  // each suspended async frame costs a held request about 300 bytes of heap.
  private waitFor (c: C, kind: WaitKind, txid: string | undefined, start: (done: (r: WaitResult) => void) => ReturnType<NodeState['waitForPosition']>): Promise<WaitResult | 'overloaded'> {
    if (this.closing) return Promise.resolve('closed')
    const res = this.hooks.res(c)
    const req = this.hooks.req(c)
    if (LitefsCore.heldInProcess >= this.options.maxWaiting) {
      this.observer.waitEnded(req, kind, 'overloaded', 0, res)
      return Promise.resolve('overloaded')
    }
    const started = performance.now()
    this.observer.waitStarted(req, kind, txid)
    return new Promise<WaitResult>(resolve => {
      let gone: (() => void) | undefined
      let waiter: Waiter | undefined
      waiter = start(r => {
        if (gone !== undefined) res.off('close', gone)
        if (waiter !== undefined) {
          this.held.delete(waiter)
          LitefsCore.heldInProcess--
        }
        this.observer.waitEnded(req, kind, r, performance.now() - started, res)
        resolve(r)
      })
      if (waiter === undefined) return
      this.held.set(waiter, c)
      LitefsCore.heldInProcess++
      const w = waiter
      gone = () => { this.state.cancel(w) }
      // on, not once (its wrapper costs more); the end of the wait removes it.
      res.on('close', gone)
      // A client already gone before the wait began sends no 'close' any more.
      if (clientGone(res)) gone()
    })
  }

  /** Requests held by every core of the process (maxWaiting is per process). */
  static heldInProcess = 0
  private readonly observer: Observer

  /** What this app's litefs-proxy has done, and where it stands (see LitefsStats). */
  stats (): LitefsStats {
    return this.observer.stats(this.held.size, this.state)
  }

  /** The server this core's requests arrive on (the last one seen), whose idle connections a drain resets. */
  private server: Server | undefined

  /** Requests this core holds now, and their contexts. */
  private readonly held = new Map<Waiter, C>()
  /** A primary's host name did not resolve here, and no forward has got through since. */
  private unresolvedSaid = false
  /** Requests between two connection attempts, and how to wake them. */
  private readonly pausing = new Map<C, () => void>()
  private closing = false

  /** Wait RETRY_EVERY ms before the next attempt; drain() ends the wait at once. */
  private async pause (c: C): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(wake, RETRY_EVERY)
      const pausing = this.pausing
      function wake (): void {
        clearTimeout(timer)
        pausing.delete(c)
        resolve()
      }
      pausing.set(c, wake)
    })
  }

  /**
   * Stop holding: every request this core holds is answered 503 LITEFS_CLOSED at
   * once, and none is held from now on (Fastify's preClose; the adapters'
   * close()). Returns the responses being answered, so a caller about to cut
   * connections can let those answers leave first.
   */
  drain (): ServerResponse[] {
    this.closing = true
    resetIdleConnections(this.server) // see idle-reset.ts: racing forwards from replicas are then retried
    const answered = [...this.held.values(), ...this.pausing.keys()]
    for (const w of [...this.held.keys()]) this.state.end(w, 'closed')
    for (const wake of [...this.pausing.values()]) wake()
    return answered.map(c => this.hooks.res(c))
  }

  private noPrimary (info: LitefsInfo, log: Logger): LitefsInfo {
    if (this.state.litefs !== 'up') return this.unavailable(info, log, this.options.primaryRedirectTimeout)
    info.answer = new LitefsHttpError(503, 'LITEFS_NO_PRIMARY',
      `no primary became available within ${this.options.primaryRedirectTimeout} ms`, { 'retry-after': '1' })
    log.warn({ role: this.state.role }, 'litefs-proxy: no primary available for a write')
    return info
  }

  /**
   * This node became primary while its write was being forwarded, and the
   * body the app needs was read by that attempt; it cannot reach its own
   * server in plain HTTP/1.1 (TLS, HTTP/2) to replay it. Nothing was applied.
   */
  private primaryChanged (info: LitefsInfo, log: Logger): LitefsInfo {
    info.answer = new LitefsHttpError(503, 'LITEFS_PRIMARY_CHANGED',
      'this node became the primary while the write was being forwarded; nothing was applied', { 'retry-after': '1' })
    log.warn({ role: this.state.role }, 'litefs-proxy: a write whose body went to the old primary cannot be replayed here; answered 503')
    return info
  }

  /** `maxWaiting` requests are held in this process already: this one is refused at once, not held. */
  private overloaded (info: LitefsInfo, log: Logger): LitefsInfo {
    info.answer = new LitefsHttpError(503, 'LITEFS_OVERLOADED',
      `${this.options.maxWaiting} requests are held already; try again shortly`, { 'retry-after': '1' })
    log.warn({ held: LitefsCore.heldInProcess, maxWaiting: this.options.maxWaiting }, 'litefs-proxy: too many requests held; refused one at once')
    return info
  }

  /** LiteFS on this node did not answer (stream lost, mount dead) for `waited` ms: nothing was applied. */
  private unavailable (info: LitefsInfo, log: Logger, waited: number): LitefsInfo {
    info.answer = new LitefsHttpError(503, 'LITEFS_UNAVAILABLE',
      `LiteFS on this node did not answer within ${waited} ms; nothing was applied`, { 'retry-after': '1' })
    log.warn({ litefs: this.state.litefs, mount: this.options.mount }, 'litefs-proxy: LiteFS on this node is unavailable')
    return info
  }

  private ended (info: LitefsInfo, result: Exclude<WaitResult, 'ready' | 'timeout'> | 'overloaded'): LitefsInfo {
    if (result === 'cancelled') info.aborted = true
    else info.answer = new LitefsHttpError(503, 'LITEFS_CLOSED', 'the server is shutting down', { 'retry-after': '1' })
    return info
  }

  /**
   * The health check's answer: 200 `ok`; 503 `unavailable` while LiteFS on this
   * node does not answer (event stream lost, mount dead); 503 `lagging` when the
   * lag is above `maxLag` (or unknown).
   */
  health (): LitefsAnswer {
    const state = this.state
    state.refresh()
    const up = state.litefs === 'up'
    const lag = up ? state.readLag() : undefined
    const max = this.options.maxLag
    const ok = up && (max === 0 || (lag !== undefined && lag <= max))
    const body = {
      status: ok ? 'ok' : up ? 'lagging' : 'unavailable',
      role: state.role,
      primary: state.primaryHostname ?? null,
      lag: lag ?? null,
      // The primary's position from -pos itself: replicas ask it whether a read's TXID exists (primary-probe.ts).
      txid: formatTxid(state.role === 'primary' ? state.readPosition(this.options.db) ?? state.position(this.options.db) : state.position(this.options.db))
    }
    return { statusCode: ok ? 200 : 503, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) }
  }

  /**
   * The Set-Cookie value for a response about to be sent, or undefined. Only a
   * write served here as primary gets one, and its TXID is read from the
   * authority at this instant so it includes the handler's own commit.
   */
  cookie (info: LitefsInfo, c: C): string | undefined {
    if (!info.local) return undefined
    return this.cookieAt(info, c, this.state.readPosition(this.options.db))
  }

  private cookieAt (info: LitefsInfo, c: C, txid: bigint | undefined): string | undefined {
    if (txid === undefined) {
      // A write served as primary, and no position for its database: the app
      // writes somewhere LiteFS does not track (a wrong `db`), and read-your-writes is off.
      this.dbMissing = true
      const { mount, db } = this.options
      this.warn.say('LITEFS_DB', `${mount}/${db}`, `a write was served here as primary, but ${mount}/${db}-pos does not exist, so its answer has no cookie: is "db" the file name your app opens under the mount?`, { mount, db })
      return undefined
    }
    if (this.dbMissing) {
      this.dbMissing = false
      this.warn.clear('LITEFS_DB', `${this.options.mount}/${this.options.db}`, `${this.options.db}-pos exists now: writes are cookied`)
    }
    if (txid === 0n) return undefined
    info.setTxid = formatTxid(txid)
    this.observer.cookieSet(this.hooks.req(c), info.setTxid)
    return txidSetCookie(this.options.cookie, txid, this.hooks.secure(c))
  }

  async close (): Promise<void> {
    await whenAnswered(this.drain())
    this.probe.close()
    await this.lease?.release()
    await this.dispatcher.close()
  }
}
