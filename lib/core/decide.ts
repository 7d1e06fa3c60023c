import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { CoreContext } from './context.js'
import { healthFor } from './health.js'
import { ended } from './hold.js'
import { decided } from './last-answer.js'
import { receiveReport } from './peer-endpoint.js'
import { read } from './read-path.js'
import type { LitefsInfo } from './request.js'
import { write } from './write-path.js'

// The order of decisions for each request (DESIGN §3), and nothing else:
// what a request is (classify.ts), then its path. Each path is a module of its
// own: reads (read-path.ts), writes (write-path.ts), the health check
// (health.ts), peers' reports (peer-endpoint.ts); passthrough goes to the app untouched. After it, the adapter
// runs the app, sends `info.answer`, or does nothing (nextStep in request.ts),
// and a write served here gets its cookie on the head (write-cookie.ts).

/**
 * Decide a request before the app sees it. Synchronous on the fast paths; a
 * Promise when the request is held or forwarded.
 */
export function decide<C> (core: CoreContext<C>, c: C): LitefsInfo | Promise<LitefsInfo> {
  const hooks = core.hooks
  const req = hooks.req(c)
  // The server whose idle connections closing resets, and the HTTP/2 sessions it closes (lifecycle.ts).
  core.lifecycle.server = (req.socket as Socket & { server?: Server }).server
  // This server's port, for the primary's URL (the probe, replica reports): known from any request.
  if (core.probePort === 0) core.probePort = req.socket.localPort as number
  if (req.httpVersionMajor === 2) core.lifecycle.sessions.arrived(req, hooks.res(c))
  // A server's IncomingMessage always has a method (the type also covers client responses).
  const kind = core.classifier.classify(req.method as string, hooks.url(c), hooks.route(c), hooks.pathRules(c), hooks.routeUrl(c))
  const info: LitefsInfo = { kind, role: core.state.role, local: false }
  hooks.attach(c, info)
  // Closing: this answer is its connection's last; one that would never be sent is not run (last-answer.ts).
  if (!decided(req, hooks.res(c), core.lifecycle.closing)) return ended(core, info, 'closed', hooks.log(c))
  switch (kind) {
    case 'passthrough': return info
    case 'health': return healthFor(core, req, info)
    case 'peer': return receiveReport(core, c, req, info)
    case 'read': return read(core, c, req, info)
    case 'write': return write(core, c, req, info)
  }
}
