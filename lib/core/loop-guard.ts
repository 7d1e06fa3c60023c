import type { IncomingMessage } from 'node:http'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { ANSWERS, answer } from './answers.js'
import type { CoreContext } from './context.js'
import { FORWARDED_HEADER } from './hop-by-hop.js'
import type { LitefsInfo } from './request.js'

// The loop guard (DESIGN §3.8): a forwarded request carries a marker naming
// each node that forwarded it, and no request is forwarded in a circle.
// Two rules. A request forwarded by MAX_FORWARDERS nodes already is never
// forwarded again (write-path.ts holds such a write for this node to become
// primary; read-timeout.ts answers such a read's timeout itself). And a
// request that comes straight back to the node that forwarded it is answered
// 508 at once: only a `primaryUrl` that maps the primary's hostname to this
// node's own address does that (a stale DNS name, two names swapped in a map,
// `localhost`), and every write landing here would otherwise go round to the
// hop limit, then wait `primaryRedirectTimeout` for a 503 that names no cause.
// A request back after another node forwarded it (`me, node-b`) is not one
// at once: node-b may have been the primary a moment ago and now name this
// node, being promoted. It is held for that (write-path.ts); if the hold ends
// while this node knows another primary, it was a loop through node-b (two
// nodes' `primaryUrl` leading to each other) and is answered so. Health's question to the primary (primary-reach.ts) carries this
// node's mark too, so a node whose `primaryUrl` leads to itself is `unreachable`.

/** How many nodes may forward one request: the replica it landed on, and one node demoted meanwhile. */
export const MAX_FORWARDERS = 2

/** The status of the answer to a request that came back: 508 Loop Detected (RFC 5842 §7.2; answers.ts). */
export const LOOP_STATUS = ANSWERS.LITEFS_FORWARD_LOOP.status

/**
 * This node's entry in the marker: its host name, for the logs, and an id of
 * this core, as two nodes of the dev cluster (or two apps on one host) share
 * a host name. `<hostname>/<8 hex digits>`, made once per core.
 */
export function markerName (): string {
  return `${hostname()}/${randomBytes(4).toString('hex')}`
}

/** The marker for a forward from this node: the nodes before it, then this one. */
export function markerOf (req: IncomingMessage, self: string): string {
  const via = req.headers[FORWARDED_HEADER]
  return via === undefined ? self : `${String(via)}, ${self}`
}

/** How many nodes forwarded a request, from its marker (`node-a/…, node-b/…`). */
export function forwarders (via: string | string[]): number {
  return String(via).split(',').filter(s => s.trim() !== '').length
}

/** Whether the last node that forwarded this request (the marker's last entry) is this one. */
export function cameBack (via: string | string[], self: string): boolean {
  const marker = String(via)
  return marker.slice(marker.lastIndexOf(',') + 1).trim() === self
}

/** Whether this node may forward the request on: not forwarded as often as it may be, and not back from this node. */
export function mayForward (req: IncomingMessage, self: string): boolean {
  const via = req.headers[FORWARDED_HEADER]
  return via === undefined || (forwarders(via) < MAX_FORWARDERS && !cameBack(via, self))
}

/**
 * The nodes that forwarded this request after this one did (`me, node-b` →
 * `['node-b']`; `[]` when this node sent it last), or undefined when this
 * node never forwarded it.
 */
export function forwardedSince (via: string | string[], self: string): string[] | undefined {
  const entries = String(via).split(',').map(s => s.trim()).filter(s => s !== '')
  const at = entries.lastIndexOf(self)
  return at === -1 ? undefined : entries.slice(at + 1)
}

/**
 * The answer to a request that came back: nothing was applied; `primaryUrl`
 * is named, once. `through`: the nodes it came back through (a write held
 * to the end of its hold here while this node knows another primary:
 * write-path.ts), none when it came straight back.
 */
export function loopAnswer<C> (core: CoreContext<C>, c: C, info: LitefsInfo, through: readonly string[] = []): LitefsInfo {
  const primary = core.state.primaryHostname
  const why = through.length > 0
    ? `a request this node forwarded towards the primary ${primary as string} came back through ${through.join(', ')}: "primaryUrl" here or there leads to a replica`
    : primary === undefined
      ? '"primaryUrl" led a request this node forwarded back to this node'
      : `"primaryUrl" maps the primary ${primary} to an address that reaches this node itself`
  core.loopSaid = true
  core.warn.say('LITEFS_FORWARD_LOOP', 'primaryUrl', `${why}, not the primary: every write landing here fails. Is "primaryUrl" right? It maps LiteFS's lease hostname to a URL this node can reach`, { primary: primary ?? null, through })
  const log = core.hooks.log(c)
  // The client's answer names the option as its operator knows it (serve: --primary-url), as the warning does.
  return answer(info, log, 'LITEFS_FORWARD_LOOP', log.words === undefined ? `${why}; nothing was applied` : log.words(`${why}; nothing was applied`), { primary: primary ?? null, path: core.hooks.url(c) })
}
