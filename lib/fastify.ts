import fp from 'fastify-plugin'
import type { FastifyPluginCallback, FastifyReply, HookHandlerDoneFunction } from 'fastify'
import { LitefsCore, nextStep, type AdapterHooks, type LitefsAnswer, type LitefsInfo } from './core/proxy.js'
import type { LitefsOptions, LitefsRouteOptions } from './core/options.js'

export type { LitefsAnswer, LitefsInfo, LitefsOptions, LitefsRouteOptions }
export { LitefsHttpError } from './core/errors.js'
export { LitefsCore } from './core/proxy.js'
export { LitefsOptionsError } from './core/options.js'

/** Options of the Fastify plugin: the core's (see LitefsOptions). */
export interface FastifyLitefsOptions extends LitefsOptions {}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** litefs-proxy for this route: `false` hands it to the handler untouched (passthrough). */
    litefs?: LitefsRouteOptions | false
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

// Fastify's reply reaches everything the core asks about (reply.request, reply.raw).
const hooks: AdapterHooks<FastifyReply> = {
  req: reply => reply.request.raw,
  res: reply => reply.raw,
  url: reply => reply.request.url,
  route: reply => reply.request.routeOptions.config.litefs,
  log: reply => reply.log,
  secure: reply => reply.request.protocol === 'https', // honours trustProxy
  bodyLimit: reply => reply.request.routeOptions.bodyLimit,
  takeOver: reply => { reply.hijack() },
  attach: (reply, info) => { reply.request.litefs = info }
}

function settle (reply: FastifyReply, info: LitefsInfo, next: HookHandlerDoneFunction): void {
  switch (nextStep(info)) {
    case 'app': return next()
    case 'answer': {
      const answer = info.answer as LitefsAnswer
      void reply.code(answer.statusCode).headers(answer.headers)
      if (answer instanceof Error) void reply.type('application/json; charset=utf-8')
      void reply.send(answer.body)
    }
  }
}

const plugin: FastifyPluginCallback<FastifyLitefsOptions> = (fastify, options, done) => {
  let core: LitefsCore<FastifyReply>
  try {
    core = new LitefsCore(options, hooks, fastify.log)
  } catch (err) {
    return done(err as Error) // `await app.register(…)` / `app.ready()` reject with it
  }

  fastify.decorate('litefs', core)
  fastify.decorateRequest('litefs', null)

  // onRequest runs before the body is read: a held read costs no parsing, and a
  // write can still be streamed to the primary untouched.
  fastify.addHook('onRequest', (_request, reply, next) => {
    const decided = core.decide(reply)
    if (decided instanceof Promise) {
      decided.then(info => settle(reply, info, next), next)
    } else {
      settle(reply, decided, next)
    }
  })

  // onSend runs after the handler committed: the position read from here on
  // includes its write. One read serves every write answered in the same turn.
  fastify.addHook('onSend', (request, reply, payload, next) => {
    const info = request.litefs
    if (info === null || !info.local) return next(null, payload)
    core.cookieSoon(info, reply, cookie => {
      if (cookie !== undefined) {
        void reply.header('set-cookie', cookie) // appends: the app's own cookies stay
        request.log.debug({ txid: info.setTxid }, 'litefs-proxy: set TXID cookie')
      }
      next(null, payload)
    })
  })

  fastify.addHook('onClose', (_instance, next) => {
    core.close().then(() => next(), next)
  })

  done()
}

/** The Fastify plugin: `app.register(litefs, { db: 'app.db', mount: '/litefs' })`. */
export const litefs = fp(plugin, { fastify: '5.x', name: 'litefs-proxy' })
export default litefs
