import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Acknowledgement } from './acknowledgement.js'
import { Classifier } from './classify.js'
import type { CoreContext } from './context.js'
import { decide } from './decide.js'
import { forwardAgents } from './forward-agent.js'
import { acceptQueued } from './accept-queued.js'
import { litefsError } from './answers.js'
import type { LitefsHttpError } from './errors.js'
import { markerName } from './loop-guard.js'
import type { ForwardedView } from './forwarded-headers.js'
import { health } from './health.js'
import { heldNow } from './hold.js'
import { Lifecycle, whenAnswered } from './lifecycle.js'
import { acquireLitefsNode, type NodeLease } from './shared-node.js'
import { silentLogger, type Logger } from './logger.js'
import type { NodeState } from './node-state.js'
import { Observer, type LitefsStats } from './observe.js'
import { resolveOptions, type ResolvedOptions } from './options.js'
import { EXACT, type PathRules } from './path-match.js'
import { acknowledgeDurably } from './durability.js'
import { PeerLink } from './peer-link.js'
import { tokenAfterWrite, waitForToken, type TokenWait } from './outside-http.js'
import { PrimaryProbe } from './primary-probe.js'
import { PrimaryReach } from './primary-reach.js'
import { ClosingPrimaries } from './primary-closing.js'
import type { AdapterHooks, LitefsAnswer, LitefsInfo, RequestKind, RouteSetting } from './request.js'
import { warnings } from './warnings.js'
import { several, TrackedDatabases } from './databases.js'
import { PositionsRead, type Several } from './positions-read.js'
import { sayRefused } from './token-refused.js'
import type { Tunnels } from './tunnels.js'
import { clearDbOnPosition } from './db-missing.js'

// The core as adapters see it: built once per app from its options and its
// adapter's hooks, it wires the shared pieces (NodeState, the probe, the
// forwarding dispatcher, the observer) into one CoreContext and answers the
// adapters' calls by handing that context to the paths. It decides nothing
// itself: the order of decisions is decide.ts, each path a module of its own.

export { nextStep } from './request.js'
export { whenAnswered } from './lifecycle.js'
export type { Acknowledgement, AdapterHooks, LitefsAnswer, LitefsInfo, RequestKind, RouteSetting, TokenWait }

/**
 * The framework-free core: classifies a request, holds reads until the replica
 * has the client's last write, serves, forwards or replays writes, and writes
 * the cookie. Adapters only translate between their framework and these calls.
 */
export class LitefsCore<C = ServerResponse> {
  readonly options: ResolvedOptions
  readonly state: NodeState
  /** This node's entry in the loop-guard header of the requests it forwards (loop-guard.ts). */
  readonly nodeName = markerName()
  private readonly lease: NodeLease | undefined
  private readonly ctx: CoreContext<C>
  /** Where this core's lines go: the adapter's logger (the `logger` option; Fastify's own). */
  readonly log: Logger

