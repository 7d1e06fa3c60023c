import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { litefsError } from '../core/answers.js'
import type { ForwardedView } from '../core/forwarded-headers.js'
import type { Logger } from '../core/logger.js'
import { hasBody } from '../core/forward.js'
import { sendAnswer } from '../core/node-adapter.js'
import { rawAnswer } from '../core/send-answer.js'
import { originForm } from '../core/path-match.js'
import { afterAnswerInFlight } from '../core/pipelined.js'
import { tunnel } from '../core/tunnel.js'
import { decline, giveBack } from '../core/upgrade-decline.js'
import type { Tunnels } from '../core/tunnels.js'
import { isWebSocket, markUpgrade, type UpgradeSocket } from '../core/upgrade-socket.js'
import { switched } from './access-log.js'

// Upgrade requests at `serve`. Node hands a request that asks for another
// protocol (`Connection: upgrade` and `Upgrade`) to the server's 'upgrade'
// event, with the raw socket, off its HTTP parser. Piping that socket to the
// app as it came handed the connection to the app for good: when the app did
// not switch protocols (it declined `Upgrade: h2c`, which `curl --http2` sends
// on every request over plain HTTP, or refused a WebSocket with 403), every
// later request on it reached the app unseen — a POST on a replica ran there
// (issue 18). So:
//
// - A WebSocket handshake (GET, `Upgrade: websocket`) is decided as any request
//   (passthrough, health, a read held for its TXID, a write — an
//   `alwaysForward` path — tunnelled to the primary's serve as an upgrade) and,
//   when it reaches the app, is sent to it as an upgrade (tunnel.ts). On 101
//   both connections are piped; any other answer is relayed, and the
//   connection goes back to the HTTP server for the client's next request.
// - Any other upgrade (h2c, TLS/1.0, a WebSocket that is not a GET) is declined,
//   as RFC 9110 §7.8 lets a server: the request, its Upgrade removed, goes back
//   to the HTTP server, body and all, and is served as any other. Nothing here
//   could speak HTTP/2 or TLS to the client and still decide each request.
// - A WebSocket handshake that declares a body (Content-Length, Transfer-Encoding)
//   is refused, 400, and its connection closed. Node's parser stops at the head
//   of an upgrade and hands the body over as the first bytes of the new
//   protocol: sent on, the app would read them as its handshake's body (and
//   wait for them: the client hung) or as WebSocket frames; given back to the
//   parser after a refusal, as the client's next request — a request smuggled
//   past any proxy in front, which framed those bytes as this one's body. A
//   handshake has no body (RFC 6455 §4.1), so nothing is lost.

export { giveBack } from '../core/upgrade-decline.js' // for its test

export interface UpgradeContext {
  server: Server
  /** The app. */
  target: { origin: string }
  /** The decision for a request, as for any other (runNode), with `app` as the step that reaches the app. */
  decide: (res: ServerResponse, app: (res: ServerResponse) => void) => void
  /** What this node vouches for about the client. */
  view: (res: ServerResponse) => ForwardedView
  /** How long the app may take to answer a handshake (ms); 0: as long as it takes. */
  timeout: number
  /** Where a connection piped to the app is kept, so that the drain can end it (the core's: tunnels.ts). */
  tunnels: Tunnels
  log: Logger
}

const WITH_BODY = litefsError('LITEFS_BAD_REQUEST', 'a WebSocket handshake has no body (RFC 6455 §4.1), and this one declares one (Content-Length or Transfer-Encoding); nothing reached the app')
const WITH_BODY_RAW = rawAnswer(WITH_BODY)


/** Serve an upgrade request (the server's 'upgrade' event), once the answer before it on its connection has gone (pipelined.ts). */
export function onUpgrade (ctx: UpgradeContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  afterAnswerInFlight(socket, () => { upgradeNow(ctx, req, socket, head) })
}

function upgradeNow (ctx: UpgradeContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (!isWebSocket(req)) {
    decline(ctx.server, req, socket, head)
    return
  }
  if (hasBody(req)) {
    socket.on('error', () => {}) // a client gone before the answer: nothing to tell it
    socket.resume() // the body, read and dropped: a close with it unread would reset the connection, and the answer with it
    socket.end(WITH_BODY_RAW)
    ctx.log.info({ method: req.method, path: req.url, status: WITH_BODY.statusCode, code: WITH_BODY.code }, `litefs-proxy: ${WITH_BODY.message}`)
    return
  }
  const res = new ServerResponse(req)
  res.assignSocket(socket as Socket)
  // Read while decided (a client gone while held lets go: upgrade-socket.ts);
  // a write is tunnelled to the primary, and a switch, there or to the app, logged as 101.
  const upgrade = markUpgrade(req, socket, head, switchedRes => {
    switched.add(switchedRes)
    // Detached: the socket no longer says it (the access log waits for it). A
    // turn later: a tunnel to the primary has its `forwardedTo` by then.
    setImmediate(() => switchedRes.emit('close'))
  })
  // An answer other than a 101 (the app's refusal, a proxy answer): the
  // connection is an HTTP one again once it has gone out.
  res.once('finish', () => {
    const pending = upgrade.take()
    res.detachSocket(socket as Socket)
    res.emit('close') // detached: the socket no longer says it (the access log waits for it)
    giveBack(ctx.server, socket, pending)
  })
  ctx.decide(res, () => { toApp(ctx, res, upgrade) })
}

/** Send the handshake to the app (tunnel.ts); pipe on 101, relay any other answer. */
function toApp (ctx: UpgradeContext, res: ServerResponse, upgrade: UpgradeSocket): void {
  void tunnel({
    req: res.req,
    res,
    upgrade,
    path: originForm(res.req.url as string),
    origin: ctx.target.origin,
    view: ctx.view(res),
    timeout: ctx.timeout,
    label: `the app at ${ctx.target.origin}`,
    takeOver: () => {},
    tunnels: ctx.tunnels
  }).then(result => {
    if (result.outcome !== 'failed') return
    // Before any answer (the app refused the connection, or sent a head not to be read).
    const e = result.error
    sendAnswer(res, e.code === 'LITEFS_ANSWER_TOO_LARGE' || e.code === 'LITEFS_FORWARD_TIMEOUT' ? e : litefsError('LITEFS_TARGET_FAILED', `the app did not take the upgrade (${e.message})`))
  })
}
