import type { ServerResponse } from 'node:http'
import { failure, litefsError } from '../core/answers.js'
import type { Acknowledgement } from '../core/acknowledgement.js'
import { deferredHead, type DeferredHead } from '../core/deferred-head.js'
import { PEER_PATH } from '../core/durability-options.js'
import { markRoute } from '../core/node-adapter.js'
import { fail } from '../core/option-checks.js'
import { DECODED, pathOf } from '../core/path-match.js'
import type { LitefsCore } from '../core/proxy.js'
import { sendAnswer } from '../core/send-answer.js'
import type { Logger } from '../core/logger.js'
import { dbLabel } from '../core/db-missing.js'
import type { LitefsInfo } from '../core/request.js'

// `serve --token-path`: writers and readers outside HTTP (issue 22 item 4) for
// an app that is not Node — a Celery job, a management command, a queue
// consumer — what in-process apps have in tokenAfterWrite() and
// waitForToken() (core/outside-http.ts), over HTTP, answered by serve itself.
// Nothing here holds, forwards or reads a position: the request is decided as
// any other (core/decide.ts), and only the app's part is played here.
//
// POST is a write. On a replica the core forwards it to the primary's serve
// (which must have the same --token-path); on the primary it is served here,
// and its token is the write path's own acknowledgement (write-cookie.ts,
// via the deferred head): a `-pos` read that starts after the request arrived,
// shared with the writes around it, the same value its cookie and token
// header carry — so it includes the job's commit made before the call. An
// acknowledgement that replaces the answer (LiteFS or the lease lost: the
// position cannot be vouched for) is sent as the write path sends it.
//
// GET (and HEAD) is a read: the core holds it until this node has the token
// it carries (cookie or token header), then it is answered here with what the
// wait ended in. Past --txid-timeout a waiter gets what a held read gets,
// except that it is never forwarded: 'primary' would have the primary say it
// has the token, while the job reads this node's database; so a 504, as
// waitForToken() throws. 'stale' is 200 with `"stale": true` (the operator
// chose to go on with maybe-stale data over an error; the job sees which).

/** What serve's token path answers; other methods get 405. */
const ALLOW = 'GET, HEAD, POST'

export interface TokenEndpoint {
  /** The request is for the token path: true when it was refused here (a method it does not take), else marked as this endpoint's. */
  refused: (res: ServerResponse) => boolean
  /** This request (decided by the core, to be served here) is the endpoint's. */
  claims: (res: ServerResponse) => boolean
  /** Answer it: the app's part, played by serve. */
  answer: (res: ServerResponse) => void
}

/** The token endpoint at `path`, checked against the paths the core answers or hands the app untouched. */
export function tokenEndpoint (core: LitefsCore<ServerResponse>, path: string, log: Logger): TokenEndpoint {
  const o = core.options
  if (!path.startsWith('/') || /[?#\s*]/.test(path)) fail('tokenPath', 'a path starting with / (no query, fragment, space or *)', path)
  // Decided otherwise by the core, the endpoint would answer without the hold or the write it stands for.
  const taken = path === o.healthPath ? 'the health check\'s path ("healthPath")'
    : path === PEER_PATH ? 'the peers\' endpoint'
      : o.passthrough.matches(path, DECODED) ? 'a "passthrough" path (handed to the app untouched)'
        : o.alwaysForward.matches(path, DECODED) ? 'an "alwaysForward" path (its reads are writes)'
          : undefined
  if (taken !== undefined) fail('tokenPath', `a path of its own, not ${taken}`, path)
  const ours = new WeakSet<ServerResponse>()
  return {
    refused: res => {
      const req = res.req
      if (pathOf(req.url as string) !== path) return false
      if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'POST') {
        ours.add(res)
        // Never forwarded past the timeout (see above): the answer is about this node.
        if (req.method !== 'POST') markRoute(req, { localRead: true })
        return false
      }
      const message = `${path} (--token-path) takes POST (a token after a write) and GET (wait for a token), not ${String(req.method)}`
      log.info({ method: req.method, path: req.url, code: 'LITEFS_METHOD_NOT_ALLOWED' }, `litefs-proxy: ${message}`)
      const e = litefsError('LITEFS_METHOD_NOT_ALLOWED', message)
      e.headers.allow = ALLOW
      sendAnswer(res, e)
      return true
    },
    claims: res => ours.has(res),
    answer: res => {
      const info = res.req.litefs as LitefsInfo // decided: runNode set it
      if (info.kind === 'write') {
        // Served here as primary (a write elsewhere was forwarded or answered by the core): its head is deferred.
        const held = deferredHead(res) as DeferredHead
        void Promise.resolve(held.decision()).then(ack => { afterWrite(core, res, ack, log) })
        return
      }
      json(res, 200, {
        reached: info.stale !== true,
        txid: info.awaitedTxid ?? null,
        waitedMs: Math.round(info.waitedMs ?? 0),
        ...(info.stale === true ? { stale: true } : {}),
        ...(info.unreachable === true ? { unreachable: true } : {})
      })
    }
  }
}

/** The write's acknowledgement is decided: its token in the body, or the answer the write path gives instead. */
function afterWrite (core: LitefsCore<ServerResponse>, res: ServerResponse, ack: Acknowledgement, log: Logger): void {
  // Replaced (the commit cannot be confirmed): the deferred head sends the write path's answer, not this one.
  if (ack.replace !== undefined) return void res.end()
  const { name } = core.options.cookie
  const cookie = ack.headers.find(([h, v]) => h === 'set-cookie' && v.startsWith(`${name}=`))
  if (cookie === undefined) {
    // The write path's answer would go without a cookie (no -pos, or TXID 0: nothing committed); a job asked for a token.
    const db = dbLabel(core.options)
    return sendAnswer(res, failure(log, 'LITEFS_NO_POSITION', `no position for ${db} in ${core.options.mount} after the write (no -pos file, or nothing committed yet)`, { db, mount: core.options.mount }))
  }
  const token = cookie[1].slice(name.length + 1, cookie[1].indexOf(';'))
  json(res, 200, { token, txid: (res.req.litefs as LitefsInfo).setTxid })
}

function json (res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}
