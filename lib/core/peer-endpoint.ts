import type { IncomingMessage } from 'node:http'
import { ANSWERS, answer, litefsError } from './answers.js'
import type { CoreContext } from './context.js'
import { parseReport } from './peer-table.js'
import { PEER_HEADER, SKEW, verifyReport } from './replica-report.js'
import type { LitefsInfo } from './request.js'

// The endpoint where a node's litefs-proxy takes its peers' reports
// (`POST /litefs/peers`, only with `peerSecret`; classify.ts sends it here):
// the body is read whole (a report is small: past MAX_REPORT bytes it is
// refused), its signature checked against the shared secret, and the report
// goes into this node's table (peer-link.ts). 204 when taken; a report from
// a stranger is refused (403) and one that is not a report too (400), each
// with its one-line JSON body. Who sends reports, and what the table does
// with them, is replica-report.ts's and peer-table.ts's.

/** The largest report body taken (bytes): a hostname and a few positions are a few hundred. */
export const MAX_REPORT = 64 * 1024

const TAKEN = { statusCode: 204, headers: {}, body: '' }

export function receiveReport<C> (core: CoreContext<C>, c: C, req: IncomingMessage, info: LitefsInfo): Promise<LitefsInfo> {
  const log = core.hooks.log(c)
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    let size = 0
    let over = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_REPORT) over = true
      else chunks.push(chunk)
    })
    let ended = false
    req.on('error', () => {}) // the peer left mid-body: 'close' below says so
    req.on('close', () => { if (!ended) { info.aborted = true; resolve(info) } })
    req.on('end', () => {
      ended = true
      const body = Buffer.concat(chunks).toString('utf8')
      const report = over ? undefined : parseReport(body)
      const address = String(req.socket.remoteAddress) // a live connection's: it sent a whole body
      const from = `${address} ${report?.hostname ?? '?'}`
      if (!over && !verifyReport(core.options.durability.secrets, body, headerOf(req))) {
        // Said once per sender while it lasts, not per report (two a second, for ever):
        // its name is what it says it is, unverified, but it is what an operator looks for.
        core.warn.say('LITEFS_PEER_REFUSED', from, `${ANSWERS.LITEFS_PEER_REFUSED.line as string} from ${address}${report === undefined ? '' : `, which says it is ${report.hostname}`}: is "peerSecret" the same on every node (and their clocks within ${SKEW / 1000} s)? Its reports do not count until it is`)
        info.answer = litefsError('LITEFS_PEER_REFUSED', `a peer report was not signed with this node's peerSecret, or was signed too long ago (header ${PEER_HEADER})`)
        resolve(info)
      } else if (report === undefined) {
        resolve(answer(info, log, 'LITEFS_BAD_REPORT', `a peer report must be a JSON object {hostname, candidate, positions} of at most ${MAX_REPORT} bytes`, { size }))
      } else {
        core.warn.clear('LITEFS_PEER_REFUSED', from, `the reports of ${report.hostname} at ${address} are taken now`)
        core.peers?.table.report(report)
        info.answer = TAKEN
        resolve(info)
      }
    })
  })
}

function headerOf (req: IncomingMessage): string | undefined {
  // Node joins a repeated custom header with ", ": never an array here.
  return req.headers[PEER_HEADER] as string | undefined
}
