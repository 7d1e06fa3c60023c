import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { LitefsHttpError } from './errors.js'
import { addForwardedHeaders, isForwardedMetadata, type ForwardedView } from './forwarded-headers.js'
import { clientGone } from './client-gone.js'

// Streams one request to the primary and its answer back, never buffering a
// body whole. The one property that matters most: a request whose bytes may
// have reached the primary is never sent twice. Failures are classified by what
// actually left: undici calls `onConnect` just before it writes the request on
// a connected socket, so an error before it means nothing was sent. Of those,
// only a failure to connect is worth retrying (the primary may be restarting).

/** The header a forwarding node adds; a node that is not primary never forwards a request carrying it. */
export const FORWARDED_HEADER = 'litefs-forwarded'

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'expect', // the replica's server already answered 100-continue; undici refuses it
  'http2-settings'
])


function dropped (headers: IncomingHttpHeaders): Set<string> | undefined {
  const connection = headers.connection
  if (connection === undefined) return undefined
  return new Set(connection.toLowerCase().split(',').map(s => s.trim()))
}

function isHopByHop (name: string, named: Set<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named?.has(name) === true
}

/**
 * The headers sent to the primary: the client's, less the hop-by-hop ones and
 * HTTP/2 pseudo-headers (`:authority` becomes `Host`: the primary is spoken to
 * in HTTP/1.1), less forwarded metadata this node cannot vouch for, plus this
 * node's own account of the client (forwarded-headers.ts) and the loop-guard marker.
 */
export function requestHeaders (req: IncomingMessage, view: ForwardedView, marker?: string): Record<string, string | string[]> {
  const named = dropped(req.headers)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.charCodeAt(0) === 58 /* : */ || isForwardedMetadata(name)) continue
    // Host stays even when `Connection: host` names it: the primary routes by it.
    if (name === 'host' || !isHopByHop(name, named)) out[name] = value
  }
  const authority = req.headers[':authority']
  if (out.host === undefined && typeof authority === 'string') out.host = authority
  addForwardedHeaders(out, req, view)
  if (marker !== undefined) out[FORWARDED_HEADER] = marker
  return out
}

/**
 * The primary's response headers (raw name/value pairs) less the hop-by-hop
 * ones, repeated names (Set-Cookie) gathered into arrays: headers an app set
 * before (Express's X-Powered-By) make writeHead apply each name with
 * setHeader, which keeps only the last of a repeated one.
 */
export function responseHeaders (raw: Buffer[]): { headers: Record<string, string | string[]>, sized: boolean } {
  const pairs: string[] = []
  let named: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1').toLowerCase()
    const value = raw[i + 1].toString('latin1')
    if (name === 'connection') named = dropped({ connection: value })
    pairs.push(name, value)
  }
  const headers: Record<string, string | string[]> = {}
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i]
    if (isHopByHop(name, named)) continue
    const seen = headers[name]
    headers[name] = seen === undefined ? pairs[i + 1] : ([] as string[]).concat(seen, pairs[i + 1])
  }
  return { headers, sized: headers['content-length'] !== undefined }
}

/** Bodies up to this size are kept while they are sent, so an attempt the primary never read can be made again. */
const REPLAY_LIMIT = 64 * 1024

/** What one request's body has been so far, across attempts. */
interface Replay {
  kept: Buffer[]
  bytes: number
  /** More was sent than is kept: no further attempt can resend it. */
  overflow: boolean
  /** The client's body has ended (all of it is in `kept`, unless overflow). */
  ended: boolean
}

const replays = new WeakMap<IncomingMessage, Replay>()

/**
 * An attempt to forward this request read from its body (the primary then
 * reset it unread, so it may be sent again from what was kept): the app on
 * this node can no longer read that body from the request itself.
 */
export function bodyTaken (req: IncomingMessage): boolean {
  const replay = replays.get(req)
  return replay !== undefined && (replay.bytes > 0 || replay.ended)
}

/**
 * The request body as a fresh stream for one attempt. It pulls from the client
 * only when undici starts sending, so an attempt refused at connect leaves the
 * client's body untouched for the next one; a small body is kept as it goes, so
 * an attempt the primary reset before reading can be made again from the start;
 * it counts bytes against the limit; and it gives up on a client that sends
 * nothing for `idleMs` (a stalled upload must not hold a connection to the
 * primary until Node's own request timeout).
 */
class AttemptBody extends Readable {
  started = false
  tooLarge = false
  stalled = false
  readonly replay: Replay
  private idle: NodeJS.Timeout | undefined

