import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'

// What a replica tells the primary about the client of a request it forwards.
// The primary rightly trusts its replicas as proxies, so every word here must be
// something the replica itself can vouch for under its own trust setting: a
// client's own `X-Forwarded-Proto: https` or `X-Forwarded-Host: evil.example`,
// passed on by a replica that does not trust that client, would become true on
// the primary (a spoofed host in reset links and redirects; a `Secure` cookie on
// plain HTTP that the browser drops, silently breaking read-your-writes).
//
// X-Forwarded-For is a chain each proxy extends with the peer it saw; the app
// (its framework's trust setting: a count of hops, addresses, a function; or
// Django REST framework's NUM_PROXIES) walks it back from the nearest hop. A
// write that lands on a replica reaches the primary through one more hop than
// one that lands on the primary: extended again, the chain made the primary's
// app take the hop before the client for the client (with `trust proxy 1`, the
// balancer's address; issue 18). So a replica stands in for its own peer: it
// does not add that peer, and the primary (or its `serve`) sees the replica in
// its place — as many hops as a direct request, the same client under every
// setting that trusts the replicas (a hop count does by position; an address
// list or function must name them, as the README says). The replica sends only
// the part of the chain its own trust setting believes: from the client it
// believes to the nearest hop; when it believes its peer is the client (trust
// off, or nothing forwarded), that peer alone. `serve` in front of its own app
// is an ordinary proxy: it extends the chain with its peer.

/** The client's request as this node's framework believes it, under its trust-proxy setting. */
export interface ForwardedView {
  /** The scheme the client used. */
  proto: 'http' | 'https'
  /** The host the client asked for, with its port if it gave one (`Host`, or `X-Forwarded-Host` when trusted); undefined when none. */
  host: string | undefined
  /** The client's address (the socket's peer, or the trusted `X-Forwarded-For` entry). */
  client: string | undefined
}

/** Headers rewritten from the view: a client's own values for them are never passed on. */
const REPLACED = new Set(['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip'])

/**
 * Whether `name` (lowercase) is forwarded metadata that is rewritten or dropped:
 * the ones above, and every other `x-forwarded-*` (`-prefix`, `-ssl`, `-server`…),
 * which this node has no way to vouch for. `x-forwarded-for` is kept and extended.
 */
export function isForwardedMetadata (name: string): boolean {
  return REPLACED.has(name) || (name.startsWith('x-forwarded-') && name !== 'x-forwarded-for')
}

/** RFC 7239 `node`: an IPv6 address in brackets, always as a quoted-string. */
function quoteNode (address: string): string {
  return address.includes(':') ? `"[${address}]"` : address
}

function portOf (host: string | undefined, proto: 'http' | 'https'): string {
  const m = host === undefined ? null : /:(\d+)$/.exec(host)
  if (m !== null && !host?.endsWith(']')) return m[1]
  return proto === 'https' ? '443' : '80'
}

/** The X-Forwarded-For entries as sent, farthest first. */
function chainOf (xff: string | string[] | undefined): string[] {
  if (xff === undefined) return []
  return ([] as string[]).concat(xff).flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
}

/**
 * The chain a replica sends the primary: the received entries from the client it
 * believes to the nearest (its peer not added: the replica stands in for it), or
 * its peer alone when that is the client it believes.
 */
function standInChain (chain: string[], peer: string, client: string): string[] {
  if (client === peer) return [peer]
  // Nearest first, as a trust setting walks it: the first hop that is the client.
  for (let i = chain.length - 1; i >= 0; i--) {
    if (chain[i] === client) return chain.slice(i)
  }
  return [client] // believed, but written differently than received: vouched for alone
}

/**
 * Add this node's account of the request to `out` (headers already stripped of
 * forwarded metadata): `X-Forwarded-For` (`standIn`: a replica to the primary,
 * see above; else extended with the peer, as any proxy does), and
 * `X-Forwarded-Proto`, `-Host`, `-Port` and a one-element `Forwarded` from the
 * view; `X-Real-IP` when the client sent one.
 */
export function addForwardedHeaders (out: Record<string, string | string[]>, req: IncomingMessage, view: ForwardedView, standIn = false): void {
  const headers: IncomingHttpHeaders = req.headers
  const peer = req.socket.remoteAddress ?? 'unknown'
  const chain = chainOf(headers['x-forwarded-for'])
  out['x-forwarded-for'] = (standIn ? standInChain(chain, peer, view.client ?? peer) : [...chain, peer]).join(', ')
  out['x-forwarded-proto'] = view.proto
  if (view.host !== undefined) out['x-forwarded-host'] = view.host
  out['x-forwarded-port'] = portOf(view.host, view.proto)
  const client = view.client ?? peer
  let forwarded = `for=${quoteNode(client)};proto=${view.proto}`
  if (view.host !== undefined) forwarded += `;host="${view.host.replace(/["\\]/g, '')}"`
  out.forwarded = forwarded
  if (headers['x-real-ip'] !== undefined) out['x-real-ip'] = client
}

/** The first value of a comma-separated header, trimmed (the one a trusting framework reads). */
export function firstValue (value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return undefined
  const first = v.split(',')[0].trim()
  return first === '' ? undefined : first
}
