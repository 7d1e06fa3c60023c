import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { litefsError } from './answers.js'
import { AttemptBody, attempted } from './attempt-body.js'
import { LitefsHttpError, reasonOf } from './errors.js'
import { clientGone, closeSource } from './client-gone.js'
import { MAX_ANSWER_HEAD } from './forward-agent.js'
import { requestHeaders, responseHeaders } from './hop-by-hop.js'
import type { ForwardedView } from './forwarded-headers.js'
import { relayInterim } from './interim.js'
import { failedOnReusedConnection } from './reused-connection.js'

// Streams one request to the primary and its answer back, never buffering a
// body whole. The one property that matters most: a request whose bytes may
// have reached the primary is never sent twice. Failures are classified by what
// actually left: undici calls `onConnect` just before it writes the request on
// a connected socket, so an error before it means nothing was sent. Of those,
// only a failure to connect is worth retrying (the primary may be restarting).
// Which headers go (hop-by-hop.ts) and the body's attempts (attempt-body.ts)
// are modules of their own.

export { FORWARDED_HEADER, requestHeaders, responseHeaders } from './hop-by-hop.js'
export { bodyTaken } from './attempt-body.js'

export interface ForwardRequest {
  req: IncomingMessage
  res: ServerResponse
  /** The request target to ask the primary for (path and query, as the client sent it). */
  path: string
  /** Origin of the primary, e.g. `http://node-a:8080`. */
  origin: string
  /** Who is at `origin`, for messages: default `the primary at <origin>` (the sidecar: `the app at <target>`). */
  label?: string
  /** The client's request as this node believes it (what it vouches for to the primary). */
  view: ForwardedView
  /** The loop-guard marker (this node's name); none when proxying to the local app (the sidecar). */
  marker?: string
  /** Largest body forwarded, in bytes (Infinity: the primary enforces its own limits). */
  bodyLimit: number
  /** How long the primary may take to send its response head (ms); 0: as long as it takes. */
  timeout: number
  /** Safe to send twice (resend.ts): sent again after a close that may have followed its reading. */
  resendable?: boolean
  /**
   * The other side is a litefs-proxy, which resets its idle keep-alive
   * connections when it closes: a reset of a reused connection before any
   * answer then means the request was never read, and even a write is sent
   * again. Not an app's server (the sidecar's target): see reused-connection.ts.
   */
  idleResets?: boolean
  /** How long the client may pause its upload (ms, > 0). Default `timeout`. */
  bodyIdle?: number
  dispatcher: Dispatcher
  /** Called once, just before the primary's answer is written to `res`. */
  takeOver: () => void
}

export type ForwardResult =
  // the primary's answer went to the client; closing: the primary said it is closing (CLOSING_HEADER)
  | { outcome: 'sent', closing?: true }
  | { outcome: 'gone' } // the client left; nobody to answer
  // retry: worth another attempt; resend: the server may have read it (a request safe to send twice); unresolved: the primary's host name does not resolve;
  // closing: a litefs-proxy reset a kept-alive connection unread, as it does when it closes (idle-reset.ts)
  | { outcome: 'failed', retry: boolean, error: LitefsHttpError, resend?: true, unresolved?: true, closing?: true }

const SENT: ForwardResult = { outcome: 'sent' }
const SENT_CLOSING: ForwardResult = { outcome: 'sent', closing: true }
/** The answer went to the client: one of two results made once, no allocation per forward. */
function sentResult (closing: boolean): ForwardResult {
  return closing ? SENT_CLOSING : SENT
}

function tooLarge (limit: number): LitefsHttpError {
  return new LitefsHttpError(413, 'LITEFS_BODY_TOO_LARGE', `request body is larger than the forwarding limit of ${limit} bytes`)
}

/** The request has a body: a Transfer-Encoding, or a Content-Length other than 0 (HTTP/2: a stream its HEADERS frame did not end). */
export function hasBody (req: IncomingMessage): boolean {
  // HTTP/2 needs neither header: a request has a body unless its HEADERS frame ended the stream.
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream
  if (req.httpVersionMajor === 2 && stream !== undefined) return stream.endAfterHeaders !== true
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
}

