import { highestCookie } from './cookie.js'
import { parseTxid } from './txid.js'

// The cookies of the peers a team moves from, so a rolling switch keeps every
// token already in a browser (option `peerCookies`, off by default):
// - `__txid`, LiteFS's built-in proxy (superfly/litefs http/proxy_server.go):
//   the TXID as ltx writes it, 16 hex digits, unsigned;
// - `txnum`, litefs-js (kentcdodds/litefs-js): the TXID in decimal, as
//   `parseInt(<-pos hex>, 16)` gives it, unsigned.
// Both are unsigned: any client can forge one far ahead and have its reads held
// up to `readTimeout` (each counting against `maxWaiting`), which a `secret`
// otherwise prevents; and another library's cookie of the same name would be
// misread. Hence off by default, and said once beside a secret (proxy.ts).

export type PeerCookie = '__txid' | 'txnum'

export const PEER_COOKIES: readonly PeerCookie[] = ['__txid', 'txnum']

const DECIMAL = /^[0-9]{1,20}$/
const MAX = (1n << 64n) - 1n

function parseDecimal (value: string): bigint | undefined {
  if (!DECIMAL.test(value)) return undefined
  const n = BigInt(value)
  return n <= MAX ? n : undefined
}

const PARSE: Record<PeerCookie, (value: string) => bigint | undefined> = { __txid: parseTxid, txnum: parseDecimal }

/** The highest TXID among the peers' cookies named in `names`, or undefined. */
export function readPeerCookies (names: readonly PeerCookie[], header: string | undefined): bigint | undefined {
  let best: bigint | undefined
  for (const name of names) {
    const txid = highestCookie(header, name, PARSE[name])
    if (txid !== undefined && (best === undefined || txid > best)) best = txid
  }
  return best
}