  constructor (input: unknown, hooks: AdapterHooks<C>, log: Logger = silentLogger) {
    this.log = log
    const options = resolveOptions(input)
    this.options = options
    if (options.state !== undefined) {
      this.state = options.state
    } else {
      this.lease = acquireLitefsNode({
        mount: options.mount,
        api: options.api,
        role: options.role,
        databases: options.databases.named,
        pollInterval: options.pollInterval,
        consul: options.consul,
        log
      })
      this.state = this.lease.state
    }
    const state = this.state
    // A primary resetting an idle connection is closing: said before any answer can say it (primary-closing.ts).
    const agents = forwardAgents(origin => { ctx.closingPrimaries.mark(origin) })
    const health = options.healthPath
    const ctx: CoreContext<C> = {
      options,
      state,
      hooks,
      classifier: new Classifier(options),
      nodeName: this.nodeName,
      agents,
      // The primary's single `txid` is the main database's (with `'*'` alone there is none: its `databases` says all).
      probe: new PrimaryProbe(state, options.db ?? '', () => {
        const primary = state.primaryHostname
        if (primary === undefined || health === false || state.role === 'primary') return undefined
        try {
          return options.primaryOrigin(primary, ctx.probePort) + health
        } catch {
          return undefined // a primaryUrl function with no URL for it: no one to ask (forwarding says why: write-path.ts)
        }
      }, () => agents[options.forwardProtocol ?? ctx.probeProtocol], log),
      reach: new PrimaryReach(this.nodeName, () => agents[options.forwardProtocol ?? ctx.probeProtocol]),
      // Its question is a GET its litefs-proxy answers: the health path, or one its app answers when there is none.
      closingPrimaries: new ClosingPrimaries(this.nodeName, health === false ? '/' : health, () => agents[options.forwardProtocol ?? ctx.probeProtocol]),
      observer: new Observer(options.serverTiming),
      warn: warnings(log),
      lifecycle: new Lifecycle(state, hooks.res),
      several: several(options.databases) ? severalOf(options, state, log) : undefined,
      peers: undefined,
      acknowledge: (info, c) => acknowledgeDurably(ctx, info, c),
      tokenRefused: value => { sayRefused(ctx, value) },
      probePort: 0,
      probeProtocol: 'http1',
      saidBodyConsumed: false,
      unresolvedSaid: false,
      loopSaid: false,
      dbMissing: false
    }
    this.ctx = ctx
    this.stopDbWatch = clearDbOnPosition(ctx)
    if (options.peerCookies.length > 0 && options.cookie.secrets.length > 0) {
      // Said once: a secret is there to refuse forged tokens, and these cookies are unsigned.
      ctx.warn.say('LITEFS_PEER_COOKIES', options.peerCookies.join(','), `"peerCookies" accepts unsigned ${options.peerCookies.join(' and ')} cookies beside a "secret": any client can forge one and have its reads held up to readTimeout. Drop "peerCookies" once the tokens of the peer you moved from have expired`, { peerCookies: options.peerCookies })
    }
    if (options.durability.secrets.length > 0) ctx.peers = new PeerLink(options, state, () => ctx.probePort, log, ctx.warn)
    if (ctx.peers === undefined && options.durability.on !== false) {
      ctx.warn.say('LITEFS_DURABILITY', 'peerSecret', 'durability is on, but "peerSecret" is not set: no node can report its position, so every write that should wait for its candidates is answered 500 LITEFS_NOT_REPLICATED. Set the same peerSecret on every node', {})
    }
  }

  /** This server listens at `address` (server.address()): a replica's reports to the primary need its port (`{port}` in primaryUrl) before any request came. */
  listening (address: AddressInfo | string | null): void {
    if (typeof address === 'object' && address !== null) this.ctx.probePort = address.port
  }

  /** The client's request as the adapter's framework believes it (what a proxy vouches for upstream). */
  view (c: C): ForwardedView {
    return this.ctx.hooks.view(c)
  }

  /**
   * What a request is (DESIGN §3, in order), its path compared as the app's
   * router compares paths (`rules`), and the pattern of the route it matched,
   * if the adapter knows it, as well.
   */
  classify (method: string, url: string, route: RouteSetting, rules: PathRules = EXACT, routeUrl?: string): RequestKind {
    return this.ctx.classifier.classify(method, url, route, rules, routeUrl)
  }

  /**
   * Decide a request before the app sees it. Synchronous on the fast paths; a
   * Promise when the request is held or forwarded. Then see `nextStep(info)`.
   */
  decide (c: C): LitefsInfo | Promise<LitefsInfo> {
    return decide(this.ctx, c)
  }

  /** Requests held by every core of the process (maxWaiting is per process). */
  static get heldInProcess (): number {
    return heldNow()
  }

  /** What this app's litefs-proxy has done, and where it stands (see LitefsStats). */
  stats (): LitefsStats {
    const stats = this.ctx.observer.stats(this.ctx.lifecycle.held.size + this.ctx.lifecycle.outside.size, this.state)
    const peers = this.ctx.peers
    if (peers !== undefined) {
      stats.peers = peers.view(this.options.db as string) // peerSecret needs a main database (options.ts)
      stats.durability = { ...peers.counts }
    }
    return stats
  }

  /**
   * Stop holding: every request this core holds is answered 503 LITEFS_CLOSED at
   * once, and none is held from now on (Fastify's preClose; the adapters'
   * close()). Returns the responses being answered, so a caller about to cut
   * connections can let those answers leave first. `reportsEnd`: the server
   * takes no more requests from here on (Fastify answers them 503 while it
   * closes; serve stops listening), so no replica's report can arrive, and
   * durable writes waiting for one end now (LITEFS_NOT_REPLICATED) instead of
   * running out `durability.timeout` — which LiteFS, waiting for its `exec` app
   * to exit before it hands the lease over, would wait too.
   */
  drain (reportsEnd = false): ServerResponse[] {
    if (reportsEnd) this.ctx.peers?.table.close()
    return this.ctx.lifecycle.drain()
  }

  /** @internal The connections this core pipes (tunnel.ts): `serve` pipes its upgrades to the app here too, and its drain ends them. */
  get tunnels (): Tunnels {
    return this.ctx.lifecycle.tunnels
  }

