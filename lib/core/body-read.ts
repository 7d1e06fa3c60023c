import type { IncomingMessage } from 'node:http'
import type { CoreContext } from './context.js'

// A body parser (or any body reader) mounted before litefs-proxy: a write that
// lands on a replica cannot be forwarded (its body is gone: 500
// LITEFS_BODY_CONSUMED, forward.ts). On the primary the write is served and
// nothing seems wrong — so a one-node test never shows it. It is said on the
// primary too, once per app, the moment it is seen: the body was read before
// the middleware ran.

/** Something read this request's body before litefs-proxy saw it. */
export function bodyReadBefore (req: IncomingMessage): boolean {
  return req.readableDidRead || req.readableEnded
}

/** Say it once per app (each write on a replica still gets its 500); whether it was said now. */
export function sayBodyConsumed<C> (core: CoreContext<C>, c: C): boolean {
  if (core.saidBodyConsumed) return false
  core.saidBodyConsumed = true
  core.hooks.log(c).error({ path: core.hooks.url(c), code: 'LITEFS_BODY_CONSUMED' },
    'litefs-proxy: a body parser (or other body reader) runs before litefs-proxy: writes landing on replicas cannot be forwarded (500 LITEFS_BODY_CONSUMED). Mount litefs-proxy first')
  return true
}
