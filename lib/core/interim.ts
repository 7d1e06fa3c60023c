import type { IncomingMessage, ServerResponse } from 'node:http'
import { responseHeaders } from './hop-by-hop.js'

// Interim (1xx) answers of the primary, or of the app behind `serve`, passed on
// to the client where its protocol allows (RFC 9110 §15.2: a proxy forwards
// them, except the ones it asked for itself): 103 Early Hints (the browser
// starts loading what the Link headers name while the app works) and 102
// Processing. Never to an HTTP/1.0 client, which cannot read them. 100
// Continue belongs to this hop: this node's own server already answered the
// client's `Expect` (the header is not forwarded), so a 100 from upstream is
// not the client's. Other codes have no public way out of Node's server and are
// dropped, as is a 103 without a Link header (Node's writeEarlyHints sends
// none). Over HTTP/2 the client gets them as informational HEADERS frames.

interface Http2Response { stream?: { additionalHeaders: (headers: Record<string, string | string[] | number>) => void } }

/** Pass the interim answer `statusCode` (raw headers) on to `res`, if the client's protocol allows. Never throws. */
export function relayInterim (req: IncomingMessage, res: ServerResponse, statusCode: number, raw: Buffer[]): void {
  if (statusCode !== 102 && statusCode !== 103) return
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return
  const { headers } = responseHeaders(raw)
  try {
    if (statusCode === 103) {
      // One Link value per preload: Node checks each against the Link grammar,
      // and refuses a list its own server joined into one line (`<a>…, <b>…`).
      const link = ([] as string[]).concat(headers.link ?? []).flatMap(v => v.split(/,\s*(?=<)/))
      res.writeEarlyHints({ ...headers, link })
      return
    }
    const h2 = (res as unknown as Http2Response).stream
    if (h2 !== undefined) h2.additionalHeaders({ ...headers, ':status': 102 })
    else res.writeProcessing()
  } catch {
    // A hint Node will not send (its Link check is strict; a stream the client
    // reset): the hint is lost, never the answer that follows.
  }
}