  constructor (private readonly source: IncomingMessage, private readonly limit: number, private readonly idleMs: number) {
    super()
    let replay = replays.get(source)
    if (replay === undefined) {
      replay = { kept: [], bytes: 0, overflow: false, ended: false }
      replays.set(source, replay)
    }
    this.replay = replay
  }

  override _read (): void {
    if (!this.started) {
      this.started = true
      for (const chunk of this.replay.kept) this.push(chunk) // what an earlier attempt sent
      if (this.replay.ended) {
        this.push(null)
        return
      }
      this.source.on('data', this.onData)
      this.source.once('end', this.onEnd)
      this.source.once('error', this.onError)
      this.source.once('aborted', this.onAborted)
      this.idle = setTimeout(this.onIdle, this.idleMs)
    }
    this.source.resume()
  }

  override _destroy (err: Error | null, done: (err?: Error | null) => void): void {
    this.detach()
    done(err)
  }

  /**
   * Stop feeding this attempt and let the rest of the client's body drain, so
   * the answer given instead (413, 502…) reaches a client still uploading.
   */
  release (): void {
    this.detach()
    this.source.resume()
  }

  /** Stop feeding this attempt; the client's body stays where it is, for the next one. */
  private detach (): void {
    clearTimeout(this.idle)
    this.idle = undefined
    // Paused first: a flowing stream without a 'data' listener drops what
    // arrives, and the next attempt (or the app, see bodyTaken) needs it.
    this.source.pause()
    this.source.off('data', this.onData)
    this.source.off('end', this.onEnd)
    this.source.off('error', this.onError)
    this.source.off('aborted', this.onAborted)
  }

  private readonly onEnd = (): void => {
    // An HTTP/2 stream the client reset ends too: that body is cut, not complete,
    // and must reach the primary as an aborted request, never as a shorter one.
    if ((this.source as { aborted?: boolean }).aborted === true) return this.onAborted()
    this.replay.ended = true
    clearTimeout(this.idle)
    this.push(null)
  }

  private readonly onAborted = (): void => {
    this.onError(new Error('the client aborted its request'))
  }

  /** The client's own request failed (it went away mid-upload). */
  clientFailed = false

  private readonly onError = (err: Error): void => {
    this.clientFailed = true
    this.destroy(err)
  }

  private readonly onIdle = (): void => {
    this.stalled = true
    this.release()
    this.destroy(new Error('the client sent no body bytes in time'))
  }

  private readonly onData = (chunk: Buffer): void => {
    this.idle?.refresh()
    const replay = this.replay
    replay.bytes += chunk.length
    if (replay.bytes > this.limit) {
      this.tooLarge = true
      this.release()
      this.destroy(new Error('request body larger than the forwarding limit'))
      return
    }
    if (!replay.overflow && replay.bytes <= REPLAY_LIMIT) {
      replay.kept.push(chunk)
    } else if (!replay.overflow) {
      replay.overflow = true
      replay.kept = [] // too big to send again: free it
    }
    if (!this.push(chunk)) this.source.pause()
  }
}

export interface ForwardRequest {
  req: IncomingMessage
  res: ServerResponse
  /** The request target to ask the primary for (path and query, as the client sent it). */
  path: string
  /** Origin of the primary, e.g. `http://node-a:8080`. */
  origin: string
  /** The client's request as this node believes it (what it vouches for to the primary). */
  view: ForwardedView
  /** The loop-guard marker (this node's name); none when proxying to the local app (the sidecar). */
  marker?: string
  /** Largest body forwarded, in bytes (Infinity: the primary enforces its own limits). */
  bodyLimit: number
  /** How long the primary may take to send its response head (ms); 0: as long as it takes. */
  timeout: number
  /** How long the client may pause its upload (ms, > 0). Default `timeout`. */
  bodyIdle?: number
  dispatcher: Dispatcher
  /** Called once, just before the primary's answer is written to `res`. */
  takeOver: () => void
}

export type ForwardResult =
  | { outcome: 'sent' } // the primary's answer went to the client
  | { outcome: 'gone' } // the client left; nobody to answer
  | { outcome: 'failed', retry: boolean, error: LitefsHttpError, unresolved?: true } // unresolved: the primary's host name does not resolve

function tooLarge (limit: number): LitefsHttpError {
  return new LitefsHttpError(413, 'LITEFS_BODY_TOO_LARGE', `request body is larger than the forwarding limit of ${limit} bytes`)
}

