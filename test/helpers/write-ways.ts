// One write handler served every way litefs-proxy serves a write on the
// primary — Fastify (reply.send, and a hijacked raw reply), Express, node:http,
// and `serve` in front of a plain app — for tests of the write's cookie.
import type { Test } from 'tap'
import Fastify from 'fastify'
import express from 'express'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { litefs as fastifyLitefs } from '../../lib/fastify.js'
import { litefs as expressLitefs } from '../../lib/express.js'
import { wrap } from '../../lib/http.js'
import { createSidecar } from '../../lib/sidecar/sidecar.js'
import { lineLogger } from '../../lib/sidecar/access-log.js'
import type { LitefsOptions } from '../../lib/core/options.js'
import type { LitefsCore } from '../../lib/core/proxy.js'

const quiet = { debug () {}, info () {}, warn () {}, error () {} }
export const WAYS = ['fastify', 'fastify-raw', 'express', 'http', 'serve'] as const
export type Way = typeof WAYS[number]

/**
 * The same write handler (`commit()` then answer, as an app commits before it
 * answers) served one way: `POST /w?who=A&to=6`. Returns the URL to send it
 * to, and the litefs-proxy core that serves it.
 */
export async function serveWay (t: Test, way: Way, litefs: Partial<LitefsOptions>, commit: (to: bigint, who: string) => string | void): Promise<{ url: string, core: LitefsCore<any> }> {
  // The handler commits, then answers; what commit() returns (the position its
  // commit reached, say) goes back in `x-commit`.
  const handle = (url: string): [string, string, number] => {
    const q = new URL(url, 'http://x').searchParams
    const own = commit(BigInt(q.get('to') ?? '0'), q.get('who') as string) ?? ''
    return [`answer ${q.get('who') as string}`, own, Number(q.get('status') ?? 200)] // ?status=: the app's status
  }
  const options = { db: 'app.db', ...litefs, logger: quiet }
  const listen = async (server: Server): Promise<string> => {
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  if (way === 'fastify' || way === 'fastify-raw') {
    const app = Fastify()
    await app.register(fastifyLitefs, { db: 'app.db', ...litefs })
    app.post('/w', async (request, reply) => {
      const [text, own, status] = handle(request.url)
      if (way === 'fastify') return await reply.code(status).type('text/plain').header('x-commit', own).send(text)
      reply.hijack()
      reply.raw.writeHead(status, { 'content-type': 'text/plain', 'x-commit': own })
      reply.raw.end(text)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close() })
    return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, core: app.litefs }
  }
  if (way === 'express') {
    const app = express()
    const proxy = expressLitefs(options)
    app.use(proxy)
    app.post('/w', (req, res) => { const [text, own, status] = handle(req.url); res.status(status).type('text/plain').set('x-commit', own).send(text) })
    t.teardown(async () => { await proxy.close() })
    return { url: await listen(createServer(app)), core: proxy.core }
  }
  if (way === 'http') {
    const listener = wrap((req, res) => {
      const [text, own, status] = handle(req.url as string)
      res.statusCode = status
      res.setHeader('content-type', 'text/plain')
      res.setHeader('x-commit', own)
      res.end(text)
    }, options)
    t.teardown(async () => { await listener.close() })
    return { url: await listen(createServer(listener)), core: listener.core }
  }
  // serve: the app behind it commits and answers; the sidecar's core sets the cookie.
  const target = await listen(createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => { const [text, own, status] = handle(req.url as string); res.writeHead(status, { 'content-type': 'text/plain', 'x-commit': own }); res.end(text) })
  }))
  const sidecar = createSidecar({ addr: '127.0.0.1:0', target, db: 'app.db', ...litefs, logger: lineLogger('error', 'json', () => {}) })
  await sidecar.listen()
  t.teardown(async () => { await sidecar.close() })
  return { url: sidecar.url, core: sidecar.core }
}

/**
 * A raw request: what arrived so far at any moment, and the whole answer (all
 * the connection carried until it closed; with `keepAlive`, until the server closed it).
 * `headers`: more header lines, each ending in CRLF.
 */
export function post (url: string, path: string, keepAlive = false, headers = ''): { received: () => string, done: Promise<string> } {
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  let got = ''
  socket.setEncoding('latin1')
  socket.on('data', d => { got += d })
  const done = new Promise<string>(resolve => { socket.on('close', () => resolve(got)) })
  socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: ${keepAlive ? 'keep-alive' : 'close'}\r\n${headers}content-length: 0\r\n\r\n`)
  return { received: () => got, done }
}

export const cookieOf = (raw: string): bigint | undefined => {
  const m = /^set-cookie: (?:__txid|litefs-txid)=([0-9a-f]{16})/im.exec(raw)
  return m === null ? undefined : BigInt('0x' + m[1])
}


/** The `x-commit` header of a raw answer. */
export const commitOf = (raw: string): bigint | undefined => {
  const m = /^x-commit: ([0-9]+)/im.exec(raw)
  return m === null ? undefined : BigInt(m[1])
}
