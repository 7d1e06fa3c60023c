import { createServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2'
import type { Logger } from '../core/logger.js'

// `serve --protocol h2c`: its own server speaks HTTP/2 without TLS, by prior
// knowledge (what a balancer sending h2c to its backends needs, such as Fly's
// h2_backend). Node's HTTP/2 server has none of the HTTP/1.1 server's limits
// (requestTimeout, headersTimeout, keepAliveTimeout) nor its
// closeIdleConnections()/closeAllConnections(), and before Node 24 its close()
// waits for every session, idle ones included: this keeps the sessions so that
// an idle one is closed after --idle-timeout if given, a close closes each once no
// stream is in flight on it (GOAWAY: its client opens a new connection for its
// next request), and a drain past its time cuts them all.

export interface H2cServer {
  readonly server: Http2Server
  /** Close every session with no stream in flight now, and each other one when its last stream closes. */
  closeIdle: () => void
  /** Cut every session (a drain past its time). */
  closeAll: () => void
}

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void

interface Tracked { streams: number, idle?: NodeJS.Timeout }

/** `idleTimeout`: ms a session with no stream in flight stays open (0: as long as its client keeps it); `writeTimeout`: socket inactivity (0: none). */
export function h2cServer (limits: { idleTimeout: number, writeTimeout: number }, log: Logger, handler: Handler): H2cServer {
  const sessions = new Map<Http2Session, Tracked>()
  let closing = false
  const server = createServer({}, handler)
  // As the HTTP/1.1 server's `timeout`: a session silent that long is destroyed (Node's default with no 'timeout' listener).
  server.setTimeout(limits.writeTimeout)
  const idleFor = (session: Http2Session, t: Tracked): void => {
    if (closing) { session.close(); return }
    if (limits.idleTimeout > 0) t.idle = setTimeout(() => session.close(), limits.idleTimeout)
  }
  server.on('session', (session: Http2Session) => {
    const t: Tracked = { streams: 0 }
    sessions.set(session, t)
    idleFor(session, t)
    session.on('stream', stream => {
      clearTimeout(t.idle)
      t.streams++
      stream.once('close', () => { if (--t.streams === 0) idleFor(session, t) })
    })
    session.once('close', () => { clearTimeout(t.idle); sessions.delete(session) })
  })
  // A client that does not speak HTTP/2 by prior knowledge (an HTTP/1.1 balancer
  // or curl without --http2-prior-knowledge) gets its connection closed by
  // Node, with no answer it can read: said once, as the misconfiguration it is.
  let said = false
  server.on('sessionError', (err: Error & { code?: string }) => {
    if (said || !/bad client magic/i.test(err.message)) return
    said = true
    log.warn({ code: 'LITEFS_NOT_H2C' }, 'litefs-proxy: a client spoke HTTP/1.x to this serve, which speaks only h2c (--protocol h2c): its connection was closed unanswered; send it HTTP/2 by prior knowledge, or drop --protocol h2c')
  })
  return {
    server,
    closeIdle: () => {
      closing = true
      for (const [session, t] of sessions) if (t.streams === 0) session.close()
    },
    closeAll: () => { for (const session of sessions.keys()) session.destroy() }
  }
}
