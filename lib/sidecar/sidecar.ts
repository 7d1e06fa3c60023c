import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Http2Server, Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { whenClosed } from '../core/client-gone.js'
import { LitefsHttpError } from '../core/errors.js'
import { fail } from '../core/option-checks.js'
import { forward } from '../core/forward.js'
import { forwardAgents } from '../core/forward-agent.js'
import type { Logger } from '../core/logger.js'
import { createNodeCore, runNode, sendAnswer, type NodeAdapterOptions, type NodeEnding } from '../core/node-adapter.js'
import { resetIdleConnections } from '../core/idle-reset.js'
import { acceptQueued } from '../core/accept-queued.js'
import { whenAnswered } from '../core/lifecycle.js'
import { RESENDS, safeToResend } from '../core/resend.js'
import type { LitefsCore } from '../core/proxy.js'
import { logWhenDone } from './access-log.js'
import { oneAtATime } from './in-turn.js'
import { answerClientError } from './client-error.js'
import { withApp } from './app-health.js'
import { appTarget } from './request-target.js'
import { originForm } from '../core/path-match.js'
import { refuseConnect, refuseH2Connect } from './connect.js'
import { h2cServer } from './h2c-server.js'
import { TargetWatch } from './target-watch.js'
import { onUpgrade, type UpgradeContext } from './upgrade.js'
import { tokenEndpoint, type TokenEndpoint } from './token-endpoint.js'

// `litefs-proxy serve`: the same core as the in-process adapters, in front of
// an app that is not written in Node — LiteFS's own proxy (its `proxy:`
// section) replaced. What the in-process adapters hand to the app's handler is
// streamed here to the app at `target`; everything else (holding reads,
// forwarding writes to the primary's sidecar, the cookie on the head of a
// write served here) is the core's.

/** The sidecar's settings: the core's, the HTTP server's, and where the app is. */
export interface SidecarOptions extends NodeAdapterOptions {
  /** Where to listen: `":8080"`, `"0.0.0.0:8080"`, `"[::1]:8080"` (LiteFS `proxy.addr`). */
  addr: string
  /** The app: `"localhost:8000"` or `"http://localhost:8000"` (LiteFS `proxy.target`). */
  target: string
  /** How long the app may take to send its response head (ms); 0: as long as it takes (as LiteFS). */
  targetTimeout?: number
  /** How long to retry an app that refuses connections (restarting), ms (LiteFS retries its dial for 30 s). */
  targetRetry?: number
  /**
   * The HTTP server's limits, as LiteFS's proxy names them (ms; 0 disables):
   * the whole request (default 0), its head (10 s), socket inactivity (0), an
   * idle keep-alive connection (30 s). Not to be confused with `readTimeout`,
   * how long a read waits for the replica (the core's option). With `protocol:
   * 'h2c'` only writeTimeout (session inactivity) and idleTimeout (a session with
   * no stream; none by default) apply.
   */
  server?: { readTimeout?: number, readHeaderTimeout?: number, writeTimeout?: number, idleTimeout?: number }
  /** How long close() waits for requests in flight and piped WebSockets before cutting them (ms). Default 10 s. */
  drainTimeout?: number
  /** Where warnings and the one line per request go. */
  logger: Logger
  /** serve's own path for code outside HTTP (token-endpoint.ts): POST a token after a write, GET waits for one. Default: none. */
  tokenPath?: string
  /**
   * What its own server speaks: `'http1'` (HTTP/1.1, the default) or `'h2c'`
   * (HTTP/2 without TLS, prior knowledge). Writes forwarded to the primary's
   * sidecar speak what the request arrived in, unless `forwardProtocol` says.
   */
  protocol?: SidecarProtocol
  /** What the app at `target` speaks: `'http1'` (default) or `'h2c'` (an h2c-only app: hypercorn, a Go h2c server). */
  targetProtocol?: SidecarProtocol
}

export type SidecarProtocol = 'http1' | 'h2c'
const PROTOCOLS: readonly SidecarProtocol[] = ['http1', 'h2c']

