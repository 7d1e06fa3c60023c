import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import { litefsError } from '../core/answers.js'
import type { Logger } from '../core/logger.js'
import { afterAnswerInFlight } from '../core/pipelined.js'
import { rawAnswer, sendAnswer } from '../core/send-answer.js'

// `CONNECT host:port` asks a forward proxy for a tunnel; `serve` is a reverse
// proxy in front of one app, and its app (Django, Rails…) has no tunnel to
// give. Node hands CONNECT to a 'connect' listener and, without one, drops the
// connection with no answer; this listener gives the one a client can read —
// 501, nothing reached the app — and its request line in the log, as every
// other request has.

const ANSWER = litefsError('LITEFS_CONNECT_UNSUPPORTED', 'CONNECT is not served: litefs-proxy serve is a reverse proxy for one app, not a tunnel')
const RAW = rawAnswer(ANSWER)

/** Answer a CONNECT request 501 and close its connection, after the answer before it on that connection (pipelined.ts). */
export function refuseConnect (log: Logger, req: IncomingMessage, socket: Duplex): void {
  socket.on('error', () => {}) // a client gone before the answer: nothing to tell it
  afterAnswerInFlight(socket, () => { refuse(log, req, socket) })
}

function refuse (log: Logger, req: IncomingMessage, socket: Duplex): void {
  socket.end(RAW)
  log.info({ method: 'CONNECT', path: req.url, status: ANSWER.statusCode, code: ANSWER.code }, 'litefs-proxy: a CONNECT request was refused (no tunnel here)')
}

/**
 * HTTP/2's CONNECT (RFC 9113 §8.5) asks for a tunnel on one stream: answered
 * the same 501 on that stream, the session kept (Node answers 405 itself when
 * no one listens, without a log line).
 */
export function refuseH2Connect (log: Logger, req: Http2ServerRequest, res: Http2ServerResponse): void {
  sendAnswer(res as unknown as ServerResponse, ANSWER)
  log.info({ method: 'CONNECT', path: req.headers[':authority'], status: ANSWER.statusCode, code: ANSWER.code }, 'litefs-proxy: a CONNECT request was refused (no tunnel here)')
}