function hasBody (req: IncomingMessage): boolean {
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
  if (withBody && !replays.has(req) && (req.readableDidRead || req.readableEnded)) {
    // Something read the body before litefs-proxy (a body parser mounted first;
    // an earlier attempt of ours would have left its replay record):
    // what is left of it is not the request; sending it would hang or mangle the write.
    return { outcome: 'failed', retry: false, error: bodyConsumed() }
  }
  const headers = requestHeaders(req, f.view, f.marker)
  const body = withBody ? new AttemptBody(req, f.bodyLimit, f.bodyIdle ?? f.timeout) : undefined
  // undici's dispatch() with a plain handler: the answer is written straight to
  // `res` as it arrives — no response stream, no pipeline, no AbortController.
  return await new Promise<ForwardResult>(resolve => {
    let abort: ((err?: Error) => void) | undefined
    let sent = false // onConnect: the request is being written to the primary
    let started = false // the primary's answer began: from here on, only `res` can fail
    let left = false
    let resume: (() => void) | undefined
    // The primary's head is awaited from the moment the whole request is sent
    // (before that, the connect timeout and the body's idle timeout apply).
    // undici's own headersTimeout runs on a coarse clock (a 300 ms timeout fired
    // after about 1 s): the deadline is kept here, to the millisecond.
    let timer: NodeJS.Timeout | undefined
    const expire = (): void => {
      done({ outcome: 'failed', retry: false, error: new LitefsHttpError(504, 'LITEFS_FORWARD_TIMEOUT', `the primary at ${f.origin} did not answer within ${f.timeout} ms; the write was not retried`) })
      abort?.(new Error('the primary sent no response head in time')) // its onError finds the answer given
    }
    // A client that leaves mid-forward takes the upstream request with it.
    const gone = (): void => {
      left = true
      abort?.(new Error('the client went away'))
    }
    let finished = false
    const done = (result: ForwardResult): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      res.off('close', gone)
      resolve(result)
    }
    res.once('close', gone)
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
        if (statusCode < 200) return true // 1xx: the real answer follows
        clearTimeout(timer)
        started = true
        f.takeOver()
        const { headers, sized } = responseHeaders(raw)
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
        done({ outcome: 'sent' })
      },
      onError: err => {
        if (started) {
          // The client left or the primary broke mid-answer: nothing more can be said.
          res.destroy()
          return done({ outcome: 'sent' })
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

function bodyConsumed (): LitefsHttpError {
  return new LitefsHttpError(500, 'LITEFS_BODY_CONSUMED',
    'the request body was read before litefs-proxy could forward it to the primary: mount litefs-proxy before any body parser or middleware that reads the body')
}

function notSent (f: ForwardRequest, err: Error & { code?: string }): LitefsHttpError {
  return new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `forwarding to the primary at ${f.origin} failed before anything was sent (${err.code ?? err.message})`)
}

/** A reset while sending or before any answer: the primary never read what was sent. */
const UNREAD = new Set(['ECONNRESET', 'EPIPE'])

/** The primary's host name does not resolve (now, or at all). */
const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN'])

/**
 * Connection failures before anything was sent, worth another try: the primary
 * may be restarting, its name not resolvable yet, or a connection being set up
 * reset (its server closing).
 */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET'])

function failure (err: Error & { code?: string }, f: ForwardRequest, body: AttemptBody | undefined, sent: boolean): { retry: boolean, error: LitefsHttpError, unresolved?: true } {
  if (body?.tooLarge === true) return { retry: false, error: tooLarge(f.bodyLimit) }
  if (body?.stalled === true) {
    return { retry: false, error: new LitefsHttpError(408, 'LITEFS_BODY_TIMEOUT', `the client sent no part of its body for ${f.bodyIdle ?? f.timeout} ms; the request was aborted upstream`) }
  }
  if (!sent) {
    if (CONNECT_FAILURES.has(err.code ?? '')) {
      const error = new LitefsHttpError(503, 'LITEFS_NO_PRIMARY', `the primary at ${f.origin} could not be reached (${err.code as string})`, { 'retry-after': '1' })
      return UNRESOLVED.has(err.code as string) ? { retry: true, error, unresolved: true } : { retry: true, error }
    }
    return { retry: false, error: notSent(f, err) }
  }
  if (UNREAD.has(err.code ?? '') && body?.replay.overflow !== true) {
    // Reset before any answer: the primary's socket was closed with our request
    // unread in it (a kept-alive connection its server closed as idle — graceful
    // shutdown — as the request went out). TCP resets a connection that receives
    // data after its owner closed it; a server that read the request and then
    // died closes it cleanly instead ("other side closed"), and is never retried.
    return { retry: true, error: new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `the primary at ${f.origin} closed the connection without reading the request (${err.code as string}), and kept doing so`) }
  }
  return { retry: false, error: new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `forwarding to the primary at ${f.origin} failed (${err.code ?? err.message}); the write was not retried`) }
}
