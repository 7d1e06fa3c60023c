import { request as httpRequest, ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { litefsError } from '../core/answers.js'
import { MAX_ANSWER_HEAD } from '../core/forward-agent.js'
import type { ForwardedView } from '../core/forwarded-headers.js'
import { requestHeaders, responseHeaders } from '../core/hop-by-hop.js'
import { sendAnswer } from '../core/node-adapter.js'
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
//   (passthrough, health, a read held for its TXID, a write forwarded: then
//   without its Upgrade) and, when it reaches the app, is sent as an upgrade. On
//   101 both connections are piped; any other answer is relayed, and the
//   connection goes back to the HTTP server for the client's next request.
// - Any other upgrade (h2c, TLS/1.0, a WebSocket that is not a GET) is declined,
//   as RFC 9110 §7.8 lets a server: the request, its Upgrade removed, goes back
//   to the HTTP server, body and all, and is served as any other. Nothing here
//   could speak HTTP/2 or TLS to the client and still decide each request.

/** Whether `req` asks for a WebSocket, the one upgrade passed to the app. */
function isWebSocket (req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.split(',').some(p => p.trim().toLowerCase() === 'websocket')
}

/** Hand `socket` back to `server`'s HTTP parser, `pending` first (what the client sent that nobody read). Exported for its test. */
export function giveBack (server: Server, socket: Duplex, pending: Buffer): void {
  if (socket.destroyed) return
  if (pending.length > 0) socket.unshift(pending)
  server.emit('connection', socket)
}

/** The request head again, without `Upgrade` and without the `upgrade` token of `Connection`. */
function headWithoutUpgrade (req: IncomingMessage): Buffer {
  let head = `${req.method as string} ${req.url as string} HTTP/${req.httpVersion}\r\n`
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    let value = raw[i + 1]
    if (name === 'upgrade') continue
    if (name === 'connection') {
      value = value.split(',').map(t => t.trim()).filter(t => t !== '' && t.toLowerCase() !== 'upgrade').join(', ')
      if (value === '') continue
    }
    head += `${raw[i]}: ${value}\r\n`
  }
  return Buffer.from(head + '\r\n', 'latin1')
}

export interface UpgradeContext {
  server: Server
  /** The app. */
  target: { host: string, port: number }
  /** The decision for a request, as for any other (runNode), with `app` as the step that reaches the app. */
  decide: (res: ServerResponse, app: (res: ServerResponse) => void) => void
  /** What this node vouches for about the client. */
  view: (res: ServerResponse) => ForwardedView
}

/** Serve an upgrade request (the server's 'upgrade' event). */
export function onUpgrade (ctx: UpgradeContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (!isWebSocket(req)) {
    giveBack(ctx.server, socket, Buffer.concat([headWithoutUpgrade(req), head]))
    return
  }
  const res = new ServerResponse(req)
  res.assignSocket(socket as Socket)
  // An answer other than the app's 101 (the app's refusal, a proxy answer):
  // the connection is an HTTP one again once it has gone out.
  res.once('finish', () => {
    res.detachSocket(socket as Socket)
    res.emit('close') // detached: the socket no longer says it (the access log waits for it)
    giveBack(ctx.server, socket, head)
  })
  ctx.decide(res, () => { toApp(ctx, res, socket, head) })
}

/** Send the handshake to the app; pipe on 101, relay any other answer. */
function toApp (ctx: UpgradeContext, res: ServerResponse, client: Duplex, head: Buffer): void {
  const req = res.req
  // The headers any forward sends (this hop's own dropped, this node's account
  // of the client added), and the handshake's Connection and Upgrade again.
  const headers = requestHeaders(req, ctx.view(res))
  headers.connection = 'Upgrade'
  headers.upgrade = req.headers.upgrade as string
  // Node's client checks a head as its server's parser did, less what requestHeaders drops
  // (a Trailer header on a request without a chunked body made it throw).
  const up = httpRequest({ host: ctx.target.host, port: ctx.target.port, method: 'GET', path: req.url, headers, setHost: false, agent: false, maxHeaderSize: MAX_ANSWER_HEAD })
  up.once('upgrade', (answer: IncomingMessage, app: Socket, appHead: Buffer) => {
    res.detachSocket(client as Socket)
    switched.add(res)
    res.emit('close')
    let text = `HTTP/1.1 101 ${answer.statusMessage as string}\r\n`
    for (let i = 0; i < answer.rawHeaders.length; i += 2) text += `${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}\r\n`
    client.write(text + '\r\n', 'latin1')
    if (appHead.length > 0) client.write(appHead)
    if (head.length > 0) app.write(head)
    app.pipe(client)
    client.pipe(app)
    app.once('error', () => client.destroy())
    client.once('error', () => app.destroy())
    app.once('close', () => client.destroy())
    client.once('close', () => app.destroy())
  })
  up.once('response', (answer: IncomingMessage) => {
    // Declined: an ordinary answer, relayed as any; cut short, the client's connection is cut too.
    res.writeHead(answer.statusCode as number, responseHeaders(answer.rawHeaders.map(s => Buffer.from(s, 'latin1'))).headers)
    answer.pipe(res)
    answer.once('close', () => { if (!answer.complete) client.destroy() })
  })
  // Before any answer (the app refused the connection, or sent a head not to be read).
  up.once('error', (err: NodeJS.ErrnoException) => {
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
    sendAnswer(res, tooLarge
      ? litefsError('LITEFS_ANSWER_TOO_LARGE', `the app's answer to an upgrade has a head larger than ${MAX_ANSWER_HEAD} bytes`)
      : litefsError('LITEFS_TARGET_FAILED', `the app did not take the upgrade (${err.message})`))
  })
  up.end()
}
