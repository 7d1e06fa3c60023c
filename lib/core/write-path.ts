import { noUrlReason } from './primary-url.js'
import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import { answer } from './answers.js'
import { bodyReadBefore, sayBodyConsumed } from './body-read.js'
import type { CoreContext } from './context.js'
import { FORWARDED_HEADER, bodyTaken, forward } from './forward.js'
import { BUDGET_HEADER } from './hop-by-hop.js'
import { protocolFor } from './forward-agent.js'
import { LOOP_STATUS, MAX_FORWARDERS, cameBack, forwardedSince, forwarders, loopAnswer, markerOf } from './loop-guard.js'
import { ended, unavailable, waitFor } from './hold.js'
import { RETRY_EVERY } from './lifecycle.js'
import type { Logger } from './logger.js'
import { ownOrigin } from './own-origin.js'
import { originForm, sendable } from './path-match.js'
import { RESENDS, safeToResend } from './resend.js'
import { tunnel } from './tunnel.js'
import { upgradeOf } from './upgrade-socket.js'
import type { LitefsInfo } from './request.js'

// A write (DESIGN §3.5–3.8): served here while this node is the primary (the
// adapter then puts the cookie on its answer: write-cookie.ts); elsewhere,
// streamed to the primary (forward.ts) or handed to Fly.io's edge, and held
// while no primary is known (failover) until `primaryRedirectTimeout`. A
// connection refused is tried again within that window; a request whose bytes
// may have reached a primary never is. A request another node forwarded
// (the loop guard's marker) applied nothing on the way: a node that is no
// longer primary sends it on to the primary it knows now, once — a request is
// forwarded by at most MAX_FORWARDERS nodes, so never in a circle, and one
// that comes straight back is answered at once (loop-guard.ts). A
// WebSocket handshake that arrived as an upgrade is tunnelled (tunnel.ts)
// where any other request is forwarded.

/** The share of a forwarder's wait a hold here may take: the rest is for the answer to travel back. */
const BUDGET_SHARE = 0.9

/**
 * How long (ms) a write may be held here for a primary: `primaryRedirectTimeout`,
 * or less for a request another node forwarded that waits less for its answer
 * (BUDGET_HEADER), so it gets this node's 503 rather than its own 504.
 */
function holdLimit (redirectTimeout: number, req: IncomingMessage): number {
  const budget = req.headers[FORWARDED_HEADER] === undefined ? undefined : req.headers[BUDGET_HEADER]
  if (typeof budget !== 'string' || !/^\d{1,10}$/.test(budget)) return redirectTimeout
  return Math.min(redirectTimeout, Math.floor(Number(budget) * BUDGET_SHARE))
}

export function write<C> (core: CoreContext<C>, c: C, req: IncomingMessage, info: LitefsInfo): LitefsInfo | Promise<LitefsInfo> {
  const state = core.state
  state.refresh()
  info.role = state.role
  if (state.writable) {
    info.local = true
    if (bodyReadBefore(req)) sayBodyConsumed(core, c) // harmless here, fatal on a replica: said now
    return info
  }
  // LiteFS's API and the mount are two nodes' (litefs-node.ts): no write can be right here.
  if (state.mismatch !== undefined) return answer(info, core.hooks.log(c), 'LITEFS_MISMATCH', `${state.mismatch}; nothing was applied`, { mount: core.options.mount, api: core.options.api })
  const holdMs = holdLimit(core.options.primaryRedirectTimeout, req)
  const via = req.headers[FORWARDED_HEADER]
  // Sent here by this very node: `primaryUrl` leads back (loop-guard.ts).
  if (via !== undefined && cameBack(via, core.nodeName)) return loopAnswer(core, c, info)
  if (via !== undefined && forwarders(via) >= MAX_FORWARDERS) return holdForPrimaryRole(core, c, info, holdMs)
  return elsewhere(core, c, info, holdMs)
}

