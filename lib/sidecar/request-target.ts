import type { ServerResponse } from 'node:http'
import { failure, litefsError } from '../core/answers.js'
import type { Logger } from '../core/logger.js'
import { originForm, sendable } from '../core/path-match.js'
import { sendAnswer } from '../core/send-answer.js'

// The request target `serve` sends the app: in origin form (`/path?query`), as
// LiteFS's proxy (Go's transport) sends it, so the app routes the path that was
// classified. Node's server also accepts the asterisk form (`OPTIONS *`, RFC
// 9112 §3.2.4), which names the server, not a resource: undici cannot send it
// (a path must start with `/`), and it is no request for the app anyway. Go's
// http.Server, LiteFS's proxy's, answers `OPTIONS *` itself: 200, empty.

/** The target to send the app, or undefined once `res` was answered here (`OPTIONS *`, or a target that cannot be sent). */
export function appTarget (log: Logger, res: ServerResponse): string | undefined {
  const req = res.req
  if (hostLines(req.rawHeaders) > 1) {
    // RFC 9112 §3.2: answered 400, as nginx and Go do. Node keeps the first;
    // the app or a proxy behind might take another, and route elsewhere.
    const message = 'the request has more than one Host header; nothing reached the app'
    log.info({ method: req.method, code: 'LITEFS_BAD_REQUEST' }, `litefs-proxy: ${message}`)
    res.shouldKeepAlive = false
    sendAnswer(res, litefsError('LITEFS_BAD_REQUEST', message))
    return undefined
  }
  const target = originForm(req.url as string)
  if (sendable(target)) return target
  if (req.method === 'OPTIONS' && target === '*') {
    res.writeHead(200, { 'content-length': '0' }).end()
    return undefined
  }
  sendAnswer(res, failure(log, 'LITEFS_BAD_TARGET', `${JSON.stringify(target)} is not a request target litefs-proxy serve can send the app: a path starting with / (or OPTIONS *)`, { method: req.method, target, code: 'LITEFS_BAD_TARGET' }))
  return undefined
}

function hostLines (raw: string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') n++
  return n
}
