import fp from 'fastify-plugin'
import type { FastifyPluginCallback, FastifyReply, HookHandlerDoneFunction, onSendHookHandler } from 'fastify'
import { LitefsCore } from './core/proxy.js'
import { closingAnswer } from './core/send-answer.js'
import { nextStep, type AdapterHooks, type LitefsAnswer, type LitefsInfo } from './core/request.js'
import { whenAnswered } from './core/lifecycle.js'
import { acceptQueued } from './core/accept-queued.js'
import { deferHead, deferredHead } from './core/deferred-head.js'
import type { Acknowledgement } from './core/acknowledgement.js'
import type { PathRules } from './core/path-match.js'
import type { LitefsOptions, LitefsRouteOptions } from './core/options.js'
import type { UpgradeSocket } from './core/upgrade-socket.js'
import { fastifyUpgrade } from './fastify-websocket.js'
import { PEER_PATH } from './core/durability-options.js'

export type { LitefsAnswer, LitefsInfo, LitefsOptions, LitefsRouteOptions }
export { LitefsHttpError } from './core/errors.js'
export { LitefsCore } from './core/proxy.js'
export { CHANNELS, type LitefsStats } from './core/observe.js'
export { LitefsOptionsError } from './core/options.js'
import { LitefsOptionsError } from './core/options.js'
import { LitefsHttpError } from './core/errors.js'

/** Options of the Fastify plugin: the core's (see LitefsOptions). */
export interface FastifyLitefsOptions extends LitefsOptions {}

/**
 * A route's litefs-proxy setting (`config: { litefs: … }`): `false` hands the
 * route to its handler untouched (passthrough); `{ alwaysForward: true }` makes
 * its reads writes; `{ durability: true|false }` says whether its writes'
 * answers wait for every candidate, whatever the `durability` option says. The keys are typed `Boolean` so that a wrong value's
 * type error names the key (`boolean` would collapse it into "not assignable to
 * 'false & …'"); the value is checked when the route is added.
 */
// At least one key: Fastify intersects a route's config with its literal type, so an all-optional
// object type took 'off', true and misspelt keys. alwaysForward's member last: its error names the key.
// eslint-disable-next-line @typescript-eslint/ban-types
export type LitefsRouteSetting = false | { durability: Boolean, alwaysForward?: Boolean } | { alwaysForward: Boolean, durability?: Boolean }

declare module 'fastify' {
  interface FastifyContextConfig {
    /** litefs-proxy for this route: `false` (passthrough), or `{ alwaysForward?, durability? }`. */
    litefs?: LitefsRouteSetting
  }
  interface FastifyInstance {
    /** The plugin's core: `state` (role, positions, held requests), `health()`, resolved `options`. */
    litefs: LitefsCore<FastifyReply>
  }
  interface FastifyRequest {
    /** What litefs-proxy did with this request; null before its onRequest hook ran. */
    litefs: LitefsInfo | null
  }
}

// find-my-way decodes a path (decodeURI) before it routes it. Case, trailing and
// duplicate slashes are its options, which Fastify does not expose: the route
// the router matched (routeOptions.url) is classified too, so every spelling it
// routes to a route is classified as that route.
const FASTIFY_PATHS: PathRules = { decode: 'uri', caseSensitive: true, strictTrailingSlash: true, collapseSlashes: false }

// request.routeOptions builds a new object (and asks the router about version
// constraints) on every read. The core asks for the route's setting, then at
// once for its URL (decide.ts): one read serves both, and is let go with the second.
type RouteOptions = FastifyReply['request']['routeOptions']
let routeOfReply: FastifyReply | undefined
let routeOf: RouteOptions | undefined
function routeOptions (reply: FastifyReply): RouteOptions {
  if (routeOfReply !== reply) {
    routeOfReply = reply
    routeOf = reply.request.routeOptions
  }
  return routeOf as RouteOptions
}

