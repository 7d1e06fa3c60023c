import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2Session } from 'node:http2'

// The HTTP/2 sessions requests arrive on, so that a drain can close them. On
// HTTP/1.1 a closing server closes its idle connections itself; an HTTP/2
// server does not close its sessions before Node 24, and a replica's forwarder
// keeps its session to an h2c primary open (as this node keeps one to its own
// server after sending it a kept body): the primary's close then waited for
// them, up to Fastify's http2SessionTimeout (72 s) — past a SIGTERM's grace
// period. So draining closes each session gracefully (GOAWAY: the client opens
// a new connection for its next request) once no request on it is in flight: a
// client told to go away mid-request may fail that request (undici does).

interface Tracked { inFlight: number }

export class Http2Sessions {
  private readonly sessions = new Map<Http2Session, Tracked>()
  private draining = false

  /** A request arrived: if over HTTP/2, count it on its session until its response closes. */
  arrived (req: IncomingMessage, res: ServerResponse): void {
    // An HTTP/2 request (node:http2's compatibility API) belongs to a stream of a session.
    const session = (req as unknown as { stream: { session: Http2Session } }).stream.session
    let tracked = this.sessions.get(session)
    if (tracked === undefined) {
      tracked = { inFlight: 0 }
      this.sessions.set(session, tracked)
      session.once('close', () => this.sessions.delete(session))
    }
    tracked.inFlight++
    const entry = tracked
    res.once('close', () => {
      entry.inFlight--
      if (this.draining && entry.inFlight === 0) session.close()
    })
  }

  /** Close every session with nothing in flight now; the others once their last request is answered. */
  drain (): void {
    this.draining = true
    for (const [session, tracked] of this.sessions) {
      if (tracked.inFlight === 0) session.close()
    }
  }
}