/**
 * Send a request to the primary (stream it, or ask Fly.io to replay it),
 * holding it while no primary is known, for up to `holdMs`. Also what a read
 * that timed out does with `readTimeoutAction: 'primary'`.
 */
export async function elsewhere<C> (core: CoreContext<C>, c: C, info: LitefsInfo, holdMs: number): Promise<LitefsInfo> {
  const { state, hooks, options } = core
  const req = hooks.req(c)
  const res = hooks.res(c)
  const log = hooks.log(c)
  const started = performance.now()
  const deadline = started + holdMs
  const resendable = safeToResend(req, info.kind === 'write')
  // In origin form, as the primary's router routes it: an absolute-form target's scheme is undici's to check, not the client's to choose.
  const path = originForm(hooks.url(c))
  // `POST *`: no path to ask the primary for, and the client's error (as `serve` answers it: request-target.ts).
  if (options.forward === 'http' && !sendable(path)) {
    return answer(info, log, 'LITEFS_BAD_TARGET', `${JSON.stringify(path)} is not a request target litefs-proxy can send the primary: a path starting with /; nothing was applied`, { method: req.method, target: path, code: 'LITEFS_BAD_TARGET' })
  }
  let resends = 0
  for (;;) {
    state.refresh()
    info.role = state.role
    let origin: string
    let protocol = protocolFor(options.forwardProtocol, req)
    // Not this node's own server (a body kept across a promotion): what reaching it says is about the primary.
    const toPrimary = !state.writable
    if (!toPrimary) {
      info.heldMs = performance.now() - started
      if (!bodyTaken(req)) {
        // Promoted while the request waited: serve it here.
        info.local = info.kind === 'write'
        return info
      }
      // An attempt to the old primary read the body before that primary
      // reset it unread, so the app here would wait for a body already gone.
      // The kept copy goes to this node's own server, as to any primary.
      const own = ownOrigin(req)
      if (own === undefined) {
        return answer(info, log, 'LITEFS_PRIMARY_CHANGED', 'this node became the primary while the write was being forwarded; nothing was applied', { role: state.role })
      }
      origin = own
      protocol = protocolFor(undefined, req) // this node's own server speaks what it spoke for this request
    } else {
      const primary = state.primaryHostname
      // No primary to send it to (failover; or this primary's lease not confirmed: the fence).
      if (primary === undefined) {
        const result = await waitFor(core, c, 'primary', undefined, done => state.waitForPrimary(Math.max(0, deadline - performance.now()), done))
        if (result === 'timeout') return noPrimary(core, info, log, holdMs)
        if (result !== 'ready') return ended(core, info, result, log)
        continue
      }
      info.heldMs = performance.now() - started
      if (options.forward === 'fly-replay') {
        info.answer = { statusCode: 200, headers: { 'fly-replay': `instance=${primary}` }, body: '' }
        log.debug({ primary }, 'litefs-proxy: asking Fly.io to replay the request on the primary')
        return info
      }
      try {
        origin = options.primaryOrigin(primary, req.socket.localPort as number)
      } catch (err) {
        return noPrimaryUrl(core, info, log, primary, noUrlReason(err, primary))
      }
    }
    // The app closed (its forwarders with it): nothing was sent, and another node can take it.
    if (core.lifecycle.closing) return ended(core, info, 'closed', log)
    // A primary that said it is closing gets nothing until it is done (primary-closing.ts); LiteFS may name another meanwhile.
    if (toPrimary && !core.closingPrimaries.none && core.closingPrimaries.has(origin)) {
      await core.closingPrimaries.ask(origin)
      if (core.closingPrimaries.has(origin)) {
        if (performance.now() + RETRY_EVERY > deadline) return noPrimary(core, info, log, holdMs)
        log.debug({ primary: origin }, 'litefs-proxy: the primary is closing; holding the write')
        await core.lifecycle.pause(c)
      }
      if (core.lifecycle.closing) return ended(core, info, 'closed', log)
      continue
    }
    const elapsed = core.observer.forwardStarted(req, origin, res)
    // A WebSocket handshake that arrived as an upgrade goes to the primary as one (tunnel.ts).
    const upgrade = upgradeOf(req)
    const result = upgrade !== undefined
      ? await tunnel({ req, res, upgrade, path, origin, view: hooks.view(c), marker: markerOf(req, core.nodeName), timeout: options.forwardTimeout, label: `the primary at ${origin}`, takeOver: () => hooks.takeOver(c), tunnels: core.lifecycle.tunnels })
      : await forward({
          req,
          res,
          path,
          origin,
          view: hooks.view(c),
          marker: markerOf(req, core.nodeName),
          bodyLimit: options.forwardBodyLimit,
          timeout: options.forwardTimeout,
          resendable,
          idleResets: true, // a litefs-proxy: the primary's, or this node's own server
          dispatcher: core.agents[protocol],
          takeOver: () => hooks.takeOver(c)
        })
    core.observer.forwardEnded(req, origin, result.outcome, result.outcome === 'failed' ? result.error.code : undefined, elapsed())
    if (result.outcome === 'gone') return ended(core, info, 'cancelled', log)
    if (result.outcome === 'sent') {
      if (result.closing === true && toPrimary) core.closingPrimaries.mark(origin)
      // This node's own loop answer (loop-guard.ts) is no primary reached.
      if (toPrimary && res.statusCode !== LOOP_STATUS) {
        core.reach.reached(origin)
        if (core.loopSaid) {
          core.loopSaid = false
          core.warn.clear('LITEFS_FORWARD_LOOP', 'primaryUrl', `forwarding reaches the primary (${origin})`)
        }
      }
      if (core.unresolvedSaid) { // a flag: nothing built per forward otherwise
        core.unresolvedSaid = false
        core.warn.clear('LITEFS_PRIMARY_UNRESOLVED', 'primaryUrl', `forwarding reaches the primary again (${origin})`)
      }
      info.forwardedTo = origin
      info.forwardMs = elapsed()
      log.debug({ primary: origin, forwardMs: info.forwardMs, heldMs: info.heldMs }, 'litefs-proxy: forwarded to the primary')
      return info
    }
    if (toPrimary && result.retry && result.error.code === 'LITEFS_NO_PRIMARY') core.reach.missed(origin, result.error.message)
    if (toPrimary && result.closing === true) core.closingPrimaries.mark(origin)
    if (result.unresolved === true) {
      // Often a misconfiguration, not a blip: LiteFS names the primary by its
      // lease hostname, which the network here need not know (said once).
      core.unresolvedSaid = true
      core.warn.say('LITEFS_PRIMARY_UNRESOLVED', 'primaryUrl', `the primary's address ${origin} does not resolve: writes on this replica wait for it and then fail. Is "primaryUrl" right? It maps LiteFS's lease hostname to a URL this node can reach`, { primary: origin })
    }
    if (result.resend === true && resends < RESENDS) {
      // Closed as it went out, and safe to send twice: again at once, on another connection.
      resends++
      log.debug({ primary: origin, code: result.error.code }, 'litefs-proxy: the primary closed the connection before answering; sending the request again')
      continue
    }
    if (!result.retry || result.resend === true || performance.now() + RETRY_EVERY > deadline) {
      // A misconfiguration, said once loudly; each request still gets its 500.
      if (result.error.code !== 'LITEFS_BODY_CONSUMED') {
        log.warn({ primary: origin, code: result.error.code, err: result.error.message }, 'litefs-proxy: forwarding to the primary failed')
      } else if (!sayBodyConsumed(core, c)) {
        // Said loudly once already; nothing was sent to the primary, so forwarding did not fail: it never began.
        log.warn({ path: core.hooks.url(c), code: result.error.code }, 'litefs-proxy: a write on this replica was not forwarded: its body was read before litefs-proxy')
      }
      info.answer = result.error
      return info
    }
    // Refused at connect: nothing was sent. The primary may be restarting or
    // gone; look again shortly (LiteFS itself retries every 100 ms).
    log.debug({ primary: origin }, 'litefs-proxy: primary refused the connection; retrying')
    await core.lifecycle.pause(c)
    if (core.lifecycle.closing) return ended(core, info, 'closed', log)
    // A client that left meanwhile: forward() sees it before sending anything.
  }
}

