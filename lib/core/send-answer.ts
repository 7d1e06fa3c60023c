import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { LitefsHttpError } from './errors.js'
import { laterOnConnection } from './last-answer.js'
import type { LitefsAnswer } from './request.js'

// Writing one of litefs-proxy's own answers (an error, the health check, a
// fly-replay, an acknowledgement that replaces the app's) to a Node response.

/**
 * An answer that says this server is shutting down (LITEFS_CLOSED) also closes
 * its HTTP/1.1 connection (`Connection: close`): the client's next request goes
 * to a server that stays. Not when the client pipelined a request behind it
 * that is already decided: that one's answer is queued behind this one, and the
 * connection ends after it instead (last-answer.ts). HTTP/2 has no such
 * header; its session is closed by the drain (lifecycle.ts).
 */
export function closingAnswer (res: ServerResponse, answer: LitefsAnswer): void {
  if (answer instanceof LitefsHttpError && answer.code === 'LITEFS_CLOSED' && res.req.httpVersionMajor === 1 && !laterOnConnection(res)) res.shouldKeepAlive = false
}

/** Write a proxy answer as the response: its status, headers, a JSON type for errors, its length, and its body unless HEAD. */
export function sendAnswer (res: ServerResponse, answer: LitefsAnswer): void {
  closingAnswer(res, answer)
  const headers: OutgoingHttpHeaders = { ...answer.headers }
  if (answer instanceof LitefsHttpError) headers['content-type'] = 'application/json; charset=utf-8'
  headers['content-length'] = Buffer.byteLength(answer.body)
  res.writeHead(answer.statusCode, headers)
  res.end(res.req.method === 'HEAD' ? undefined : answer.body)
}

/**
 * An error answer as the bytes of a whole HTTP/1.1 response that closes its
 * connection: for a socket no response object stands for (a CONNECT, a request
 * Node's parser refused).
 */
export function rawAnswer (answer: LitefsHttpError): string {
  return `HTTP/1.1 ${answer.statusCode} ${STATUS_CODES[answer.statusCode] as string}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(answer.body)}\r\n` +
    'connection: close\r\n\r\n' + answer.body
}
