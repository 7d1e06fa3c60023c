// The same app on a primary and on a replica, each on its own fake LiteFS, in
// any adapter or behind `litefs-proxy serve`: for tests that send a request to
// the replica (forwarded to the primary) and compare it with the same request
// sent to the primary. Handlers are plain node:http ones; in the adapters they
// run inside the framework's router (frameworkApp), behind serve as the app.
import type t from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { FakeLitefs, until } from './fake-litefs.js'
import type { AdapterName } from './apps.js'
import { frameworkApp, type FrameworkOptions, type Handler } from './framework-apps.js'
import { createSidecar } from '../../lib/sidecar/sidecar.js'
import { lineLogger } from '../../lib/sidecar/access-log.js'
import type { NodeState } from '../../lib/core/node-state.js'
import type { LitefsStats } from '../../lib/core/observe.js'

type Test = typeof t

export type Flavour = AdapterName | 'serve'
export const FLAVOURS: readonly Flavour[] = ['fastify', 'express', 'http', 'serve']

export interface PairNode {
  url: string
  state: NodeState
  fake: FakeLitefs
  /** Requests that reached this node's app, as `METHOD /path`. */
  hits: string[]
  /** serve only: the log lines. */
  lines: string[]
  /** Its stats(). */
  stats: () => LitefsStats
  /** Close it (as its adapter's README code does); teardown closes it too. */
  close: () => Promise<void>
}

export interface PairOptions {
  /** `'METHOD /path'` → handler (given the node's fake LiteFS, to commit). */
  routes: (fake: FakeLitefs) => Record<string, Handler>
  /** Options of litefs-proxy on the replica (primaryUrl is set). */
  replica?: Record<string, unknown>
  /** Options of litefs-proxy on the primary. */
  primary?: Record<string, unknown>
  /** Adapters: framework settings, on both nodes (Fastify options, Express settings, trust, http2, unread). */
  framework?: Partial<FrameworkOptions>
  /** Adapters: framework settings of the primary, if they differ. */
  primaryFramework?: Partial<FrameworkOptions>
  /** The primary's adapter, if not the replica's (a mixed cluster). */
  primaryFlavour?: Flavour
  /** serve only: the app's 'upgrade' listener. */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
}

const quiet = { debug () {}, info () {}, warn () {}, error () {} }

/** Route a request to the handler for `METHOD /path` (exact path, query ignored). */
function router (routes: Record<string, Handler>, hits: string[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const key = `${req.method as string} ${(req.url as string).split('?')[0]}`
    const handler = routes[key]
    if (handler === undefined) { res.writeHead(404).end(); return }
    hits.push(key)
    void handler(req, res, Buffer.alloc(0))
  }
}

async function appServer (t: Test, listener: (req: IncomingMessage, res: ServerResponse) => void, upgrade?: PairOptions['upgrade']): Promise<Server> {
  const server = createServer(listener)
  if (upgrade !== undefined) server.on('upgrade', upgrade)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return server
}

async function node (t: Test, flavour: Flavour, role: 'primary' | 'replica', litefs: Record<string, unknown>, o: PairOptions, framework: Partial<FrameworkOptions>): Promise<PairNode> {
  const fake = await FakeLitefs.start({ role, primary: 'node-a', txid: role === 'primary' ? 10n : 5n })
  t.teardown(async () => { await fake.close() })
  const hits: string[] = []
  const lines: string[] = []
  const routes = o.routes(fake)
  let url: string
  let state: NodeState
  let close: () => Promise<void>
  let stats: () => LitefsStats
  if (flavour === 'serve') {
    // The app reads nothing itself: handlers decide when to read the body.
    const app = await appServer(t, router(routes, hits), o.upgrade)
    const sidecar = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(app.address() as AddressInfo).port}`, db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, logger: lineLogger('info', 'json', l => lines.push(l)), ...litefs })
    await sidecar.listen()
    close = async () => { await sidecar.close() }
    t.teardown(close)
    url = sidecar.url
    state = sidecar.core.state
    stats = () => sidecar.core.stats()
  } else {
    const wrapped: Record<string, Handler> = {}
    for (const [key, handler] of Object.entries(routes)) wrapped[key] = (req, res, body) => { hits.push(key); return handler(req, res, body) }
    const app = await frameworkApp(flavour, { db: 'app.db', mount: fake.mount, api: fake.apiUrl, ...litefs }, { routes: wrapped, logger: quiet, ...framework })
    close = (() => { let closing: Promise<void> | undefined; return async () => { await (closing ??= app.close()) } })()
    t.teardown(close)
    url = app.url
    state = app.state
    stats = app.stats
  }
  await until(() => state.litefs === 'up' && (role === 'primary' ? state.role === 'primary' : state.primaryHostname === 'node-a'), `the ${role} follows LiteFS`)
  return { url, state, stats, fake, hits, lines, close }
}

/** A primary and a replica running the same routes, the replica forwarding to the primary. */
export async function pair (t: Test, flavour: Flavour, o: PairOptions): Promise<{ primary: PairNode, replica: PairNode }> {
  const primary = await node(t, o.primaryFlavour ?? flavour, 'primary', o.primary ?? {}, o, { ...o.framework, ...o.primaryFramework })
  const replica = await node(t, flavour, 'replica', { primaryUrl: () => primary.url, ...o.replica }, o, o.framework ?? {})
  return { primary, replica }
}
