import fp from 'fastify-plugin'
import type { FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { LitefsCore, type LitefsInfo } from './core/proxy.js'
import type { LitefsOptions, LitefsRouteOptions } from './core/options.js'

export type { LitefsInfo, LitefsOptions, LitefsRouteOptions }
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
    litefs: LitefsCore
  }
  interface FastifyRequest {
    /** What litefs-proxy did with this request; null before its onRequest hook ran. */
    litefs: LitefsInfo | null
  }
}

function answer (reply: FastifyReply, info: LitefsInfo): void {
  const err = info.error as NonNullable<LitefsInfo['error']>
  reply.code(err.statusCode).headers(err.headers).type('application/json; charset=utf-8').send(err.body)
}

const plugin: FastifyPluginCallback<FastifyLitefsOptions> = (fastify, options, done) => {
  let core: LitefsCore
  try {
    core = new LitefsCore(options, fastify.log)
  } catch (err) {
    return done(err as Error) // `await app.register(…)` / `app.ready()` reject with it
  }

  const settle = (request: FastifyRequest, reply: FastifyReply, info: LitefsInfo, next: HookHandlerDoneFunction): void => {
    request.litefs = info
    if (info.aborted === true) return // the client is gone; there is nobody to answer
    if (info.error !== undefined) return answer(reply, info)
    next()
  }

  fastify.decorate('litefs', core)
  fastify.decorateRequest('litefs', null)

  if (core.options.healthPath !== false) {
    fastify.get(core.options.healthPath, { config: { litefs: false }, logLevel: 'warn' }, (_request, reply) => {
      const { statusCode, body } = core.health()
      void reply.code(statusCode).type('application/json; charset=utf-8').send(body)
    })
  }

  // onRequest runs before the body is read: a held read costs no parsing, and a
  // write can still be streamed elsewhere untouched.
  fastify.addHook('onRequest', (request, reply, next) => {
    const decided = core.decide(request.raw, reply.raw, request.routeOptions.config.litefs, request.log)
    if (decided instanceof Promise) {
      decided.then(info => settle(request, reply, info, next), next)
    } else {
      settle(request, reply, decided, next)
    }
  })

  // onSend runs after the handler committed: the position read now includes its write.
  fastify.addHook('onSend', (request, reply, payload, next) => {
    const info = request.litefs
    if (info !== null) {
      const cookie = core.cookie(info, request.protocol === 'https')
      if (cookie !== undefined) {
        void reply.header('set-cookie', cookie) // appends: the app's own cookies stay
        request.log.debug({ txid: info.setTxid }, 'litefs-proxy: set TXID cookie')
      }
    }
    next(null, payload)
  })

  fastify.addHook('onClose', (_instance, next) => {
    core.close().then(() => next(), next)
  })

  done()
}

/** The Fastify plugin: `app.register(litefs, { db: 'app.db', mount: '/litefs' })`. */
export const litefs = fp(plugin, { fastify: '5.x', name: 'litefs-proxy' })
export default litefs