export interface Sidecar {
  /** node:http's server, or node:http2's with `protocol: 'h2c'`. */
  readonly server: Server | Http2Server
  readonly core: LitefsCore<ServerResponse>
  /** The sidecar's own URL once listening. */
  readonly url: string
  listen: () => Promise<void>
  /** Stop: held requests answered 503 at once, requests in flight finished and piped WebSockets closed (within drainTimeout), LiteFS let go. */
  close: () => Promise<void>
}

const RETRY_EVERY = 100

/** `:8080`, `host:8080`, `[::1]:8080` → host (undefined: every interface) and port. */
export function parseAddr (addr: string): { host: string | undefined, port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr)
  if (m === null) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const host = m[1] ?? m[2]
  return { host: host === '' ? undefined : host, port }
}

/** `localhost:8000` or `http://localhost:8000` → its origin, host and port. */
export function parseTarget (target: string): { origin: string, host: string, port: number } | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `http://${target}`
  if (!URL.canParse(withScheme)) return undefined
  const url = new URL(withScheme)
  if (url.protocol !== 'http:' || url.pathname !== '/' || url.search !== '' || url.port === '' || url.port === '0') return undefined
  return { origin: url.origin, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) }
}

export function createSidecar (options: SidecarOptions): Sidecar {
  const {
    addr, target, targetTimeout = 0, targetRetry = 30_000, server: limits = {}, drainTimeout = 10_000, tokenPath,
    protocol = 'http1', targetProtocol = 'http1', ...rest
  } = options
  const { readTimeout = 0, readHeaderTimeout = 10_000, writeTimeout = 0, idleTimeout = 30_000 } = limits
  const parsedAddr = parseAddr(addr)
  if (parsedAddr === undefined) fail('addr', '":port" or "host:port"', addr)
  const listenOn: { host: string | undefined, port: number } = parsedAddr
  const app = parseTarget(target)
  if (app === undefined) fail('target', '"host:port" or "http://host:port" (the app)', target)
  if (!PROTOCOLS.includes(protocol)) fail('protocol', '"http1" or "h2c"', protocol)
  if (!PROTOCOLS.includes(targetProtocol)) fail('targetProtocol', '"http1" or "h2c"', targetProtocol)
  const log = options.logger
  const core = createNodeCore({ cookieName: '__txid', ...rest }) // LiteFS's proxy's cookie, unless told otherwise
  const agents = forwardAgents()
  const dispatcher = targetProtocol === 'h2c' ? agents.http2 : agents.http1
  let tokens: TokenEndpoint | undefined
  try {
    tokens = tokenPath === undefined ? undefined : tokenEndpoint(core, tokenPath, log) // checked against the core's paths
  } catch (err) {
    void core.close() // it holds LiteFS already; nothing will close it
    throw err
  }
  const watch = new TargetWatch({ host: app.host, port: app.port, label: target }, targetRetry, log)

  const toApp = async (res: ServerResponse, path: string): Promise<void> => {
    const req = res.req
    const started = performance.now()
    const resendable = safeToResend(req, req.litefs?.kind === 'write')
    let resends = 0
    for (;;) {
      const result = await forward({
        req,
        res,
        path,
        origin: app.origin,
        label: `the app at ${target}`,
        view: core.view(res),
        bodyLimit: Infinity,
        timeout: targetTimeout,
        resendable,
        bodyIdle: core.options.forwardTimeout,
        dispatcher,
        takeOver: () => {}
      })
      if (result.outcome !== 'failed') {
        if (result.outcome === 'sent') watch.reached()
        return
      }
      if (result.resend === true && resends < RESENDS) {
        // The app closed an idle connection as the request went out (Gunicorn
        // does, on its own clock); safe to send twice: again at once.
        resends++
        continue
      }
      // Not sent, or reset unread: the app may be starting, or gone with LiteFS.
      const refused = result.retry && result.resend !== true
      if (refused && core.state.litefs !== 'up') {
        // The app went away with LiteFS (LiteFS's exec stops it first): nothing
        // was applied; this node cannot take the request now.
        const e = new LitefsHttpError(503, 'LITEFS_UNAVAILABLE', `the app at ${target} and LiteFS on this node are unavailable; nothing was applied`, { 'retry-after': '1' })
        log.warn({ target, code: e.code }, `litefs-proxy: ${e.message}`)
        if (!res.headersSent && !res.destroyed) sendAnswer(res, e)
        return
      }
      if (refused) watch.refused(result.error.message.replace(/^.*\((\S+)\)$/, '$1'))
      if (refused && performance.now() - started + RETRY_EVERY < targetRetry && !watch.givenUp) {
        // The app refused the connection (nothing was sent): it may be starting.
        await new Promise(resolve => setTimeout(resolve, RETRY_EVERY))
        continue
      }
      const e = result.error
      const answer = e.code === 'LITEFS_BODY_TIMEOUT' || e.code === 'LITEFS_FORWARD_TIMEOUT' || e.code === 'LITEFS_ANSWER_TOO_LARGE'
        ? e
        : new LitefsHttpError(502, refused ? 'LITEFS_TARGET_UNAVAILABLE' : 'LITEFS_TARGET_FAILED',
          refused ? `the app at ${target} refused connections for ${targetRetry} ms` : e.message) // which names the app (label)
      log.warn({ target, code: answer.code }, `litefs-proxy: ${answer.message}`)
      if (!res.headersSent && !res.destroyed) sendAnswer(res, answer)
      return
    }
  }

  const ending: NodeEnding<undefined> = {
    app: res => {
      if (tokens?.claims(res) === true) return tokens.answer(res) // serve's own, never the app's
      void toApp(res, originForm(res.req.url as string))
    },
    answer: (res, answer) => {
      if (res.req.litefs?.kind !== 'health') return sendAnswer(res, answer)
      void withApp(answer, res.req, watch, target).then(a => { if (!res.destroyed) sendAnswer(res, a) })
    },
    fail: (res, err) => sendAnswer(res, err)
  }

  // The line per request, at info: not even its listener when info is not written.
  const accessLog = log.isLevelEnabled?.('info') !== false
  const open = new Set<ServerResponse>() // answers not yet sent in full, for close()
  // As Go's http.Server (LiteFS's): the whole-request deadline covers the head too, so a
  // --read-timeout below --read-header-timeout (5s against the 10s default) bounds the head
  // as well. Node refuses a headersTimeout above requestTimeout at startup instead.
  const headersTimeout = readTimeout > 0 && (readHeaderTimeout === 0 || readHeaderTimeout > readTimeout) ? readTimeout : readHeaderTimeout
  // Node looks for requests past those deadlines only every 30 s by default: a
  // 2 s --read-header-timeout cut a stalled head after up to 32 s. A quarter of
  // the shortest deadline (at most 1 s) keeps each within 25% of its value.
  const deadlines = [headersTimeout, readTimeout].filter(ms => ms > 0)
  const connectionsCheckingInterval = deadlines.length === 0 ? 30_000 : Math.max(1, Math.min(1000, Math.floor(Math.min(...deadlines) / 4)))
  const inTurn = oneAtATime()
  const arrived = (res: ServerResponse, turns: boolean): void => {
    open.add(res)
    whenClosed(res, () => { open.delete(res) }) // a pipelined answer whose client left: its connection says
    if (accessLog) logWhenDone(log, res)
    // `OPTIONS *`, or a target undici cannot send: answered here, not decided (it names no path).
    const start = (): void => { if (appTarget(log, res) !== undefined && tokens?.refused(res) !== true) runNode(core, res, ending, undefined) }
    // HTTP/2 multiplexes: its streams are concurrent by design, none pipelined behind another.
    if (turns) inTurn(res, start)
    else start()
  }
  if (protocol === 'h2c') {
    // node:http2's compatibility request and response: what the core takes from an HTTP/2 server in-process too.
    // No idle close unless asked: a session closed as idle (GOAWAY) fails the request a client
    // (undici: a replica's forwarder) sends on it at that instant, unapplied but answered 502.
    const h2 = h2cServer({ idleTimeout: limits.idleTimeout ?? 0, writeTimeout }, log, (req, res) => { arrived(res as unknown as ServerResponse, false) })
    h2.server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => { refuseH2Connect(log, req, res) })
    return sidecarOn(h2.server, { closeIdle: h2.closeIdle, closeAll: h2.closeAll, lastAnswers: () => {} })
  }
  const server = createServer({ requestTimeout: readTimeout, headersTimeout, keepAliveTimeout: idleTimeout, connectionsCheckingInterval }, (_req, res) => { arrived(res, true) })
  server.timeout = writeTimeout
  const upgrades: UpgradeContext = {
    server,
    target: app,
    decide: (res, toApp) => {
      if (accessLog) logWhenDone(log, res)
      if (appTarget(log, res) !== undefined) runNode(core, res, { ...ending, app: toApp }, undefined)
    },
    view: res => core.view(res),
    timeout: targetTimeout,
    tunnels: core.tunnels,
    log
  }
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => { onUpgrade(upgrades, req, socket, head) })
  server.on('connect', (req: IncomingMessage, socket: Duplex) => { refuseConnect(log, req, socket) })
  server.on('clientError', (err: Error, socket: Duplex) => { answerClientError(log, err, socket) })
  return sidecarOn(server, {
    closeIdle: () => server.closeIdleConnections(),
    closeAll: () => server.closeAllConnections(),
    lastAnswers: () => {
      // The connections of answers in flight close when those answers are sent:
      // a kept-alive client (a replica's forwarder, a balancer's pool) would
      // otherwise send its next request on its connection, which then never falls
      // idle, and the drain would last until drainTimeout cut it (a container
      // stop killed first). Told `connection: close`, it connects anew and finds
      // the listener gone. An answer whose head is out: its connection is reset
      // once idle (as drain() resets idle ones: see idle-reset.ts). On HTTP/2
      // a session is told to go away (GOAWAY) instead, once its streams are done.
      for (const res of open) {
        if (res.headersSent) res.once('finish', () => setImmediate(() => resetIdleConnections(server)))
        else res.setHeader('connection', 'close')
      }
    }
  })

  function sidecarOn (server: Server | Http2Server, connections: { closeIdle: () => void, closeAll: () => void, lastAnswers: () => void }): Sidecar {
    let url = ''
    let closing: Promise<void> | undefined
    const close = async (): Promise<void> => {
      connections.lastAnswers()
      const answered = whenAnswered(core.drain(true)) // held requests: 503 now, before any connection is cut; no report can come in after this
      await acceptQueued() // a write on a new connection is answered, not reset unread as the listener closes (accept-queued.ts)
      const closed = new Promise<void>(resolve => server.close(() => resolve())) // no new connection from here
      await answered
      connections.closeIdle()
      // Piped upgrades (WebSockets to the app, or tunnelled to the primary) are
      // given the same time: the app, told to stop too, may close its sockets
      // itself, with the close frame a WebSocket peer expects, which only it can
      // send (tunnels.ts). No server's closeAllConnections() sees them, and
      // server.close() waits for them: still open then, they are ended too.
      const cut = setTimeout(() => {
        const requests = open.size
        const websockets = core.tunnels.end()
        // Said, so that a request cut here is not taken for a client that left (its access line says aborted).
        if (requests > 0 || websockets > 0) {
          const what = [requests > 0 ? `${requests} request(s) still in flight` : '', websockets > 0 ? `${websockets} WebSocket connection(s) still open` : ''].filter(w => w !== '').join(' and ')
          log.warn({ requests, websockets, drainTimeoutMs: drainTimeout }, `litefs-proxy: ${what} ${drainTimeout} ms after the close began were cut`)
        }
        connections.closeAll()
      }, drainTimeout)
      await closed
      clearTimeout(cut)
      watch.close()
      await core.close()
      await agents.close()
    }
    return {
      server,
      core,
      get url () { return url },
      listen: async () => {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen(listenOn.port, listenOn.host, () => {
            server.off('error', reject)
            const a = server.address() as AddressInfo
            core.listening(a) // a replica reports to the primary from now on (peer-link.ts)
            url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
            watch.start() // a wrong --target is said now, not after the first request waited for it
            resolve()
          })
        })
      },
      close: async () => { await (closing ??= close()) } // once, however often asked
    }
  }
}