/**
 * A `primaryUrl` function that throws, or returns no http(s) URL, for the
 * primary LiteFS names (a map missing a node): no write can reach it, and
 * waiting changes nothing until the primary changes. Answered at once (503,
 * nothing applied); the misconfiguration said once, until a forward gets through.
 */
function noPrimaryUrl<C> (core: CoreContext<C>, info: LitefsInfo, log: Logger, primary: string, why: string): LitefsInfo {
  core.unresolvedSaid = true
  core.warn.say('LITEFS_PRIMARY_UNRESOLVED', 'primaryUrl', `${why}: writes on this replica are answered 503 LITEFS_NO_PRIMARY until it gives one`, { primary })
  return answer(info, log, 'LITEFS_NO_PRIMARY', `${why}; nothing was applied`, { primary })
}

/** A request forwarded as often as it may be, on a node that is not primary: only this node becoming primary can serve it. */
async function holdForPrimaryRole<C> (core: CoreContext<C>, c: C, info: LitefsInfo, holdMs: number): Promise<LitefsInfo> {
  const log = core.hooks.log(c)
  log.debug({ from: core.hooks.req(c).headers[FORWARDED_HEADER] }, 'litefs-proxy: a write forwarded as often as it may be reached a replica; not forwarding it again')
  const started = performance.now()
  const result = await waitFor(core, c, 'primary', undefined, done => core.state.waitForPrimary(holdMs, done, true))
  info.heldMs = performance.now() - started
  info.role = core.state.role
  if (result === 'ready') {
    info.local = true
    return info
  }
  if (result === 'timeout') {
    // Back through other nodes while this one knows a primary that is not itself: a loop, not a failover (loop-guard.ts).
    const through = forwardedSince(core.hooks.req(c).headers[FORWARDED_HEADER] as string, core.nodeName)
    if (through !== undefined && core.state.role === 'replica' && core.state.primaryHostname !== undefined) return loopAnswer(core, c, info, through)
    return noPrimary(core, info, log, holdMs)
  }
  return ended(core, info, result, log)
}

