import type { ErrorRequestHandler, NextFunction, RequestHandler } from 'express'
import type { ServerResponse } from 'node:http'
import { LitefsHttpError } from './core/errors.js'
import { createNodeCore, markRoute, runNode, sendAnswer, type NodeAdapterOptions, type NodeEnding } from './core/node-adapter.js'
import type { LitefsCore } from './core/proxy.js'
import type { LitefsStats } from './core/observe.js'
import { upgradeEntry, type UpgradeListener } from './core/node-upgrade.js'

export type { NodeAdapterOptions as ExpressLitefsOptions } from './core/node-adapter.js'
export type { LitefsInfo, LitefsAnswer } from './core/proxy.js'
export type { LitefsStats } from './core/observe.js'
export type { UpgradeListener } from './core/node-upgrade.js'
export { CHANNELS } from './core/observe.js'
export { LitefsHttpError } from './core/errors.js'
export { LitefsOptionsError } from './core/options.js'

/** The middleware, with its core (`state`, `health()`, `options`) and `close()`. */
export interface LitefsMiddleware extends RequestHandler {
  core: LitefsCore<ServerResponse>
  /** Answer held requests (503 LITEFS_CLOSED), end the LiteFS event stream and timers (call on shutdown). */
  close: () => Promise<void>
  /** What litefs-proxy has done here and where it stands: held requests, waits, forwards, LiteFS's status. */
  stats: () => LitefsStats
  /**
   * `listener` (a WebSocket server's handshake, Socket.IO's engine) behind the
   * same decision: `server.on('upgrade', proxy.upgrade(listener))`. Express's
   * router never sees an upgrade: the `passthrough` and `alwaysForward` options
   * apply, not `litefs.skip()` / `litefs.alwaysForward()` mounted on routes.
   */
  upgrade: (listener: UpgradeListener) => UpgradeListener
}

/**
 * Express/Connect middleware. Mount it before any body parser (a forwarded
 * write is streamed as it came). Proxy errors go to `next(err)` as
 * LitefsHttpError (`status`, `code`, `headers`, one-line JSON `body`): render
 * them with `litefs.errorHandler()` or your own error middleware.
 */
const ending: NodeEnding<NextFunction> = {
  app: (_res, next) => next(),
  answer: (res, answer, next) => {
    if (answer instanceof LitefsHttpError) next(answer)
    else sendAnswer(res, answer)
  },
  fail: (_res, err, next) => next(err)
}

export function litefs (options: NodeAdapterOptions): LitefsMiddleware {
  const core = createNodeCore(options)
  const middleware: RequestHandler = (_req, res, next) => { runNode(core, res, ending, next) }
  return Object.assign(middleware, { core, close: () => core.close(), stats: () => core.stats(), upgrade: (next: UpgradeListener) => upgradeEntry(core, next) })
}

/** Mount before the proxy on paths it must leave alone: no wait, no forwarding, no cookie. */
litefs.skip = (): RequestHandler => (req, _res, next) => { markRoute(req, false); next() }

/** Mount before the proxy on paths whose reads write (OAuth callbacks): they go to the primary. */
litefs.alwaysForward = (): RequestHandler => (req, _res, next) => { markRoute(req, { alwaysForward: true }); next() }

/** Mount before the proxy on paths whose writes' answers wait for every candidate (`durability`, for these paths only; `false`: never). */
litefs.durable = (on = true): RequestHandler => (req, _res, next) => { markRoute(req, { durability: on }); next() }

/** Renders LitefsHttpError as its status, headers and one-line JSON body; passes anything else on. */
litefs.errorHandler = (): ErrorRequestHandler => (err, _req, res, next) => {
  if (!(err instanceof LitefsHttpError) || res.headersSent) return next(err)
  sendAnswer(res, err)
}

export default litefs
