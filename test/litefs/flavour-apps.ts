// What the real-LiteFS suites that run every adapter and `serve` share
// (tokens, several databases): an app of each flavour on a node's mount with
// the suite's routes, waiting for a condition with a bound, and a database
// created (WAL, one table) on the primary and replicated.
import Database from 'better-sqlite3'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { LitefsCluster, LitefsNode } from '../../lib/testing/litefs-cluster.js'
import { frameworkApp, type Handler } from '../helpers/framework-apps.js'
import { createSidecar } from '../../lib/sidecar/sidecar.js'
import { lineLogger } from '../../lib/sidecar/access-log.js'
import type { NodeState } from '../../lib/core/node-state.js'
import type { LitefsStats } from '../../lib/core/observe.js'

export const FLAVOURS = ['fastify', 'express', 'http', 'serve'] as const
export type Flavour = typeof FLAVOURS[number]
export const quiet = { debug () {}, info () {}, warn () {}, error () {} }
export const hex = (n: bigint): string => n.toString(16).padStart(16, '0')

export interface App { url: string, state: NodeState, stats: () => LitefsStats, close: () => Promise<void> }

/** Poll `cond` every 5 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** `flavour`'s app with litefs-proxy `options` serving `routes` (serve: a node:http app behind the sidecar). */
export async function startApp (flavour: Flavour, options: Record<string, unknown>, routes: Record<string, Handler>): Promise<App> {
  if (flavour !== 'serve') return await frameworkApp(flavour, options as any, { routes, logger: quiet })
  const target: Server = createServer((req: IncomingMessage, res: ServerResponse) => { void routes[`${req.method as string} ${(req.url as string).split('?')[0]}`](req, res, Buffer.alloc(0)) })
  await new Promise<void>(resolve => target.listen(0, '127.0.0.1', resolve))
  const sidecar = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(target.address() as AddressInfo).port}`, logger: lineLogger('silent', 'json', () => {}), ...options } as any)
  await sidecar.listen()
  return {
    url: sidecar.url,
    state: sidecar.core.state,
    stats: () => sidecar.core.stats(),
    close: async () => { await sidecar.close(); target.closeAllConnections(); await new Promise(resolve => target.close(resolve)) }
  }
}

/**
 * `POST /notes`: inserts a row into `db` on `node`'s mount, then answers 201
 * `{}`, as an app commits before it answers (a framework may have read the body already).
 */
export function insertNote (node: LitefsNode, db: string, text: string, timeout = 250): Handler {
  return (req, res) => {
    const commit = (): void => {
      const handle = new Database(join(node.mount, db), { fileMustExist: true, timeout })
      try { handle.prepare('INSERT INTO notes (text) VALUES (?)').run(text) } finally { handle.close() }
      res.writeHead(201, { 'content-type': 'application/json' }).end('{}')
    }
    if (req.readableEnded) commit()
    else req.resume().on('end', commit)
  }
}

/** Until `app` follows LiteFS as `role` (a replica: connected to the cluster's primary). */
export async function ready (cluster: LitefsCluster, app: App, role: 'primary' | 'replica'): Promise<void> {
  await until(`the ${role} app follows LiteFS`, () => app.state.litefs === 'up' && (role === 'primary' ? app.state.role === 'primary' : app.state.primaryHostname === cluster.primary.hostname))
}

/** Each of `dbs` created on the primary (WAL, a `notes` table) and replicated. */
export async function createNotes (cluster: LitefsCluster, dbs: readonly string[]): Promise<void> {
  for (const db of dbs) {
    const created = new Database(join(cluster.primary.mount, db))
    created.pragma('journal_mode = WAL')
    created.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)')
    created.close()
    await cluster.waitReplicated(db)
  }
}