// Fastify's reply reaches everything the core asks about (reply.request, reply.raw).
const hooks: AdapterHooks<FastifyReply> = {
  req: reply => reply.request.raw,
  res: reply => reply.raw,
  url: reply => reply.request.url,
  route: reply => routeOptions(reply).config.litefs as LitefsRouteOptions | false | undefined,
  log: reply => reply.log,
  secure: reply => reply.request.protocol === 'https', // honours trustProxy
  view: reply => ({ proto: reply.request.protocol, host: reply.request.host, client: reply.request.ip }), // all honour trustProxy
  pathRules: () => FASTIFY_PATHS,
  routeUrl: reply => {
    const url = routeOptions(reply).url
    routeOfReply = routeOf = undefined // the request is not kept past its decision
    return url
  },
  takeOver: reply => { reply.hijack() },
  attach: (reply, info) => { reply.request.litefs = info }
}

function settle (core: LitefsCore<FastifyReply>, reply: FastifyReply, info: LitefsInfo, next: HookHandlerDoneFunction, upgrade: UpgradeSocket | undefined): void {
  switch (nextStep(info)) {
    case 'app':
      // A WebSocket handshake goes on to @fastify/websocket's route with what its client sent meanwhile.
      upgrade?.take()
      // The head of a write served here waits for its acknowledgement (the
      // cookie), whoever sends it: reply.send (onSend below), a hijacked or raw reply, a stream.
      if (info.local) deferHead(reply.raw, () => core.acknowledge(info, reply))
      return next()
    case 'answer': {
      const answer = info.answer as LitefsAnswer
      closingAnswer(reply.raw, answer)
      void reply.code(answer.statusCode).headers(answer.headers)
      if (answer instanceof Error) void reply.type('application/json; charset=utf-8')
      void reply.send(answer.body)
    }
  }
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The report route reached by the app: the plugin under a prefix, where reports do not go (fastify.ts, below). */
async function notTheirs (_request: unknown, reply: FastifyReply): Promise<FastifyReply> {
  return await reply.code(404).send()
}

/** Whether a route may serve a write on the primary: a method that writes, or reads made writes. */
function mayWrite (method: string | string[], setting: unknown, noAlwaysForward: boolean): boolean {
  if ([method].flat().some(m => !READS.has(m))) return true
  return (setting as { alwaysForward?: unknown } | undefined)?.alwaysForward === true || !noAlwaysForward
}

/**
 * reply.send, on a route that may write: the acknowledgement is awaited here,
 * before Fastify writes the head. Headers it adds go on at the head itself
 * (deferred-head.ts, decided by then), so they join whatever the app and later
 * hooks set; an answer in place of the app's replaces the payload, status and headers here.
 */
const acknowledged: onSendHookHandler = (_request, reply, payload, done) => {
  const held = deferredHead(reply.raw)
  if (held === undefined) return done(null, payload)
  const decided = held.decision()
  if (decided instanceof Promise) void decided.then(a => { sent(reply, a, payload, done) }) // never rejects
  else sent(reply, decided, payload, done)
}

/** onSend's end: the app's payload as it is, or the acknowledgement's answer in its place. */
function sent (reply: FastifyReply, a: Acknowledgement, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void {
  if (a.replace === undefined) return done(null, payload)
  const answer = a.replace
  deferredHead(reply.raw)?.release()
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
  const stream = payload as { destroy?: () => void } | null
  if (typeof stream?.destroy === 'function') stream.destroy() // a stream the app meant to send: never read now
  void reply.code(answer.statusCode).headers(answer.headers)
  if (answer instanceof LitefsHttpError) void reply.type('application/json; charset=utf-8')
  done(null, answer.body)
}

const plugin: FastifyPluginCallback<FastifyLitefsOptions> = (fastify, options, done) => {
  let core: LitefsCore<FastifyReply>
  try {
    core = new LitefsCore(options, hooks, fastify.log)
  } catch (err) {
    return done(err as Error) // `await app.register(…)` / `app.ready()` reject with it
  }

  // A route's setting is checked when the route is added: a typo must not
  // quietly forward writes a route meant to keep local, or the other way round.
  // A route that may serve a write here gets the onSend hook below; reads never
  // pay for it (whatever a route without it sends, the held head waits all the same).
  fastify.addHook('onRoute', route => {
    const setting: unknown = (route.config as { litefs?: unknown } | undefined)?.litefs
    if (setting !== false && mayWrite(route.method, setting, core.options.alwaysForward.empty)) {
      route.onSend = [acknowledged, ...[route.onSend ?? []].flat()]
    }
    if (setting === undefined || setting === false) return
    const where = `${String(route.method)} ${route.url}`
    if (typeof setting !== 'object' || setting === null || Array.isArray(setting)) {
      throw new LitefsOptionsError(`litefs-proxy: route ${where}: config.litefs must be false or { alwaysForward?: true|false, durability?: true|false }, got ${JSON.stringify(setting)}`)
    }
    for (const [key, value] of Object.entries(setting)) {
      if (key !== 'alwaysForward' && key !== 'durability') throw new LitefsOptionsError(`litefs-proxy: route ${where}: unknown key config.litefs.${key} (the keys are alwaysForward and durability)`)
      if (typeof value !== 'boolean') throw new LitefsOptionsError(`litefs-proxy: route ${where}: config.litefs.${key} must be true or false, got ${JSON.stringify(value)}`)
    }
  })

  // A replica reports to the primary from the start (peer-link.ts): it needs this server's port before any request.
  fastify.server.on('listening', () => { core.listening(fastify.server.address()) })

  fastify.decorate('litefs', core)
  fastify.decorateRequest('litefs', null)

  // onRequest runs before the body is read: a held read costs no parsing, and a
  // write can still be streamed to the primary untouched.
  // A WebSocket handshake @fastify/websocket routes is decided the same way, its raw connection watched while held.
  fastify.addHook('onRequest', (request, reply, next) => {
    const upgrade = fastifyUpgrade(request.raw, reply.raw)
    const decided = core.decide(reply)
    if (decided instanceof Promise) {
      decided.then(info => settle(core, reply, info, next, upgrade), next)
    } else {
      settle(core, reply, decided, next, upgrade)
    }
  })

  // Replicas' reports (peerSecret), two a second from each: a route of their own
  // whose log level is warn, so Fastify's "incoming request" and "request
  // completed" lines for them stay out of an info log (walk 5: most of it).
  // onRequest answers them; registered under a prefix, the route is never theirs.
  if (core.options.durability.secrets.length > 0) {
    fastify.route({ method: 'POST', url: PEER_PATH, logLevel: 'warn', handler: notTheirs })
  }

  // The health check is a route, so the router matches it as it matches any
  // path (its trailing-slash and case rules); onRequest answers it.
  const health = core.options.healthPath
  if (health !== false) {
    fastify.get(health, async (_request, reply) => {
      const answer = core.health()
      return await reply.code(answer.statusCode).headers(answer.headers).send(answer.body)
    })
  }

  // preClose runs before the server stops taking requests and before Fastify
  // waits for those in flight: held requests are answered now, not at their timeout.
  // With forceCloseConnections Fastify cuts every connection right after: let
  // those 503s leave first (bounded: close must never hang on a client).
  fastify.addHook('preClose', next => {
    // Fastify answers 503 to every request from here, replicas' reports included; one on a
    // connection still queued when the listener closes would be reset unread instead (accept-queued.ts).
    // Our tunnels end here, as @fastify/websocket's preClose ends the app's sockets: Fastify's
    // server.close() runs before any onClose hook, and would wait for them.
    core.endTunnels()
    whenAnswered(core.drain(true)).then(acceptQueued).then(() => next(), next)
  })

  fastify.addHook('onClose', (_instance, next) => {
    core.close().then(() => next(), next)
  })

  done()
}

/** The Fastify plugin: `app.register(litefs, { db: 'app.db', mount: '/litefs' })`. */
export const litefs = fp(plugin, { fastify: '5.x', name: 'litefs-proxy' })
export default litefs
