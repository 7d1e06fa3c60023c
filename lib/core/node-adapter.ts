import type { IncomingMessage, ServerResponse } from 'node:http'
import { deferHead } from './deferred-head.js'
import type { LitefsHttpError } from './errors.js'
import { silentLogger, type Logger } from './logger.js'
import { LitefsCore } from './proxy.js'
import { nextStep, type AdapterHooks, type LitefsAnswer, type LitefsInfo, type RouteSetting } from './request.js'
import { firstValue } from './forwarded-headers.js'
import { DECODED, type PathRules } from './path-match.js'
import type { LitefsOptions, LitefsRouteOptions } from './options.js'
import { LitefsOptionsError, fail } from './option-checks.js'
export { sendAnswer } from './send-answer.js'

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
  /**
   * node:http only: trust `X-Forwarded-Proto`, `-Host` and `-For` from the proxy
   * in front (the cookie's `Secure`, and what a forwarded write tells the
   * primary). Express apps: Express's own `trust proxy` setting is used instead. Default false.
   */
  trustProxy?: boolean
  /** Where warnings go (pino, console…). Default: `console` for warnings and errors, nothing else. */
  logger?: Logger
}

const ROUTE = Symbol('litefs-proxy.route')
type Marked = IncomingMessage & { [ROUTE]?: RouteSetting, originalUrl?: string }

/** What Express puts on its requests (absent under Connect or plain node:http). */
interface ExpressRequest extends IncomingMessage {
  app?: { get: (setting: string) => unknown }
  secure?: boolean
  protocol?: string
  ip?: string
}

/** Mark a request's route setting (used by `skip()` / `alwaysForward()` middlewares mounted before the proxy). */
export function markRoute (req: IncomingMessage, setting: LitefsRouteOptions | false): void {
  (req as Marked)[ROUTE] = setting
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const

const consoleLogger: Logger = {
  ...silentLogger,
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj)
}

function checkAdapterOptions (opts: NodeAdapterOptions): { trustProxy: boolean, logger: Logger, core: LitefsOptions } {
  // Spread, a string or an array would become options "0", "1", …: said as what it is.
  if (opts !== undefined && (typeof opts !== 'object' || opts === null || Array.isArray(opts))) fail('options', 'an object', opts)
  const { trustProxy = false, logger = consoleLogger, ...core } = opts ?? {} as NodeAdapterOptions
  if (typeof trustProxy !== 'boolean') fail('trustProxy', 'true or false', trustProxy)
  // A logger missing a level would fail at the first line it is asked for, far from here.
  const missing = LEVELS.filter(level => typeof (logger as unknown as Record<string, unknown> | null)?.[level] !== 'function')
  if (missing.length > 0) throw new LitefsOptionsError(`litefs-proxy: option "logger" must have the methods ${LEVELS.join(', ')} (pino and console do); it lacks ${missing.join(', ')}`)
  return { trustProxy, logger, core }
}

// Express routes paths case-insensitively and with an optional trailing slash,
// unless its `case sensitive routing` / `strict routing` settings say otherwise;
// it does not decode them. One rules object per app, read at its first request.
// Plain node:http (and `serve`) has no router to ask: paths as the usual app
// behind one decodes them (DECODED).
const expressRules = new WeakMap<object, PathRules>()
function rulesOf (req: ExpressRequest): PathRules {
  const app = req.app
  if (app === undefined || typeof app.get !== 'function') return DECODED
  let rules = expressRules.get(app)
  if (rules === undefined) {
    rules = { decode: 'none', caseSensitive: app.get('case sensitive routing') === true, strictTrailingSlash: app.get('strict routing') === true, collapseSlashes: false }
    expressRules.set(app, rules)
  }
  return rules
}

/** Whether Express's `trust proxy` trusts the peer that sent `req`. */
function expressTrusts (req: ExpressRequest): boolean {
  const fn = req.app?.get('trust proxy fn')
  return typeof fn === 'function' && (fn as (addr: string | undefined, i: number) => boolean)(req.socket.remoteAddress, 0)
}

function hostOf (req: IncomingMessage): string | undefined {
  const h = req.headers.host ?? req.headers[':authority']
  return typeof h === 'string' ? h : undefined
}

export function createNodeCore (opts: NodeAdapterOptions): LitefsCore<ServerResponse> {
  const { trustProxy, logger, core } = checkAdapterOptions(opts)
  const hooks: AdapterHooks<ServerResponse> = {
    req: res => res.req,
    res: res => res,
    url: res => (res.req as Marked).originalUrl ?? res.req.url as string,
    route: res => (res.req as Marked)[ROUTE],
    log: () => logger,
    // Express's req.secure applies its `trust proxy` setting; plain node:http has only the socket.
    secure: res => {
      const req = res.req as ExpressRequest
      if (typeof req.secure === 'boolean') return req.secure
      if ((req.socket as { encrypted?: boolean }).encrypted === true) return true
      return trustProxy && firstValue(req.headers['x-forwarded-proto']) === 'https'
    },
    view: res => {
      const req = res.req as ExpressRequest
      const secure = hooks.secure(res)
      const proto = secure ? 'https' : 'http'
      if (req.app !== undefined) {
        const trusted = expressTrusts(req)
        return { proto, host: (trusted ? firstValue(req.headers['x-forwarded-host']) : undefined) ?? hostOf(req), client: req.ip }
      }
      return {
        proto,
        host: (trustProxy ? firstValue(req.headers['x-forwarded-host']) : undefined) ?? hostOf(req),
        client: (trustProxy ? firstValue(req.headers['x-forwarded-for']) : undefined) ?? req.socket.remoteAddress
      }
    },
    pathRules: res => rulesOf(res.req as ExpressRequest),
    routeUrl: () => undefined,
    takeOver: () => {},
    attach: (res, info) => { res.req.litefs = info }
  }
  return new LitefsCore(core, hooks, logger)
}

/** How one adapter ends a request: run the app, send a proxy answer, report a failure. Made once, not per request. */
export interface NodeEnding<N> {
  app: (res: ServerResponse, next: N) => void
  answer: (res: ServerResponse, answer: LitefsAnswer, next: N) => void
  /** `err`: the failure as the answer table's 500 LITEFS_INTERNAL, already logged (LitefsCore.internal). */
  fail: (res: ServerResponse, err: LitefsHttpError, next: N) => void
}

function settle<N> (core: LitefsCore<ServerResponse>, res: ServerResponse, info: LitefsInfo, ending: NodeEnding<N>, next: N): void {
  switch (nextStep(info)) {
    case 'app':
      // The head of a write served here waits for its acknowledgement (the cookie).
      if (info.local) deferHead(res, () => core.acknowledge(info, res))
      return ending.app(res, next)
    case 'answer': return ending.answer(res, info.answer as LitefsAnswer, next)
  }
}

/** Decide, then run the app (with the cookie hooked on) or send the proxy's answer. */
export function runNode<N> (core: LitefsCore<ServerResponse>, res: ServerResponse, ending: NodeEnding<N>, next: N): void {
  let decided: LitefsInfo | Promise<LitefsInfo>
  try {
    decided = core.decide(res)
  } catch (err) { // thrown before any await (a state driver of the app's): answered as a rejection is
    return ending.fail(res, core.internal(res, err), next)
  }
  if (decided instanceof Promise) {
    decided.then(info => settle(core, res, info, ending, next), (err: unknown) => ending.fail(res, core.internal(res, err), next))
  } else {
    settle(core, res, decided, ending, next)
  }
}