export async function forward (f: ForwardRequest): Promise<ForwardResult> {
  const { req, res } = f
  const length = Number(req.headers['content-length'])
  if (length > f.bodyLimit) return { outcome: 'failed', retry: false, error: tooLarge(f.bodyLimit) }
  const withBody = hasBody(req)
  if (withBody && !attempted(req) && (req.readableDidRead || req.readableEnded)) {
    // Something read the body before litefs-proxy (a body parser mounted first;
    // an earlier attempt of ours would have left its replay record):
    // what is left of it is not the request; sending it would hang or mangle the write.
    return { outcome: 'failed', retry: false, error: bodyConsumed() }
  }
  const headers = requestHeaders(req, f.view, f.marker, f.timeout)
  const body = withBody ? new AttemptBody(req, f.bodyLimit, f.bodyIdle ?? f.timeout) : undefined
  // undici's dispatch() with a plain handler: the answer is written straight to
  // `res` as it arrives — no response stream, no pipeline, no AbortController.
  return await new Promise<ForwardResult>(resolve => {
    let abort: ((err?: Error) => void) | undefined
    let sent = false // onConnect: the request is being written to the primary
    let started = false // the primary's answer began: from here on, only `res` can fail
    let closing = false // the primary's answer said it is closing
    let left = false
    let resume: (() => void) | undefined
    // The primary's head is awaited from the moment the whole request is sent
    // (before that, the connect timeout and the body's idle timeout apply).
    // undici's own headersTimeout runs on a coarse clock (a 300 ms timeout fired
    // after about 1 s): the deadline is kept here, to the millisecond.
    let timer: NodeJS.Timeout | undefined
    const expire = (): void => {
      done({ outcome: 'failed', retry: false, error: new LitefsHttpError(504, 'LITEFS_FORWARD_TIMEOUT', `${labelOf(f)} did not answer within ${f.timeout} ms; the request was not retried`) })
      abort?.(new Error('the primary sent no response head in time')) // its onError finds the answer given
    }
    // A client that leaves mid-forward takes the upstream request with it.
    const gone = (): void => {
      left = true
      abort?.(new Error('the client went away'))
    }
    let finished = false
    const closes = closeSource(res) // a pipelined answer still queued: its connection
    const done = (result: ForwardResult): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      closes.off('close', gone)
      resolve(result)
    }
    closes.once('close', gone)
    // Gone before that listener was there: its 'close' is past. Nothing is sent.
    if (clientGone(res)) {
      body?.release()
      return done({ outcome: 'gone' })
    }
    // A legacy (v6-style) handler: undici passes it through unwrapped, with
    // `onRequestSent`, which its types no longer list.
    const handler: Dispatcher.DispatchHandler & { onRequestSent: () => void } = {
      onConnect: a => {
        abort = a
        // The client left while the request waited for a connection: send nothing.
        if (left) return a(new Error('the client went away'))
        sent = true
      },
      onRequestSent: () => {
        if (!started && f.timeout > 0) timer = setTimeout(expire, f.timeout)
      },
      onHeaders: (statusCode, raw, resumeUpstream) => {
        if (statusCode < 200) { // 1xx: passed on where the client can read it; the real answer follows
          relayInterim(req, res, statusCode, raw)
          return true
        }
        clearTimeout(timer)
        started = true
        f.takeOver()
        const { headers, sized, closing: said } = responseHeaders(raw)
        closing = said
        if (statusCode === 204) delete headers['content-length'] // never on a 204 (RFC 9110 §8.6); a 304 may say the length it stands for
        res.writeHead(statusCode, headers)
        // A streamed answer (server-sent events) goes out head first, so the
        // client learns at once that it is connected; a sized one leaves with its body.
        if (!sized) res.flushHeaders()
        resume = resumeUpstream
        return true
      },
      onData: chunk => {
        if (res.write(chunk)) return true
        res.once('drain', resume as () => void) // backpressure: the primary waits for a slow client
        return false
      },
      onComplete: () => {
        res.end()
        if (body !== undefined && !body.replay.ended) {
          // An answer given before the body was all sent (413, 401, a redirect):
          // the rest of the client's body is drained, so the client reads this
          // answer, and the upload to the primary ends (over HTTP/2 its stream
          // would stay open, half sent, and keep its session from closing).
          body.release()
          body.destroy()
        }
        done(sentResult(closing))
      },
      onError: err => {
        if (started && (err as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' && (res.statusCode === 204 || res.statusCode === 304)) {
          // A 204 or 304 has no body whatever its Content-Length says (RFC 9110
          // §8.6 lets a 304 carry the length of the body it stands for): undici
          // counts the missing bytes as a broken answer, but the answer is whole.
          res.end()
          return done(sentResult(closing))
        }
        if (started) {
          // The client left or the primary broke mid-answer: nothing more can be said.
          res.destroy()
          return done(sentResult(closing))
        }
        if (left || body?.clientFailed === true) return done({ outcome: 'gone' })
        const failed = failure(err as Error & { code?: string }, f, body, sent)
        // A retry needs the client's body where it is; any other end lets it drain
        // so the answer given instead reaches a client still uploading.
        if (!failed.retry) body?.release()
        done({ outcome: 'failed', ...failed })
      }
    }
    f.dispatcher.dispatch({
      origin: f.origin,
      path: f.path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body,
      headersTimeout: 0, // kept by `timer`
      bodyTimeout: 0 // a server-sent-events answer may be quiet for long
    }, handler)
  })
}

