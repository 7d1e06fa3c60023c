import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { CLOSING_HEADER, FORWARDED_HEADER } from './hop-by-hop.js'
import { connectionsOf } from './idle-reset.js'
import { REACH_HEADER } from './primary-reach.js'

// Closing (the core drained): the last answer on each HTTP/1.1 connection says
// `Connection: close`, so the connection ends once it is sent; to a peer's
// request it also says why (CLOSING_HEADER: the replica then holds its next
// writes rather than open a connection into this closing, primary-closing.ts). Node's
// server.close() ends only the connections idle at that instant; one busy then
// (a balancer's, a replica's forwarder's) stays kept-alive after its answer,
// and the server — so the app, so LiteFS, which waits for its `exec` app before
// it hands the lease over — waits until the client lets it go: Fastify's
// keep-alive timeout is 72 s, nginx keeps an upstream connection 60 s, and a
// client that keeps using it keeps it for ever. A request sent on it just as
// the process exits then meets a FIN: a forwarded write whose outcome nobody
// can know (502 LITEFS_FORWARD_FAILED). Told `Connection: close`, the client
// sends its next request on a new connection: refused, retried elsewhere.
//
// "Last" matters for requests a client pipelined: the answers queued behind
// one that closes its connection are never sent, though their handlers ran. So
// the mark goes on the latest request decided on a connection and moves to a
// later one when it comes; a request pipelined behind an answer that already
// left with `Connection: close` will never be answered, and is not run
// (LITEFS_CLOSED, nothing applied). An answer whose head left before the close
// began cannot say it: its connection is left to the server's close. HTTP/2 has no such header: the drain
// closes its sessions with GOAWAY (h2-sessions.ts).

const LATEST = Symbol('litefs-proxy.latest-answer')
const MARKED = Symbol('litefs-proxy.marked-last')

type Answer = ServerResponse & { [MARKED]?: true, _header?: string | null }
type Connection = Socket & { [LATEST]?: Answer, _httpMessage?: Answer | null }

/** Whether the head of `res` is written for real (a deferred head says headersSent while it waits: deferred-head.ts). */
function headWritten (res: Answer): boolean {
  return res._header !== undefined && res._header !== null
}

function mark (res: Answer): void {
  res.shouldKeepAlive = false
  res[MARKED] = true
  // A peer (a replica's forward, or its question whether this node still closes) is told why: primary-closing.ts.
  if (fromPeer(res.req)) res.setHeader(CLOSING_HEADER, '1')
}

/** A request from another node's litefs-proxy: a forward, or a question to this node's health. */
export function fromPeer (req: IncomingMessage): boolean {
  return req.headers[FORWARDED_HEADER] !== undefined || req.headers[REACH_HEADER] !== undefined
}

/**
 * Note `res` as the latest request decided on its connection (HTTP/1.1; a
 * property write, no allocation). While `closing`, mark it the connection's
 * last answer, and unmark the one before it if its head is not out yet.
 * Returns false when the request will never be answered: an answer before it
 * on its connection already left saying `Connection: close`.
 */
export function decided (req: IncomingMessage, res: ServerResponse, closing: boolean): boolean {
  if (req.httpVersionMajor !== 1) return true
  const socket = req.socket as Connection
  const before = socket[LATEST]
  socket[LATEST] = res
  if (!closing) return true
  if (before !== undefined && before !== res && before[MARKED] === true) {
    if (headWritten(before)) return false
    before.shouldKeepAlive = true // the mark moves to this later request (the client's own `Connection: close` was never ours to lift)
    before[MARKED] = undefined
  }
  mark(res)
  return true
}

/**
 * Whether a request was decided on `res`'s HTTP/1.1 connection after it: a
 * request the client pipelined behind it, already run or running, whose
 * answer is queued behind this one. Closing the connection with this answer
 * would drop that one, its handler's work done (a write applied, never
 * answered): the connection's last answer is the latest one's to say.
 */
export function laterOnConnection (res: ServerResponse): boolean {
  const latest = (res.req.socket as Connection | null)?.[LATEST]
  return latest !== undefined && latest !== res
}

/** At the drain: the latest answer on each of `server`'s connections busy now is that connection's last. Returns how many were marked. */
export function markLastAnswers (server: Server | undefined): number {
  const list = connectionsOf(server)
  if (list === undefined) return 0
  let marked = 0
  for (const { socket } of list.all()) {
    const s = socket as Connection
    const current = s._httpMessage
    if (current === undefined || current === null || current.finished) continue // idle: the drain resets it (idle-reset.ts)
    const last = s[LATEST] ?? current
    if (last[MARKED] === true || last.shouldKeepAlive === false) continue // already closing
    // Too late to say (a streamed answer, or one queued behind the current with
    // its head built): left to the server's close. Not ended here: a FIN after
    // it races the client's next request (a forwarded write, its outcome then
    // unknown), and a reset could drop the answer's tail from the send buffer.
    if (headWritten(last)) continue
    mark(last)
    marked++
  }
  return marked
}
