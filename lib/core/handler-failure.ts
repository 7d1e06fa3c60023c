import type { IncomingMessage, ServerResponse } from 'node:http'
import { litefsError } from './answers.js'
import type { Logger } from './logger.js'
import { sendAnswer } from './send-answer.js'

// The http adapter runs the app's handler, and a handler that throws, or
// whose promise rejects (an async handler: the README's snippets are), would
// take the whole process down: Node's server catches neither. Under LiteFS's
// `exec` that is the node gone, and LiteFS leaves its mount dead when its app
// exits with an error. A replica's first request before the database has
// arrived (SQLITE_CANTOPEN) is enough. So the failure is logged at error with
// the request, and answered as Express and Fastify answer one: 500, here one
// line of JSON with a code; nothing of the error reaches the client (it may
// name tables or paths). An answer already begun cannot be replaced: its
// connection is ended, as Express does.

/**
 * The app's request handler, as `wrap()` takes it: Node's request listener, or
 * an async one. What it returns is not used, except that a promise it returns
 * is watched for a rejection (an async handler may return `res.end()`'s value).
 */
export type AppHandler = (req: IncomingMessage, res: ServerResponse) => unknown

/** Run `handler` for `res`, answering 500 LITEFS_HANDLER_FAILED when it throws or rejects. */
export function runHandler (handler: AppHandler, res: ServerResponse, log: Logger): void {
  let result: unknown
  try {
    result = handler(res.req, res)
  } catch (err) {
    failed(res, err, log)
    return
  }
  if (result instanceof Promise) result.catch((err: unknown) => { failed(res, err, log) })
}

function failed (res: ServerResponse, err: unknown, log: Logger): void {
  const message = err instanceof Error ? err.message : String(err)
  const req = res.req
  log.error({ err, method: req.method, path: req.url, code: 'LITEFS_HANDLER_FAILED' }, `litefs-proxy: the app's handler failed: ${message}`)
  if (res.headersSent) {
    res.destroy() // the client sees the answer end short, never a whole one that is not
    return
  }
  sendAnswer(res, litefsError('LITEFS_HANDLER_FAILED', 'the app failed to answer this request; its log says why'))
}
