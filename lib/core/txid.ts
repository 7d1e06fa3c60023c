// LiteFS transaction ids are unsigned 64-bit integers written as 16 lowercase hex
// digits (ltx.TXID.String()). They exceed Number's 2^53, so they live as bigint.
const HEX16 = /^[0-9a-fA-F]{16}$/

/** The TXID in `text`, or undefined when it is not exactly 16 hex digits. Never throws. */
export function parseTxid (text: string): bigint | undefined {
  return HEX16.test(text) ? BigInt('0x' + text) : undefined
}

/** 16 lowercase hex digits, as LiteFS writes them. */
export function formatTxid (txid: bigint): string {
  return txid.toString(16).padStart(16, '0')
}

/**
 * The TXID at the start of a `<db>-pos` file (`%016x/%016x\n`: TXID / checksum),
 * or undefined when the content is not in that format.
 */
export function parsePos (content: string): bigint | undefined {
  return content.length >= 17 && content.charCodeAt(16) === 47 /* '/' */
    ? parseTxid(content.slice(0, 16))
    : undefined
}
