import { ServerResponse } from 'node:http'
import type { Acknowledgement } from './acknowledgement.js'
import { litefsError } from './answers.js'
import type { LitefsAnswer } from './request.js'
import { sendAnswer } from './send-answer.js'

// The head of a write's answer, held until its acknowledgement is decided
// (acknowledgement.ts): whoever sends it — the framework's send path,
// `writeHead` called by the app, a raw or hijacked reply, the implicit head of
// a first `write`/`end`/`flushHeaders` — its first such call asks for the
// decision (for the TXID cookie: a `-pos` read that starts then, after the
// handler's commit). Decided at once, the head leaves at once. Decided later,
// everything the app does meanwhile keeps Node's semantics: `headersSent` is
// true, the header methods throw as after a head, writes and the end are kept
// in order (`write` answers false past the high-water mark and 'drain' follows,
// so a pipe waits) and replayed once decided, with the implicit head still
// Node's own (a first `end(body)` still gets a Content-Length); `finish` fires
// when the real end is done. A decision to answer otherwise discards the app's
// head and body: the client gets the replacement, and what the app writes
// afterwards is dropped. Deciding is the core's; when the app has answered is
// this module's.

type Callback = (err?: Error | null) => void
type Kept = { end: boolean, chunk: unknown, encoding: BufferEncoding | undefined, cb: Callback | undefined } | 'flush'

/** Node's error for a header change after the head (ERR_HTTP_HEADERS_SENT), with its code. */
function headersSentError (verb: string): Error {
  return Object.assign(new Error(`Cannot ${verb} headers after they are sent to the client`), { code: 'ERR_HTTP_HEADERS_SENT' })
}

function codeError<E extends Error> (err: E, code: string): E {
  return Object.assign(err, { code })
}

/** What Node's write throws at once for a chunk it cannot send (the rest it reports later, as here). */
function checkChunk (chunk: unknown): void {
  if (chunk === null) throw codeError(new TypeError('May not write null values to stream'), 'ERR_STREAM_NULL_VALUES')
  if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
    throw codeError(new TypeError(`The "chunk" argument must be of type string or an instance of Buffer or Uint8Array. Received ${typeof chunk}`), 'ERR_INVALID_ARG_TYPE')
  }
}

/** A decision that failed: no acknowledgement can be given, so not the app's answer either. */
function failed (err: Error): Acknowledgement {
  return { replace: litefsError('LITEFS_INTERNAL', `the write's acknowledgement failed: ${err.message}`) }
}

/** What `_header` holds while the head is held (see lock()); a logger that prints it says why. */
const PLACEHOLDER = 'HTTP/1.1 (head held by litefs-proxy until the write is acknowledged)\r\n\r\n'

const HELD = Symbol('litefs-proxy.deferredHead')

/** The deferred head installed on `res`, if any. */
export function deferredHead (res: ServerResponse): DeferredHead | undefined {
  return (res as ServerResponse & { [HELD]?: DeferredHead })[HELD]
}

/**
 * Hold the head of `res` until `decide()` says how the answer leaves. `decide`
 * is called once, when the app first sends its head (or when an adapter asks
 * `decision()` first); its promise must not reject (a rejection is answered
 * 500 LITEFS_INTERNAL instead of the app's answer).
 */
export function deferHead (res: ServerResponse, decide: () => Acknowledgement | Promise<Acknowledgement>): DeferredHead {
  const held = new DeferredHead(res, decide);
  (res as ServerResponse & { [HELD]?: DeferredHead })[HELD] = held
  return held
}

export class DeferredHead {
  /** open: nothing sent yet; waiting: the app sent its head, the decision is pending; through: Node's own; replaced: the app's answer is dropped. */
  private state: 'open' | 'waiting' | 'through' | 'replaced' = 'open'
  private pending: Promise<Acknowledgement> | undefined
  private decided: Acknowledgement | undefined
  /** How the app gave its head while waiting: writeHead (its status and message kept), or a first write/end/flushHeaders. */
  private head: 'none' | 'explicit' | 'implicit' = 'none'
  private status = 200
  private message: string | undefined
  private kept: Kept[] | undefined // made when the first write is kept
  private keptBytes = 0
  private owedDrain = false
  private readonly writeHead: ServerResponse['writeHead']
  private readonly write: ServerResponse['write']
  private readonly end: ServerResponse['end']
  private readonly flushHeaders: ServerResponse['flushHeaders']
  /** The header methods as they were before the lock (own properties someone else set, or none). */
  private saved: Array<[string, PropertyDescriptor | undefined]> | undefined

