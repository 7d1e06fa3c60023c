import type { Duplex } from 'node:stream'

// The connections litefs-proxy pipes itself (tunnel.ts: a WebSocket tunnelled
// to the primary, or, behind `serve`, piped to the app), so that closing can
// end them. Once piped, such a connection is no longer an HTTP request: no
// server's closeAllConnections() sees it, no app's WebSocket server lists it
// (`wss.clients`), and the server's close() waits for it — under LiteFS's
// `exec`, the lease handover waited as long as any client stayed connected.
// Ending one is a TCP close both ways, after what was already read is written:
// the bytes are WebSocket frames litefs-proxy does not parse, so it cannot
// close at a frame's boundary with a close frame of its own; both peers see the
// connection end (ws: 1006), as with the `terminate()` of the README's shutdown
// snippets. A peer that does not close its side within END_GRACE is cut.

/** How long an ended connection's peer has to close its side before the socket is destroyed (ms). */
export const END_GRACE = 1000

/** The open tunnels of one core. */
export class Tunnels {
  private readonly pairs = new Map<Duplex, Duplex>()
  private ended = false

  /** Open tunnels now. */
  get size (): number {
    return this.pairs.size
  }

  /** `client` and `other` are piped both ways; once ended (close), a tunnel opened late is ended at once. */
  add (client: Duplex, other: Duplex): void {
    this.pairs.set(client, other)
    client.once('close', () => this.pairs.delete(client))
    if (this.ended) endPair(client, other)
  }

  /** End every open tunnel, and any opened from now on; returns how many were open. */
  end (): number {
    this.ended = true
    let n = 0
    for (const [client, other] of this.pairs) {
      // Closed already, its 'close' not yet emitted: a server's close can resolve first (serve's drain, then core.close()).
      if (client.destroyed) continue
      n++
      endPair(client, other)
    }
    return n
  }
}

function endPair (client: Duplex, other: Duplex): void {
  // Unpiped first: an end while the other side still writes into it would be a write after end.
  client.unpipe(other)
  other.unpipe(client)
  endSocket(client)
  endSocket(other)
}

/** Flush, FIN, then close once the peer closes too; destroyed after END_GRACE if it does not. */
function endSocket (socket: Duplex): void {
  if (socket.destroyed) return
  const timer = setTimeout(() => socket.destroy(), END_GRACE)
  socket.once('close', () => clearTimeout(timer))
  socket.resume() // the peer's last bytes, read and dropped: its FIN is seen, and unread data does not turn the close into a reset
  socket.end()
}
