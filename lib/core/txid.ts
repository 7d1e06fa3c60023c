// LiteFS transaction ids are unsigned 64-bit integers written as 16 lowercase hex
// digits (ltx.TXID.String()). They exceed Number's 2^53, so they live as bigint.
/** The TXID in `text`, or undefined when it is not exactly 16 hex digits (or not a string). Never throws. */
export function parseTxid (text: string): bigint | undefined {
  // On every read with a token: two 32-bit halves as Numbers (exact), one
  // BigInt made from them — no RegExp, no string built for BigInt() to parse.
  if (typeof text !== 'string' || text.length !== 16) return undefined
  let hi = 0
  let lo = 0
  for (let i = 0; i < 16; i++) {
    const c = text.charCodeAt(i)
    const lower = c | 32
    const digit = c >= 48 && c <= 57 ? c - 48 : lower >= 97 && lower <= 102 ? lower - 87 : -1
    if (digit < 0) return undefined
    if (i < 8) hi = hi * 16 + digit
    else lo = lo * 16 + digit
  }
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) + BigInt(lo)
}

const ZEROS = '0000000000000000'

/** 16 lowercase hex digits, as LiteFS writes them. */
export function formatTxid (txid: bigint): string {
  // Below 2^53 (every TXID LiteFS will reach) a Number prints it exactly, faster than a bigint does.
  const hex = txid < 0x20000000000000n ? Number(txid).toString(16) : txid.toString(16)
  return ZEROS.slice(hex.length) + hex
}

/**
 * The TXID at the start of a `<db>-pos` file (`%016x/%016x\n`: TXID / checksum),
 * or undefined when the content is not in that format (or not a string). Never throws.
 */
export function parsePos (content: string): bigint | undefined {
  return typeof content === 'string' && content.length >= 17 && content.charCodeAt(16) === 47 /* '/' */
    ? parseTxid(content.slice(0, 16))
    : undefined
}
