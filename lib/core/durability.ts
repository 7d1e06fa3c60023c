import { performance } from 'node:perf_hooks'
import type { Acknowledgement, Appended } from './acknowledgement.js'
import { ANSWERS, litefsError } from './answers.js'
import type { CoreContext } from './context.js'
import { durableFor } from './durability-options.js'
import { pathOf } from './path-match.js'
import type { LitefsInfo } from './request.js'
import { acknowledgeWrite } from './write-cookie.js'

// `durability` (DESIGN §3.5, issue 21): the acknowledgement of a write served
// here as primary waits until every connected candidate — every node that
// could take the lease, as its litefs-proxy reports (peer-table.ts), at least
// one — has reported the write's cookie TXID; then the app's answer leaves as
// it is. Past `durabilityTimeout` the write is committed here but not safe from
// this node's failure: the app's answer is replaced by 500
// LITEFS_NOT_REPLICATED — never a status that invites a retry, which would
// apply it twice — with the cookie still set, so the client's reads see it.
//
// Decided cases:
// - a candidate silent for 2 s (crashed, partitioned, following another
//   primary) no longer counts: writes go on with the others;
// - a candidate that starts reporting counts at once, even while behind: a
//   held answer then waits for it too (it could win the lease);
// - no candidate connected at all: the wait ends at the bound, 500;
// - no `peerSecret`: nothing can report, 500 at once (said once at start).
// The cookie and the position it carries are write-cookie.ts's; how the head
// waits for this decision is the adapters' (deferred-head.ts).

/**
 * How the answer to a write served here as primary leaves (CoreContext.acknowledge):
 * write-cookie.ts's acknowledgement, and with durability on for it, once its
 * candidates have it. Writes that durability leaves alone take no extra step.
 */
export function acknowledgeDurably<C> (core: CoreContext<C>, info: LitefsInfo, c: C): Acknowledgement | Promise<Acknowledgement> {
  const ack = acknowledgeWrite(core, info, c)
  if (core.options.durability.on === false) {
    const route = core.hooks.route(c)
    if (route === false || route?.durability !== true) return ack
  }
  return ack instanceof Promise ? ack.then(a => awaitCandidates(core, info, c, a)) : awaitCandidates(core, info, c, ack)
}

/** The acknowledgement `ack` of a write, once its candidates have it (or the answer that says they do not). */
export function awaitCandidates<C> (core: CoreContext<C>, info: LitefsInfo, c: C, ack: Acknowledgement): Acknowledgement | Promise<Acknowledgement> {
  const txid = info.setTxid
  // Replaced already, or no TXID (no -pos, an empty database): nothing to wait for.
  if (ack.replace !== undefined || txid === undefined) return ack
  const hooks = core.hooks
  const route = hooks.route(c)
  const setting = route === false || route === undefined ? undefined : route.durability
  if (!durableFor(core.options.durability, setting, pathOf(hooks.url(c)), hooks.pathRules(c), hooks.routeUrl(c))) return ack
  const peers = core.peers
  if (peers === undefined) return notReplicated(core, info, c, ack, 'no node can report it: "peerSecret" is not set', 0)
  // Replica reports carry one database's position; a write to another could not be checked (options.ts refuses the option itself).
  if (core.several !== undefined) return notReplicated(core, info, c, ack, 'durability follows one database, and this app tracks several ("db" is a list or \'*\')', 0)
  peers.counts.waits++
  const started = performance.now()
  const timeout = core.options.durability.timeout
  return new Promise(resolve => {
    peers.table.wait(core.options.db as string, BigInt('0x' + txid), timeout, result => {
      const ms = performance.now() - started
      info.replicatedMs = ms
      if (result === 'replicated') {
        peers.counts.replicated++
        resolve(ack)
        return
      }
      const { candidates, position } = peers.table.replicated(core.options.db as string)
      const why = result === 'closed'
        ? 'the app is closing, and the replicas\' reports stop with it, so none can confirm it now'
        : candidates === 0
          ? noCandidate(peers.table.peers().some(p => p.connected))
          : `${candidates} connected candidate(s) had reached only TXID ${(position as bigint).toString(16)} after ${timeout} ms`
      resolve(notReplicated(core, info, c, ack, why, ms))
    })
  })
}

/**
 * Why no candidate counted, as the operator can check it: nobody reports at
 * all (the usual cause: a peerSecret or primaryUrl wrong on the replicas), or
 * the nodes that report are not candidates.
 */
function noCandidate (anyConnected: boolean): string {
  return anyConnected
    ? 'no candidate is reporting to this primary: the nodes reporting say they are not candidates (stats().peers)'
    : 'no candidate is reporting to this primary (stats().peers lists none connected): check that the replicas\' litefs-proxy have the same peerSecret, and reach this node at primaryUrl'
}

function notReplicated<C> (core: CoreContext<C>, info: LitefsInfo, c: C, ack: Appended, why: string, ms: number): Acknowledgement {
  if (core.peers !== undefined) core.peers.counts.notReplicated++
  const err = litefsError('LITEFS_NOT_REPLICATED', `the write is committed on the primary (TXID ${info.setTxid as string}), but not every node that could become primary has it: ${why}. It may be lost if this primary fails now; do not send it again — read it back to check`)
  core.hooks.log(c).warn({ txid: info.setTxid, ms: Math.round(ms), why }, `litefs-proxy: ${ANSWERS.LITEFS_NOT_REPLICATED.line}`)
  const headers: Record<string, string> = { ...err.headers, 'content-type': 'application/json; charset=utf-8' }
  // The cookie goes with it: the client's next reads wait for its write, which is there.
  for (const [name, value] of ack.headers) headers[name] = value
  return { replace: { statusCode: err.statusCode, headers, body: err.body } }
}
