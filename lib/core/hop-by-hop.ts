import type { IncomingMessage } from 'node:http'
import { addForwardedHeaders, isForwardedMetadata, type ForwardedView } from './forwarded-headers.js'
import { BUDGET_HEADER, CLOSING_HEADER, FORWARDED_HEADER } from './own-headers.js'

// Which headers cross a forward, each way: never the hop-by-hop ones (RFC 9110
// §7.6.1: `Connection` and the headers it names, `Keep-Alive`, `TE`…), never
// HTTP/2 pseudo-headers; the loop-guard marker added. What a replica says about
// the client (X-Forwarded-*) is forwarded-headers.ts's policy; moving bytes is
// forward.ts's.

/** litefs-proxy's own headers between nodes (own-headers.ts). */
export { BUDGET_HEADER, CLOSING_HEADER, FORWARDED_HEADER }

const HOP_BY_HOP = new Set([
  CLOSING_HEADER,
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'expect', // the replica's server already answered 100-continue; undici refuses it
  'http2-settings'
])


/** The headers `Connection` names, when it names more than itself says (keep-alive, close: the usual values, dropped anyway). */
function dropped (connection: string | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined
  const v = connection.toLowerCase()
  if (v === 'keep-alive' || v === 'close') return undefined // every request and answer: nothing to build
  return new Set(v.split(',').map(s => s.trim()))
}

function isHopByHop (name: string, named: Set<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named?.has(name) === true
}

/**
 * The headers sent to the primary: the client's, less the hop-by-hop ones and
 * HTTP/2 pseudo-headers (`:authority` becomes `Host`: the primary is spoken to
 * in HTTP/1.1), less forwarded metadata this node cannot vouch for, plus this
 * node's own account of the client (forwarded-headers.ts) and the loop-guard marker.
 */
export function requestHeaders (req: IncomingMessage, view: ForwardedView, marker?: string, budgetMs?: number): Record<string, string | string[]> {
  const headers = req.headers
  const named = dropped(headers.connection)
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || name.charCodeAt(0) === 58 /* : */ || isForwardedMetadata(name)) continue
    // Host stays even when `Connection: host` names it: the primary routes by it.
    if (name === 'host' || !isHopByHop(name, named)) out[name] = value
  }
  const authority = req.headers[':authority']
  if (out.host === undefined && typeof authority === 'string') out.host = authority
  // A replica forwarding to the primary stands in for its peer in X-Forwarded-For (forwarded-headers.ts).
  addForwardedHeaders(out, req, view, marker !== undefined)
  if (marker !== undefined) {
    out[FORWARDED_HEADER] = marker
    // Ours replaces the one a node before us (or a client) sent: its wait is not ours.
    if (budgetMs !== undefined) out[BUDGET_HEADER] = String(budgetMs)
  }
  return out
}

/**
 * The primary's response headers (raw name/value pairs) less the hop-by-hop
 * ones, repeated names (Set-Cookie) gathered into arrays: headers an app set
 * before (Express's X-Powered-By) make writeHead apply each name with
 * setHeader, which keeps only the last of a repeated one.
 */
export function responseHeaders (raw: Buffer[]): { headers: Record<string, string | string[]>, sized: boolean, closing: boolean } {
  const headers: Record<string, string | string[]> = {}
  let named: Set<string> | undefined
  let closing = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1').toLowerCase()
    const value = raw[i + 1].toString('latin1')
    if (name === 'connection') named = dropped(value)
    else if (name === CLOSING_HEADER) closing = true
    if (isHopByHop(name, undefined)) continue
    const seen = headers[name]
    headers[name] = seen === undefined ? value : ([] as string[]).concat(seen, value)
  }
  // Named by Connection, wherever it came among the headers (rare: a Set only then).
  if (named !== undefined) for (const name of named) delete headers[name]
  return { headers, sized: headers['content-length'] !== undefined, closing }
}
