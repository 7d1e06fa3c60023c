import type { Duplex } from 'node:stream'
import { litefsError, type AnswerCode } from '../core/answers.js'
import { rawAnswer } from '../core/send-answer.js'
import type { Logger } from '../core/logger.js'

// A request Node's HTTP parser refuses, or one not received in full in time,
// never reaches a handler: Node answers it itself with a bare 400, 408 or 431,
// no body and no log line. `serve` answers it as every other refusal of its own
// (a one-line JSON body with a code) and says it in one line. A client that
// reset or ended its connection mid-request is gone: nothing to answer, nothing to say.

const GONE = new Set(['ECONNRESET', 'EPIPE', 'HPE_INVALID_EOF_STATE'])

const CODES: Record<string, AnswerCode> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'LITEFS_REQUEST_TIMEOUT',
  HPE_HEADER_OVERFLOW: 'LITEFS_HEAD_TOO_LARGE'
}

const MESSAGES: Partial<Record<AnswerCode, string>> = {
  LITEFS_REQUEST_TIMEOUT: 'the request did not arrive in full in time (--read-header-timeout, --read-timeout); nothing reached the app',
  LITEFS_HEAD_TOO_LARGE: 'the request head is larger than this server reads (Node\'s --max-http-header-size, 16 KiB by default); nothing reached the app'
}

/** Answer and log what Node's server reports as a client error on `socket` ('clientError'). */
export function answerClientError (log: Logger, err: Error & { code?: string }, socket: Duplex): void {
  if (GONE.has(err.code as string) || !socket.writable) {
    socket.destroy()
    return
  }
  const code = CODES[err.code as string] ?? 'LITEFS_BAD_REQUEST'
  const message = MESSAGES[code] ?? `the request is not valid HTTP/1.1 (${err.code as string}: ${err.message}); nothing reached the app`
  socket.end(rawAnswer(litefsError(code, message)), () => socket.destroy())
  log.info({ code, reason: err.code }, `litefs-proxy: ${message}`)
}
