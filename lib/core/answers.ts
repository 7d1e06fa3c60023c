import { LitefsHttpError } from './errors.js'
import type { Logger } from './logger.js'
import type { LitefsInfo } from './request.js'

// Every answer litefs-proxy gives instead of the app's, in one table: its
// status, whether it tells the client to come back (`Retry-After: 1`: nothing
// was applied and a later try can succeed), and, for the answers the core
// itself decides, the log line that goes with it. The message, which carries
// the specifics (a timeout, an origin), is written where the answer is
// decided; the forwarder (forward.ts) and the sidecar log their own.

interface Spec {
  status: number
  retryAfter: boolean
  /** The warn line logged with the answer, for answers the core decides (answer()). */
  line?: string
}

export const ANSWERS = {
  /** A read's TXID was not reached within `readTimeout`. Logged by the read path before it decides. */
  LITEFS_READ_TIMEOUT: { status: 504, retryAfter: false },
  /** No primary within `primaryRedirectTimeout` (or the primary could not be reached for that long). */
  LITEFS_NO_PRIMARY: { status: 503, retryAfter: true, line: 'no primary available for a write' },
  /**
   * `api: false` without `role`: no `.primary` in the mount, so this node is the
   * primary or a replica cut off from it, and nothing says which. Held as a
   * write with no primary, then this (a cut-off replica may find its primary).
   */
  LITEFS_ROLE_UNKNOWN: { status: 503, retryAfter: true, line: 'this node\'s role is unknown (api: false and no "role" given); a write was not served' },
  /** LiteFS says this node is primary, but Consul did not confirm its lease in time (the fence): nothing was applied. */
  LITEFS_LEASE_UNCONFIRMED: { status: 503, retryAfter: true, line: 'this primary\'s lease is not confirmed by Consul; a write was not served' },
  /** LiteFS on this node does not answer (stream lost, mount dead): nothing was applied. */
  LITEFS_UNAVAILABLE: { status: 503, retryAfter: true, line: 'LiteFS on this node is unavailable' },
  /** LiteFS's API and the mount are two nodes' (a misconfiguration): no write is served or forwarded. */
  LITEFS_MISMATCH: { status: 503, retryAfter: false, line: 'LiteFS\'s API and mount are two different nodes\'; a write was refused' },
  /** A request this node forwarded came straight back to it: `primaryUrl` leads here, not to the primary (loop-guard.ts). */
  LITEFS_FORWARD_LOOP: { status: 508, retryAfter: false, line: 'a request this node forwarded to the primary came back to it; answered 508' },
  /** This node became primary mid-forward and cannot hand the body to its own app. */
  LITEFS_PRIMARY_CHANGED: { status: 503, retryAfter: true, line: 'a write whose body went to the old primary cannot be replayed here; answered 503' },
  /** `maxWaiting` requests are held already. */
  LITEFS_OVERLOADED: { status: 503, retryAfter: true, line: 'too many requests held; refused one at once' },
  /** The app is closing while the request was held. Not logged: closing says so itself. */
  LITEFS_CLOSED: { status: 503, retryAfter: true },
  /** Forwarding failed after the request may have reached the primary (or before, for a reason no retry mends). */
  LITEFS_FORWARD_FAILED: { status: 502, retryAfter: false },
  /**
   * A write ran here as primary and its app answered success, but by the time
   * its commit was confirmed this node had lost LiteFS or the lease: the
   * commit may be rolled back or discarded. Never a blind retry.
   */
  LITEFS_OUTCOME_UNKNOWN: { status: 502, retryAfter: false, line: 'a write ran here, but LiteFS or the lease was lost before its commit was confirmed; its success was not sent' },
  /** The primary's (or the app's, behind `serve`) answer head is larger than browsers accept (256 KiB). */
  LITEFS_ANSWER_TOO_LARGE: { status: 502, retryAfter: false },
  /** The primary sent no response head within `forwardTimeout`. */
  LITEFS_FORWARD_TIMEOUT: { status: 504, retryAfter: false },
  /** A forwarded body is larger than `forwardBodyLimit`. */
  LITEFS_BODY_TOO_LARGE: { status: 413, retryAfter: false },
  /** A client forwarding an upload paused longer than `forwardTimeout`. */
  LITEFS_BODY_TIMEOUT: { status: 408, retryAfter: false },
  /** Something read the body before litefs-proxy could forward it (a body parser mounted first). */
  LITEFS_BODY_CONSUMED: { status: 500, retryAfter: false },
  /** Outside HTTP (`tokenAfterWrite`): no position can be read for the database. */
  LITEFS_NO_POSITION: { status: 500, retryAfter: false, line: 'no position for the database; is "db" the file the app writes?' },
  /** `serve`: a CONNECT request (a tunnel; sidecar/connect.ts). */
  LITEFS_CONNECT_UNSUPPORTED: { status: 501, retryAfter: false },
  /** A request target that names no path (`GET *`): nothing can be sent to `serve`'s app, nor a replica's write to the primary. */
  LITEFS_BAD_TARGET: { status: 400, retryAfter: false, line: 'refused a request whose target is not a path; nothing reached the app' },
  /** `serve --token-path`: a method that path does not take (it takes POST and GET). */
  LITEFS_METHOD_NOT_ALLOWED: { status: 405, retryAfter: false },
  /** `serve`: the app behind it refused connections for `targetRetry`. */
  LITEFS_TARGET_UNAVAILABLE: { status: 502, retryAfter: false },
  /** `serve`: the app behind it failed after the request may have reached it. */
  LITEFS_TARGET_FAILED: { status: 502, retryAfter: false },
  /**
   * `durability`: the write is committed on the primary, but not every
   * connected candidate reported it within `durabilityTimeout`. Not a 502–504
   * and no Retry-After: a retry would apply it twice. The cookie is set.
   */
  LITEFS_NOT_REPLICATED: { status: 500, retryAfter: false, line: 'a write committed here was not reported by every candidate in time; answered 500' },
  /** A peer report not signed with `peerSecret` (or signed too long ago). */
  LITEFS_PEER_REFUSED: { status: 403, retryAfter: false, line: 'refused a peer report: bad or missing signature' },
  /** A signed peer report that is not one. */
  LITEFS_BAD_REPORT: { status: 400, retryAfter: false, line: 'refused a peer report: not a report' },
  /** `serve`: a request Node's HTTP parser refuses (sidecar/client-error.ts). */
  LITEFS_BAD_REQUEST: { status: 400, retryAfter: false },
  /** `serve`: a request not received in full within its server's deadlines. */
  LITEFS_REQUEST_TIMEOUT: { status: 408, retryAfter: false },
  /** `serve`: a request head larger than Node's server reads. */
  LITEFS_HEAD_TOO_LARGE: { status: 431, retryAfter: false },
  /** http adapter: an unexpected failure. */
  LITEFS_INTERNAL: { status: 500, retryAfter: false },
  /** http adapter: the app's handler threw or its promise rejected (handler-failure.ts). */
  LITEFS_HANDLER_FAILED: { status: 500, retryAfter: false }
} as const satisfies Record<string, Spec>

export type AnswerCode = keyof typeof ANSWERS

const RETRY = { 'retry-after': '1' }

/** The error answer `code` with `message`: status and headers from the table. */
export function litefsError (code: AnswerCode, message: string): LitefsHttpError {
  const spec: Spec = ANSWERS[code]
  return new LitefsHttpError(spec.status, code, message, spec.retryAfter ? { ...RETRY } : {})
}

/** The error `code` with `message`, its table line logged (with `details`): for answers and for errors thrown outside HTTP. */
export function failure (log: Logger, code: AnswerCode, message: string, details: object): LitefsHttpError {
  const line: string | undefined = (ANSWERS[code] as Spec).line
  if (line !== undefined) log.warn(details, `litefs-proxy: ${line}`)
  return litefsError(code, message)
}

/** Answer `info` with `code` and log the table's line for it (with `details`). */
export function answer (info: LitefsInfo, log: Logger, code: AnswerCode, message: string, details: object): LitefsInfo {
  info.answer = failure(log, code, message, details)
  return info
}
