import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { errors, type Dispatcher } from 'undici'
import { LitefsHttpError } from './errors.js'

// Streams one request to the primary and its answer back, never buffering a
// body whole. The one property that matters most: a request whose bytes may
// have reached the primary is never sent twice. Only a failure to connect
// (nothing sent) is reported as retryable.

/** The header a forwarding node adds; a node that is not primary never forwards a request carrying it. */
export const FORWARDED_HEADER = 'litefs-forwarded'

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'expect', // the replica's server already answered 100-continue; undici refuses it
  'http2-settings'
])

/** Connect-phase failures: the request never left this node. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])

function dropped (headers: IncomingHttpHeaders): Set<string> | undefined {
  const connection = headers.connection
  if (connection === undefined) return undefined
  return new Set(connection.toLowerCase().split(',').map(s => s.trim()))
}

function isHopByHop (name: string, named: Set<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named?.has(name) === true
}

export function requestHeaders (req: IncomingMessage, secure: boolean, marker: string): Record<string, string | string[]> {
  const named = dropped(req.headers)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    // Host stays even when `Connection: host` names it: the primary routes by it.
    if (value !== undefined && (name === 'host' || !isHopByHop(name, named))) out[name] = value
  }
  const peer = req.socket.remoteAddress ?? 'unknown'
  const xff = req.headers['x-forwarded-for']
  out['x-forwarded-for'] = xff === undefined ? peer : `${xff}, ${peer}`
  out['x-forwarded-proto'] ??= secure ? 'https' : 'http'
  if (req.headers.host !== undefined) out['x-forwarded-host'] ??= req.headers.host
  out[FORWARDED_HEADER] = marker
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

/**
 * The request body as a fresh stream for one attempt. It pulls from the client
 * only when undici starts sending, so an attempt refused at connect leaves the
 * client's body untouched for the next one; and it counts bytes against the limit.
 */
class AttemptBody extends Readable {
  started = false
  tooLarge = false
  private bytes = 0

  constructor (private readonly source: IncomingMessage, private readonly limit: number) {
    super()
  }

  override _read (): void {
    if (!this.started) {
      this.started = true
      this.source.on('data', this.onData)
      this.source.once('end', () => this.push(null))
      this.source.once('error', err => this.destroy(err))
    }
    this.source.resume()
  }

  /**
   * Stop feeding this attempt and let the rest of the client's body drain, so
   * the answer given instead (413, 502…) reaches a client still uploading.
   */
  release (): void {
    this.source.off('data', this.onData)
    this.source.resume()
  }

  private readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length
    if (this.bytes > this.limit) {
      this.tooLarge = true
      this.release()
      this.destroy(new Error('request body larger than bodyLimit'))
    } else if (!this.push(chunk)) {
      this.source.pause()
    }
  }
}

export interface ForwardRequest {
  req: IncomingMessage
  res: ServerResponse
  /** The request target to ask the primary for (path and query, as the client sent it). */
  path: string
  /** Origin of the primary, e.g. `http://node-a:8080`. */
  origin: string
  secure: boolean
  marker: string
  bodyLimit: number
  timeout: number
  dispatcher: Dispatcher
  /** Called once, just before the primary's answer is written to `res`. */
  takeOver: () => void
}

export type ForwardResult =
  | { outcome: 'sent' } // the primary's answer went to the client
  | { outcome: 'gone' } // the client left; nobody to answer
  | { outcome: 'failed', retry: boolean, error: LitefsHttpError }

function tooLarge (limit: number): LitefsHttpError {
  return new LitefsHttpError(413, 'LITEFS_BODY_TOO_LARGE', `request body is larger than the limit of ${limit} bytes`)
}

function hasBody (req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
}

export async function forward (f: ForwardRequest): Promise<ForwardResult> {
  const { req, res } = f
  const length = Number(req.headers['content-length'])
  if (length > f.bodyLimit) return { outcome: 'failed', retry: false, error: tooLarge(f.bodyLimit) }
  const body = hasBody(req) ? new AttemptBody(req, f.bodyLimit) : undefined
  // undici's dispatch() with a plain handler: the answer is written straight to
  // `res` as it arrives — no response stream, no pipeline, no AbortController.
  return await new Promise<ForwardResult>(resolve => {
    let abort: ((err?: Error) => void) | undefined
    let started = false // the primary's answer began: from here on, only `res` can fail
    let left = false
    let resume: (() => void) | undefined
    // A client that leaves mid-forward takes the upstream request with it.
    const gone = (): void => {
      left = true
      abort?.(new Error('the client went away'))
    }
    const done = (result: ForwardResult): void => {
      res.off('close', gone)
      resolve(result)
    }
    res.once('close', gone)
    f.dispatcher.dispatch({
      origin: f.origin,
      path: f.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: requestHeaders(req, f.secure, f.marker),
      body,
      headersTimeout: f.timeout,
      bodyTimeout: 0 // a server-sent-events answer may be quiet for long
    }, {
      onConnect: a => { abort = a },
      onHeaders: (statusCode, raw, resumeUpstream) => {
        if (statusCode < 200) return true // 1xx: the real answer follows
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
        if (left) return done({ outcome: 'gone' })
        const failed = failure(err as Error & { code?: string }, f, body)
        // A retry needs the client's body untouched; any other end lets it drain so
        // the answer given instead reaches a client still uploading.
        if (!failed.retry) body?.release()
        done({ outcome: 'failed', ...failed })
      }
    })
  })
}

function failure (err: Error & { code?: string }, f: ForwardRequest, body: AttemptBody | undefined): { retry: boolean, error: LitefsHttpError } {
  if (body?.tooLarge === true) return { retry: false, error: tooLarge(f.bodyLimit) }
  if (NOT_SENT.has(err.code ?? '') && body?.started !== true) {
    return { retry: true, error: new LitefsHttpError(503, 'LITEFS_NO_PRIMARY', `the primary at ${f.origin} refused the connection (${err.code as string})`, { 'retry-after': '1' }) }
  }
  if (err instanceof errors.HeadersTimeoutError) {
    return { retry: false, error: new LitefsHttpError(504, 'LITEFS_FORWARD_TIMEOUT', `the primary at ${f.origin} did not answer within ${f.timeout} ms`) }
  }
  return { retry: false, error: new LitefsHttpError(502, 'LITEFS_FORWARD_FAILED', `forwarding to the primary at ${f.origin} failed (${err.code ?? err.message}); the write was not retried`) }
}
