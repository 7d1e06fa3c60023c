import type { IncomingMessage } from 'node:http'

// Which requests may be sent again after their bytes may have reached the
// server (the primary's app, or the app behind `serve`): those safe to send
// twice. A server closes an idle kept-alive connection on its own clock (Gunicorn
// after 2 s, Node after 5 s); a request written on it at that instant meets the
// close, and nothing tells whether the server read it. A reset (RST) says it did
// not, and any request is sent again (forward.ts); a plain close (FIN) does not.
// Then only a request safe to send twice is: a read by its method (GET, HEAD,
// OPTIONS, TRACE) that litefs-proxy does not treat as a write (an
// `alwaysForward` path writes), or any request carrying an `Idempotency-Key`
// (IETF httpapi draft; `X-Idempotency-Key` too), whose client says the server
// applies it once. PUT and DELETE are idempotent by RFC 9110, but what an app
// makes of them is its own: without the key they are never sent twice (as Go's
// HTTP client, LiteFS's proxy's, decides). Its body must still be whole at hand
// (attempt-body.ts keeps up to 64 KiB). Resending is bounded (RESENDS).

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/** How many times one request is sent again after a close that may have followed its reading. */
export const RESENDS = 2

/** Whether `req` may be sent again after it may have reached the server; `write`: litefs-proxy treats it as a write. */
export function safeToResend (req: IncomingMessage, write: boolean): boolean {
  if (req.headers['idempotency-key'] !== undefined || req.headers['x-idempotency-key'] !== undefined) return true
  return !write && SAFE.has(req.method as string)
}
