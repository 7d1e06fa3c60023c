// A WebSocket endpoint behind litefs-proxy, wired as README.md's "Websockets"
// says for each adapter: Fastify with @fastify/websocket (the handshake goes
// through Fastify's hooks and router), Express and node:http with `ws` behind
// `proxy.upgrade()`, and a plain node:http app with `ws` behind `litefs-proxy
// serve`. For the tests on the stand-in LiteFS and on real LiteFS alike.
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import express from 'express'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import { litefs as fastifyLitefs } from '../../lib/fastify.js'
import { litefs as expressLitefs } from '../../lib/express.js'
import { wrap, type UpgradeListener } from '../../lib/http.js'
import { createSidecar } from '../../lib/sidecar/sidecar.js'
import { lineLogger } from '../../lib/sidecar/access-log.js'
import type { LitefsCore } from '../../lib/core/proxy.js'
import type { NodeState } from '../../lib/core/node-state.js'

export type WsFlavour = 'fastify' | 'express' | 'http' | 'serve'
export const WS_FLAVOURS: WsFlavour[] = ['fastify', 'express', 'http', 'serve']

interface Teardown { teardown: (fn: () => unknown) => void }

export interface WsEndpoint {
  /** A connection accepted: the socket, the handshake, and what litefs-proxy decided (undefined behind serve: the app cannot see it). */
  connection: (ws: WebSocket, req: IncomingMessage, kind: string | undefined) => void
  /** Handshakes the app refuses with 403 (an upgrade listener may decline). Express, node:http and serve only. */
  decline?: (req: IncomingMessage) => boolean
  /** serve only: its log lines (info and above). */
  log?: (line: string) => void
}

export interface WsApp {
  url: string
  state: NodeState
}

async function listen (server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** The endpoint behind litefs-proxy in `flavour`, with `options` (the core's), closed on teardown. */
export async function websocketApp (t: Teardown, flavour: WsFlavour, options: Record<string, unknown>, endpoint: WsEndpoint): Promise<WsApp> {
  const quiet = { debug () {}, info () {}, warn () {}, error () {} }
  const wss = new WebSocketServer({ noServer: true })
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => { endpoint.connection(ws, req, req.litefs?.kind) })
  const handshake = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (endpoint.decline?.(req) === true) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nrefused')
      return
    }
    wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req))
  }
  // Upgraded connections are no server's: ended here, before the servers close.
  t.teardown(() => { for (const ws of wss.clients) ws.terminate() })
  if (flavour === 'fastify') {
    const app = Fastify({ forceCloseConnections: true })
    await app.register(fastifyLitefs, options as any)
    await app.register(fastifyWebsocket)
    app.get('/*', { websocket: true }, (ws, request) => { endpoint.connection(ws, request.raw, request.litefs?.kind) })
    t.teardown(async () => {
      for (const ws of app.websocketServer.clients) ws.terminate()
      await app.close()
    })
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1')
    return { url, state: app.litefs.state }
  }
  if (flavour === 'serve') {
    const appServer = createServer((_req, res) => { res.end('page') })
    appServer.on('upgrade', handshake)
    const target = await listen(appServer)
    t.teardown(async () => { appServer.closeAllConnections(); await new Promise(resolve => appServer.close(resolve)) })
    const sidecar = createSidecar({ addr: '127.0.0.1:0', target: target.replace('http://', ''), ...options as any, cookieName: 'litefs-txid', logger: endpoint.log === undefined ? lineLogger('silent', 'json', () => {}) : lineLogger('info', 'json', endpoint.log) })
    await sidecar.listen()
    t.teardown(async () => { await sidecar.close() })
    return { url: sidecar.url, state: sidecar.core.state }
  }
  let server: Server
  let proxy: { upgrade: (listener: UpgradeListener) => UpgradeListener, close: () => Promise<void>, core: LitefsCore<ServerResponse> }
  if (flavour === 'express') {
    const middleware = expressLitefs({ ...options as any, logger: quiet })
    const app = express()
    app.use(middleware)
    app.get('/page', (_req, res) => { res.send('page') })
    app.use(expressLitefs.errorHandler())
    server = createServer(app)
    proxy = middleware
  } else {
    const listener = wrap((_req, res) => { res.end('page') }, { ...options as any, logger: quiet })
    server = createServer(listener)
    proxy = listener
  }
  server.on('upgrade', proxy.upgrade(handshake))
  const url = await listen(server)
  t.teardown(async () => {
    await proxy.close()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  return { url, state: proxy.core.state }
}