function labelOf (f: ForwardRequest): string {
  return f.label ?? `the primary at ${f.origin}`
}

function bodyConsumed (): LitefsHttpError {
  return new LitefsHttpError(500, 'LITEFS_BODY_CONSUMED',
    'the request body was read before litefs-proxy could forward it to the primary: mount litefs-proxy before any body parser or middleware that reads the body')
}

function notSent (f: ForwardRequest, err: Error & { code?: string }): LitefsHttpError {
  return new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `sending to ${labelOf(f)} failed before anything was sent (${reasonOf(err)})`)
}

/** A reset while sending or before any answer: the primary never read what was sent. */
const UNREAD = new Set(['ECONNRESET', 'EPIPE'])

/**
 * The connection ended before any answer, cleanly or not: a close (FIN) of an
 * idle connection the server closed as the request went out, or the server
 * gone. Whether it read the request is unknown (resend.ts).
 */
const CLOSED_BEFORE_ANSWER = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_INFO'])

/** The primary's host name does not resolve (now, or at all). */
const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN'])

/**
 * Connection failures before anything was sent, worth another try: the primary
 * may be restarting, its name not resolvable yet, or a connection being set up
 * reset (its server closing).
 */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET'])

function failure (err: Error & { code?: string }, f: ForwardRequest, body: AttemptBody | undefined, sent: boolean): { retry: boolean, error: LitefsHttpError, resend?: true, unresolved?: true, closing?: true } {
  if (body?.tooLarge === true) return { retry: false, error: tooLarge(f.bodyLimit) }
  if (body?.stalled === true) {
    return { retry: false, error: new LitefsHttpError(408, 'LITEFS_BODY_TIMEOUT', `the client sent no part of its body for ${f.bodyIdle ?? f.timeout} ms; the request was aborted upstream`) }
  }
  if (err.code === 'UND_ERR_HEADERS_OVERFLOW') {
    return { retry: false, error: litefsError('LITEFS_ANSWER_TOO_LARGE', `the answer of ${labelOf(f)} has a head larger than ${MAX_ANSWER_HEAD} bytes, more than browsers accept; the request was not retried and may have been applied`) }
  }
  if (!sent) {
    if (CONNECT_FAILURES.has(err.code ?? '')) {
      const error = new LitefsHttpError(503, 'LITEFS_NO_PRIMARY', `${labelOf(f)} could not be reached (${err.code as string})`, { 'retry-after': '1' })
      return UNRESOLVED.has(err.code as string) ? { retry: true, error, unresolved: true } : { retry: true, error }
    }
    return { retry: false, error: notSent(f, err) }
  }
  if (f.idleResets === true && UNREAD.has(err.code ?? '') && failedOnReusedConnection(err) && body?.replay.overflow !== true) {
    // Reset before any answer, on a kept-alive connection the primary's
    // litefs-proxy cut as idle as it closed (graceful shutdown) as the request
    // went out: discarded unread. Any other reset before an answer may follow a
    // reading (an app that died after its commit, the body's rest unread):
    // sent again only if safe twice (below).
    return { retry: true, closing: true, error: new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `${labelOf(f)} closed the connection without reading the request (${err.code as string}), and kept doing so`) }
  }
  if (f.resendable === true && CLOSED_BEFORE_ANSWER.has(err.code ?? '') && body?.replay.overflow !== true) {
    return { retry: true, resend: true, error: new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `${labelOf(f)} closed the connection before answering (${err.code as string}), each time the request was sent`) }
  }
  return { retry: false, error: new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `sending to ${labelOf(f)} failed (${reasonOf(err)}); the request was not retried`) }
}