/** `heldMs`: how long the write could be held (`primaryRedirectTimeout`, or less: holdLimit). */
function noPrimary<C> (core: CoreContext<C>, info: LitefsInfo, log: Logger, heldMs: number): LitefsInfo {
  const { state, options } = core
  const timeout = heldMs
  if (state.litefs !== 'up') return unavailable(core, info, log, timeout)
  const fence = state.fence
  if (state.role === 'primary' && fence !== undefined) {
    const said = fence.view === 'other' ? `it names ${fence.holder as string}` : fence.view === 'none' ? 'no node holds it' : 'Consul did not answer'
    return answer(info, log, 'LITEFS_LEASE_UNCONFIRMED', `LiteFS says this node is the primary, but Consul did not confirm its lease within ${timeout} ms (${said}); nothing was applied`, { lease: fence.view, holder: fence.holder })
  }
  if (state.role === 'unknown' && options.api === false && options.role === undefined) {
    // Not a failover: the mount files cannot tell this node's role, and no `role` says it (litefs-node.ts warns once).
    return answer(info, log, 'LITEFS_ROLE_UNKNOWN', `this node's role is unknown: with api: false, ${options.mount} has no .primary file (a primary, or a replica cut off from its primary) and no "role" option says which (serve: --role); set it to "primary" on the primary. Nothing was applied`, { role: state.role, mount: options.mount })
  }
  return answer(info, log, 'LITEFS_NO_PRIMARY', `no primary became available within ${timeout} ms`, { role: state.role })
}
