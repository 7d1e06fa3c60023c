import type { RequestListener, ServerResponse } from 'node:http'
import { createNodeCore, runNode, sendAnswer, type NodeAdapterOptions, type NodeEnding } from './core/node-adapter.js'
import type { LitefsCore } from './core/proxy.js'
import type { LitefsStats } from './core/observe.js'
import { upgradeEntry, type UpgradeListener } from './core/node-upgrade.js'
import { runHandler, type AppHandler } from './core/handler-failure.js'

export type { NodeAdapterOptions as HttpLitefsOptions } from './core/node-adapter.js'
export type { LitefsInfo, LitefsAnswer } from './core/proxy.js'
export type { LitefsStats } from './core/observe.js'
export type { UpgradeListener } from './core/node-upgrade.js'
export type { AppHandler } from './core/handler-failure.js'
export { CHANNELS } from './core/observe.js'
export { LitefsHttpError } from './core/errors.js'
export { LitefsOptionsError } from './core/options.js'

/** The wrapped listener, with its core (`state`, `health()`, `options`) and `close()`. */
export interface WrappedListener extends RequestListener {
  core: LitefsCore<ServerResponse>
  /** Answer held requests (503 LITEFS_CLOSED), end the LiteFS event stream and timers (call on shutdown). */
  close: () => Promise<void>
  /** What litefs-proxy has done here and where it stands: held requests, waits, forwards, LiteFS's status. */
  stats: () => LitefsStats
  /**
   * `listener` (a WebSocket server's handshake, Socket.IO's engine) behind the
   * same decision: `server.on('upgrade', wrapped.upgrade(listener))`. A read is
   * held for the client's TXID, a handshake on an `alwaysForward` path is
   * tunnelled to the primary, passthrough reaches `listener` untouched.
   */
  upgrade: (listener: UpgradeListener) => UpgradeListener
}

/**
 * Wrap a plain `node:http` request listener: `http.createServer(wrap(handler, { db: 'app.db' }))`.
 * Proxy answers (errors, health, fly-replay) are written directly; `req.litefs` tells the handler what happened.
 * `handler` may be async. One that throws or rejects gets 500 `LITEFS_HANDLER_FAILED`, logged at error with
 * its error, rather than taking the process down (an answer already begun is cut short).
 */
export function wrap (handler: AppHandler, options: NodeAdapterOptions): WrappedListener {
  const core = createNodeCore(options)
  const log = core.log
  const app = handler
  const ending: NodeEnding<undefined> = {
    app: res => { runHandler(app, res, log) },
    answer: sendAnswer,
    fail: (res, err) => sendAnswer(res, err)
  }
  const listener: RequestListener = (_req, res) => { runNode(core, res, ending, undefined) }
  return Object.assign(listener, { core, close: () => core.close(), stats: () => core.stats(), upgrade: (next: UpgradeListener) => upgradeEntry(core, next) })
}

export default wrap
