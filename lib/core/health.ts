import type { CoreContext } from './context.js'
import type { LitefsAnswer } from './request.js'
import { formatTxid } from './txid.js'

// The health check's answer (DESIGN §3.2), for a balancer and for the other
// nodes: 200 `ok`; 503 `unavailable` while LiteFS on this node does not answer
// (event stream lost, mount dead); 503 `lagging` when the lag is above
// `maxLag` (or unknown); 503 `fenced` on a primary whose lease Consul does not
// confirm as its own (lease-fence.ts). It also carries the primary's position from `-pos`
// itself: replicas ask it whether a read's TXID exists (primary-probe.ts).
// With `peerSecret`, a primary's also lists its peers (peer-link.ts).

export function health<C> (core: CoreContext<C>): LitefsAnswer {
  const state = core.state
  state.refresh()
  const up = state.litefs === 'up'
  const lag = up ? state.readLag() : undefined
  const max = core.options.maxLag
  const db = core.options.db
  const fence = state.fence
  // A primary whose lease Consul gave to another node, to none, or would not
  // say: a balancer should send it nothing (it holds writes meanwhile).
  const fenced = up && state.role === 'primary' && fence !== undefined && fence.view !== 'mine'
  const ok = up && !fenced && (max === 0 || (lag !== undefined && lag <= max))
  const body: Record<string, unknown> = {
    status: ok ? 'ok' : !up ? 'unavailable' : fenced ? 'fenced' : 'lagging',
    role: state.role,
    primary: state.primaryHostname ?? null,
    lag: lag ?? null,
    txid: formatTxid(state.role === 'primary' ? state.readPosition(db) ?? state.position(db) : state.position(db))
  }
  // Its peers, on the primary they report to: who is connected and how far behind.
  if (core.peers !== undefined && state.role === 'primary') body.peers = core.peers.view(db).map(({ hostname, candidate, connected, behind }) => ({ hostname, candidate, connected, behind }))
  if (fence !== undefined && state.role === 'primary') body.lease = fence.view === 'other' ? { holder: fence.holder } : fence.view
  return { statusCode: ok ? 200 : 503, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) }
}
