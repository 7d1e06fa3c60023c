import { setImmediate as immediate } from 'node:timers/promises'

// A connection a client opens as this node closes may carry a replica's
// forwarded write: one that has not yet heard this node close
// (primary-closing.ts). Once Node's server has accepted it, it is safe: the
// server's close waits for it (a connection that has carried nothing is not
// idle to Node), and its request is answered as its connection's last
// (last-answer.ts: to a peer, "closing"). But one still in the kernel's accept
// queue when the listener closes is reset, its write unread, which the replica
// cannot tell from a write applied (502, outcome unknown). That queue is
// emptied only when the event loop polls, and a close can end — and the server
// close — without one (`serve` closed its listener in the very turn its close
// began, so did Fastify after preClose). So the close ends by letting the loop
// poll: what is queued by then is accepted. What stays is a connection queued
// between that poll and the listener's close: microseconds of work, more when
// the process waits for a core (under load: 3 writes in ~9,300 forwarded
// through 160 graceful closes of a node:http primary).

/**
 * Resolves after the event loop has polled for I/O at least once: two turns of
 * setImmediate (the first may run in the check phase of the turn already
 * under way, after its poll), so connections queued before the call are accepted.
 */
export async function acceptQueued (): Promise<void> {
  await immediate()
  await immediate()
}