  constructor (private readonly res: ServerResponse, private readonly decide: () => Acknowledgement | Promise<Acknowledgement>) {
    this.writeHead = res.writeHead
    this.write = res.write
    this.end = res.end
    this.flushHeaders = res.flushHeaders
    // Wrappers stay in place once decided (passing straight through): a wrapper
    // someone installed on top of them (compression) must keep working.
    const held = this // eslint-disable-line @typescript-eslint/no-this-alias
    res.writeHead = function (this: ServerResponse, statusCode: number, reason?: unknown, obj?: unknown) {
      if (held.state === 'through' || held.state === 'replaced' || held.head !== 'none') {
        if (held.state === 'waiting' && !(this instanceof ServerResponse)) throw headersSentError('write')
        return (held.writeHead as (...a: unknown[]) => ServerResponse).apply(this, [statusCode, reason, obj].slice(0, arguments.length))
      }
      held.takeHead(statusCode, reason, obj)
      held.begin()
      return this
    } as ServerResponse['writeHead']
    res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown) {
      if (held.state === 'through') return (held.write as (...a: unknown[]) => boolean).apply(this, [chunk, encoding, cb].slice(0, arguments.length))
      if (typeof encoding === 'function') { cb = encoding; encoding = undefined }
      return held.keep(false, chunk, encoding as BufferEncoding | undefined, cb as Callback | undefined) as boolean
    } as ServerResponse['write']
    res.end = function (this: ServerResponse, chunk?: unknown, encoding?: unknown, cb?: unknown) {
      if (held.state === 'through') return (held.end as (...a: unknown[]) => ServerResponse).apply(this, [chunk, encoding, cb].slice(0, arguments.length))
      if (typeof chunk === 'function') { cb = chunk; chunk = undefined; encoding = undefined } else if (typeof encoding === 'function') { cb = encoding; encoding = undefined }
      held.keep(true, chunk, encoding as BufferEncoding | undefined, cb as Callback | undefined)
      return this
    } as ServerResponse['end']
    res.flushHeaders = function (this: ServerResponse) {
      if (held.state === 'through') return held.flushHeaders.call(this)
      if (held.state === 'replaced') return
      if (held.head === 'none') held.takeImplicitHead()
      held.begin()
      if (held.is('through')) return held.flushHeaders.call(this)
      if (held.is('waiting')) (held.kept ??= []).push('flush')
    }
  }

  /**
   * The decision, asked once: at the head, or first by an adapter that applies
   * it itself (Fastify's onSend). Its promise never rejects.
   */
  decision (): Acknowledgement | Promise<Acknowledgement> {
    if (this.decided !== undefined) return this.decided
    if (this.pending === undefined) {
      let d: Acknowledgement | Promise<Acknowledgement>
      try {
        d = this.decide()
      } catch (err) {
        d = failed(err as Error)
      }
      if (!(d instanceof Promise)) {
        this.decided = d
        return d
      }
      this.pending = d.then(a => this.decidedNow(a), (err: Error) => this.decidedNow(failed(err)))
    }
    return this.pending
  }

  /** The decision arrived: a head held for it goes now. */
  private decidedNow (a: Acknowledgement): Acknowledgement {
    this.decided = a
    if (this.state === 'waiting') this.settle(a)
    return a
  }

  /** The state now (read through a call: TypeScript would keep it narrowed across the calls that change it). */
  private is (state: DeferredHead['state']): boolean {
    return this.state === state
  }

  /** The adapter applied the decision itself (Fastify's onSend): from now on Node's own. */
  release (): void {
    if (this.state === 'open') this.state = 'through'
  }

  /** writeHead while nothing was sent: what Node checks at once, and the headers set as Node's slow path sets them. */
  private takeHead (statusCode: number, reason: unknown, obj: unknown): void {
    const res = this.res
    const code = statusCode | 0
    if (code < 100 || code > 999) throw codeError(new RangeError(`Invalid status code: ${String(statusCode)}`), 'ERR_HTTP_INVALID_STATUS_CODE')
    if (typeof reason === 'string') this.message = reason
    else obj ??= reason
    if (Array.isArray(obj)) {
      // [name, value, …] or [[name, value], …]: repeated names stay repeated (Set-Cookie).
      const pairs: unknown[][] = obj.length > 0 && Array.isArray(obj[0]) ? obj : []
      if (pairs.length === 0) {
        if (obj.length % 2 !== 0) throw codeError(new TypeError(`The argument 'headers' is invalid. Received ${String(obj)}`), 'ERR_INVALID_ARG_VALUE')
        for (let i = 0; i < obj.length; i += 2) pairs.push([obj[i], obj[i + 1]])
      }
      for (const [name] of pairs) if (res.hasHeader(name as string)) res.removeHeader(name as string)
      for (const [name, value] of pairs) res.appendHeader(name as string, value as string)
    } else if (typeof obj === 'object' && obj !== null) {
      for (const [name, value] of Object.entries(obj)) if (name !== '') res.setHeader(name, value as string)
    }
    res.statusCode = code
    this.status = code
    this.head = 'explicit'
  }

  /** A first write/end/flushHeaders: Node's head would be writeHead(res.statusCode), checked then. */
  private takeImplicitHead (): void {
    const code = this.res.statusCode
    if ((code | 0) < 100 || (code | 0) > 999) throw codeError(new RangeError(`Invalid status code: ${String(code)}`), 'ERR_HTTP_INVALID_STATUS_CODE')
    this.status = code
    this.head = 'implicit'
  }

  /** A write or the end, while not yet through: sent now if decided now, else kept. */
  private keep (end: boolean, chunk: unknown, encoding: BufferEncoding | undefined, cb: Callback | undefined): boolean {
    if (this.state === 'replaced') {
      // The app's answer is discarded: its writes are consumed, never sent.
      if (cb !== undefined) process.nextTick(cb)
      return true
    }
    if (!end || Boolean(chunk)) checkChunk(chunk) // as Node: end() checks only a truthy chunk
    if (this.head === 'none') this.takeImplicitHead()
    this.begin()
    if (this.is('through')) {
      return end
        ? (this.end.call(this.res, chunk, encoding as BufferEncoding, cb) as unknown as boolean)
        : this.write.call(this.res, chunk, encoding as BufferEncoding, cb)
    }
    if (this.is('replaced')) return this.keep(end, chunk, encoding, cb)
    this.kept ??= []
    this.kept.push({ end, chunk, encoding, cb })
    if (end) return true
    this.keptBytes += (chunk as string | Uint8Array).length
    if (this.keptBytes < this.res.writableHighWaterMark) return true
    this.owedDrain = true
    return false
  }

  /** The app sent its head: decide (once), then let it through or hold it. */
  private begin (): void {
    if (this.state !== 'open') return
    const d = this.decision()
    if (!(d instanceof Promise)) return this.settle(d)
    this.state = 'waiting'
    this.lock()
  }

  /** Apply the decision: headers added and the head and what was kept sent, or the replacement instead. */
  private settle (a: Acknowledgement): void {
    const res = this.res
    this.unlock()
    if (a.replace !== undefined) return this.replaceWith(a.replace)
    this.state = 'through'
    for (const [name, value] of a.headers) res.appendHeader(name, value)
    if (this.head === 'explicit') {
      if (this.message === undefined) this.writeHead.call(res, this.status)
      else (this.writeHead as (...a: unknown[]) => ServerResponse).call(res, this.status, this.message)
    } else {
      res.statusCode = this.status // Node's implicit head is the status at the first write
    }
    const kept = this.kept ?? []
    this.kept = undefined
    for (const k of kept) {
      if (k === 'flush') this.flushHeaders.call(res)
      else if (k.end) this.end.call(res, k.chunk, k.encoding as BufferEncoding, k.cb)
      else this.write.call(res, k.chunk, k.encoding as BufferEncoding, k.cb as Callback)
    }
    if (this.owedDrain && res.writableNeedDrain !== true) res.emit('drain')
  }

  private replaceWith (answer: LitefsAnswer): void {
    const res = this.res
    const kept = this.kept ?? []
    this.kept = undefined
    const sendDate = res.sendDate
    for (const name of res.getHeaderNames()) res.removeHeader(name)
    res.sendDate = sendDate // removing a Date header turns it off
    if (res.statusMessage) res.statusMessage = '' // the replacement's own reason phrase (HTTP/2 has none)
    this.state = 'through'
    sendAnswer(res, answer)
    this.state = 'replaced'
    for (const k of kept) if (k !== 'flush' && typeof k.cb === 'function') process.nextTick(k.cb) // Fastify passes null
    if (this.owedDrain) res.emit('drain')
  }

  /**
   * While the head is held: what Node says and does once a head has gone —
   * `headersSent` true, the header methods and writeHead throw
   * ERR_HTTP_HEADERS_SENT. Node's ServerResponse derives all of that from its
   * `_header` (the head as it will be sent), so a placeholder there says it
   * with Node's own errors, at the cost of one field (the replay puts it back
   * before anything is sent, and nothing sends while held: write, end and
   * flushHeaders are ours). Other responses (HTTP/2's) get the same answers
   * from properties of their own, the slow way.
   */
  private lock (): void {
    const res = this.res
    if (res instanceof ServerResponse) {
      (res as unknown as { _header: string | null })._header = PLACEHOLDER
      return
    }
    const overrides: Record<string, PropertyDescriptor> = {
      headersSent: { configurable: true, get: () => true },
      setHeader: { configurable: true, writable: true, value: () => { throw headersSentError('set') } },
      appendHeader: { configurable: true, writable: true, value: () => { throw headersSentError('append') } },
      removeHeader: { configurable: true, writable: true, value: () => { throw headersSentError('remove') } }
    }
    this.saved = []
    for (const [name, descriptor] of Object.entries(overrides)) {
      this.saved.push([name, Object.getOwnPropertyDescriptor(res, name)])
      Object.defineProperty(res, name, descriptor)
    }
  }

  private unlock (): void {
    const res = this.res
    if (res instanceof ServerResponse) {
      const r = res as unknown as { _header: string | null }
      if (r._header === PLACEHOLDER) r._header = null
      return
    }
    for (const [name, descriptor] of this.saved ?? []) {
      if (descriptor === undefined) delete (res as unknown as Record<string, unknown>)[name]
      else Object.defineProperty(res, name, descriptor)
    }
    this.saved = undefined
  }
}