  /**
   * @internal End the WebSockets this core tunnelled to the primary, now and any opened
   * from here (the app ends its own sockets: they are not in its WebSocket
   * server's list), and say how many there were. Fastify's preClose (its
   * server's close waits for them before any onClose hook runs), and close().
   */
  endTunnels (): void {
    const n = this.tunnels.end()
    if (n > 0) this.log.warn({ websockets: n }, `litefs-proxy: ${n} WebSocket connection(s) tunnelled by litefs-proxy were ended as it closed`)
  }

  /**
   * The health check's answer: 200 `ok`; 503 `unavailable` while LiteFS on this
   * node does not answer (event stream lost, mount dead); 503 `lagging` when the
   * lag is above `maxLag` (or unknown). It reads LiteFS's mount synchronously
   * (`.lag`, `-pos`), so it blocks while LiteFS does not answer there; the
   * health route reads them off the event loop (health.ts).
   */
  health (): LitefsAnswer {
    return health(this.ctx)
  }

  /**
   * How the answer to a request about to be sent leaves (acknowledgement.ts):
   * a write served here as primary gets the TXID cookie, read from the
   * authority by a read that starts now, so it includes the handler's own
   * commit (a promise while that read is on its way); anything else leaves as it is.
   */
  acknowledge (info: LitefsInfo, c: C): Acknowledgement | Promise<Acknowledgement> {
    return this.ctx.acknowledge(info, c)
  }

  /**
   * Outside HTTP (a job, a queue consumer): the token of this node's position
   * now, read from `-pos` after the caller's write, to hand to a client (it
   * sends it back in the cookie or the token header). Rejects with
   * LITEFS_UNAVAILABLE while LiteFS does not answer, LITEFS_NO_POSITION when
   * the database has no position.
   */
  async tokenAfterWrite (): Promise<string> {
    return await tokenAfterWrite(this.ctx, this.log)
  }

  /**
   * A failure while deciding a request — a bug here, or a function of the
   * app's (a hook) that threw — as the answer it gets: 500 LITEFS_INTERNAL,
   * its error line logged with the request, so no 500 goes unexplained.
   */
  internal (c: C, err: unknown): LitefsHttpError {
    const message = err instanceof Error ? err.message : String(err)
    const req = this.ctx.hooks.req(c)
    this.ctx.hooks.log(c).error({ err, method: req.method, path: this.ctx.hooks.url(c), code: 'LITEFS_INTERNAL' }, `litefs-proxy: deciding this request failed: ${message}`)
    return litefsError('LITEFS_INTERNAL', message)
  }

  /**
   * Outside HTTP: wait until this node has the write `token` names, as a held
   * read waits (`readTimeout`; at once on the primary or for no token), then
   * resolve; reject with the code a held read would be answered with
   * (LITEFS_READ_TIMEOUT, LITEFS_UNAVAILABLE, LITEFS_OVERLOADED, LITEFS_CLOSED),
   * or with `signal`'s reason when it aborts. `token`: a write's cookie or
   * token header value; null or undefined for none (resolves at once); any
   * other type rejects with a TypeError (code ERR_INVALID_ARG_TYPE).
   */
  async waitForToken (token: string | null | undefined, options: { signal?: AbortSignal } | null = {}): Promise<TokenWait> {
    return await waitForToken(this.ctx, this.log, token, options?.signal)
  }

  /**
   * End the tunnels, drain, then release what this core holds (probe, peer
   * reports, lease, forwarding agents). Idempotent: a second call (SIGTERM then SIGINT, a
   * shared shutdown helper) gets the first one's promise.
   */
  close (): Promise<void> {
    this.closed ??= this.closeOnce()
    return this.closed
  }

  private closed: Promise<void> | undefined
  private readonly stopDbWatch: () => void

  private async closeOnce (): Promise<void> {
    this.endTunnels()
    await whenAnswered(this.drain())
    this.stopDbWatch()
    this.ctx.probe.close()
    await this.ctx.peers?.close()
    await this.lease?.release()
    await this.ctx.agents.close()
    // Last, as the app closes its server next: a write on a new connection is answered, not reset unread.
    await acceptQueued()
  }
}

/** The tracked databases and their batched read, for a core tracking several (databases.ts). */
function severalOf (options: ResolvedOptions, state: NodeState, log: Logger): Several {
  // A given state has no mount to list: what it reports is every database there is.
  const tracked = new TrackedDatabases(options.databases, state, options.state === undefined ? options.mount : undefined, warnings(log))
  return { tracked, read: new PositionsRead(state, tracked) }
}
