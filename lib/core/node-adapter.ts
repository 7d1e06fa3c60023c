import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { LitefsHttpError } from './errors.js'
import { silentLogger, type Logger } from './logger.js'
import { LitefsCore, nextStep, type AdapterHooks, type LitefsAnswer, type LitefsInfo, type RouteSetting } from './proxy.js'
import type { LitefsOptions, LitefsRouteOptions } from './options.js'

// What the Express middleware and the node:http wrapper share: both see Node's
// own req/res, so one translation serves both; each adapter only says how a
// proxy answer leaves (Express: next(err); http: written directly).

declare module 'node:http' {
  interface IncomingMessage {
    /** What litefs-proxy did with this request (set before the app runs). */
    litefs?: LitefsInfo
  }
}

/** Options of the Express middleware and the node:http wrapper. */
export interface NodeAdapterOptions extends LitefsOptions {
  /** Largest request body forwarded to the primary, in bytes (a replica is no way around the app's limit). Default 1 MiB. */
  bodyLimit?: number
  /**
   * Trust `X-Forwarded-Proto` from the proxy in front (for the cookie's `Secure`).
   * Express apps: Express's own `trust proxy` setting is used instead. Default false.
   */
  trustProxy?: boolean
  /** Where warnings go (pino, console…). Default: `console` for warnings and errors, nothing else. */
  logger?: Logger
}

const ROUTE = Symbol('litefs-proxy.route')
type Marked = IncomingMessage & { [ROUTE]?: RouteSetting, secure?: boolean, originalUrl?: string }

/** Mark a request's route setting (used by `skip()` / `alwaysForward()` middlewares mounted before the proxy). */
export function markRoute (req: IncomingMessage, setting: LitefsRouteOptions | false): void {
  (req as Marked)[ROUTE] = setting
}

const consoleLogger: Logger = {
  ...silentLogger,
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj)
}

function checkAdapterOptions (opts: NodeAdapterOptions): { bodyLimit: number, trustProxy: boolean, logger: Logger, core: LitefsOptions } {
  const { bodyLimit = 1 << 20, trustProxy = false, logger = consoleLogger, ...core } = opts ?? {} as NodeAdapterOptions
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 0) throw new TypeError(`litefs-proxy: option "bodyLimit" must be a number of bytes, got ${String(bodyLimit)}`)
  if (typeof trustProxy !== 'boolean') throw new TypeError(`litefs-proxy: option "trustProxy" must be true or false, got ${String(trustProxy)}`)
  return { bodyLimit, trustProxy, logger, core }
}

export function createNodeCore (opts: NodeAdapterOptions): LitefsCore<ServerResponse> {
  const { bodyLimit, trustProxy, logger, core } = checkAdapterOptions(opts)
  const hooks: AdapterHooks<ServerResponse> = {
    req: res => res.req,
    res: res => res,
    url: res => (res.req as Marked).originalUrl ?? res.req.url as string,
    route: res => (res.req as Marked)[ROUTE],
    log: () => logger,
    // Express's req.secure applies its `trust proxy` setting; plain node:http has only the socket.
    secure: res => {
      const req = res.req as Marked
      if (typeof req.secure === 'boolean') return req.secure
      if ((req.socket as { encrypted?: boolean }).encrypted === true) return true
      return trustProxy && String(req.headers['x-forwarded-proto']).split(',')[0].trim() === 'https'
    },
    bodyLimit: () => bodyLimit,
    takeOver: () => {},
    attach: (res, info) => { res.req.litefs = info }
  }
  return new LitefsCore(core, hooks, logger)
}

/** Write a proxy answer (health, fly-replay, error) as the response. */
export function sendAnswer (res: ServerResponse, answer: LitefsAnswer): void {
  const headers: OutgoingHttpHeaders = { ...answer.headers }
  if (answer instanceof LitefsHttpError) headers['content-type'] = 'application/json; charset=utf-8'
  headers['content-length'] = Buffer.byteLength(answer.body)
  res.writeHead(answer.statusCode, headers)
  res.end(res.req.method === 'HEAD' ? undefined : answer.body)
}

/**
 * Add the TXID cookie just before the headers go out, whoever sends them
 * (writeHead, or the implicit head of write/end): the app's handler has
 * committed by then, so the position read includes its write.
 */
function cookieOnHead (core: LitefsCore<ServerResponse>, res: ServerResponse, info: LitefsInfo): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    res.writeHead = writeHead
    const cookie = core.cookie(info, res)
    if (cookie !== undefined) {
      // Headers passed to writeHead replace those set before: put ours where they will survive.
      const given = [args[1], args[2]].find(a => typeof a === 'object' && a !== null) as OutgoingHttpHeaders | string[] | undefined
      const key = given === undefined || Array.isArray(given) ? undefined : Object.keys(given).find(k => k.toLowerCase() === 'set-cookie')
      if (Array.isArray(given)) {
        given.push('set-cookie', cookie)
      } else if (given !== undefined && key !== undefined) {
        given[key] = ([] as string[]).concat(given[key] as string | string[], cookie)
      } else {
        res.appendHeader('set-cookie', cookie)
      }
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}

/** How one adapter ends a request: run the app, send a proxy answer, report a failure. Made once, not per request. */
export interface NodeEnding<N> {
  app: (res: ServerResponse, next: N) => void
  answer: (res: ServerResponse, answer: LitefsAnswer, next: N) => void
  fail: (res: ServerResponse, err: Error, next: N) => void
}

function settle<N> (core: LitefsCore<ServerResponse>, res: ServerResponse, info: LitefsInfo, ending: NodeEnding<N>, next: N): void {
  switch (nextStep(info)) {
    case 'app':
      if (info.local) cookieOnHead(core, res, info)
      return ending.app(res, next)
    case 'answer': return ending.answer(res, info.answer as LitefsAnswer, next)
  }
}

/** Decide, then run the app (with the cookie hooked on) or send the proxy's answer. */
export function runNode<N> (core: LitefsCore<ServerResponse>, res: ServerResponse, ending: NodeEnding<N>, next: N): void {
  const decided = core.decide(res)
  if (decided instanceof Promise) {
    decided.then(info => settle(core, res, info, ending, next), (err: Error) => ending.fail(res, err, next))
  } else {
    settle(core, res, decided, ending, next)
  }
}
