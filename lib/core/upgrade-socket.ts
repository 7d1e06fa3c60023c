import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

// The raw connection of a request that arrived as an upgrade (a server's
// 'upgrade' event, where Node hands over the socket off its HTTP parser),
// while litefs-proxy decides it. Node leaves that socket unread and without an
// 'error' listener: a client that leaves while its handshake is held sends a
// FIN (or a reset) nobody reads, so its wait would last until readTimeout, and
// an error would crash the process. While marked, the socket is read: its end
// or error destroys it (the held wait sees the close and lets go), and
// whatever it sends is kept, bounded, for whoever takes the connection next
// (the app's upgrade listener, or the tunnel to the primary: tunnel.ts). The
// decision itself is the core's; the adapters' entries mark the requests.

/** Bytes a client may send before its handshake is answered; a WebSocket client sends none. */
export const MAX_EARLY_BYTES = 64 * 1024

/** A marked upgrade's connection. */
export interface UpgradeSocket {
  socket: Duplex
  /**
   * Stop watching and hand the connection on (once): the bytes read past
   * the handshake's head so far (the 'upgrade' event's `head`, then what came
   * while it was decided); the socket is left unread, as Node left it.
   */
  take: () => Buffer
  /** Told when a tunnel switched the connection (101), its response detached: `serve`'s access log. */
  switched?: (res: ServerResponse) => void
}

const upgrades = new WeakMap<IncomingMessage, UpgradeSocket>()

/** `req` arrived as an upgrade on `socket` with `head`: watch the socket, and let a write be tunnelled, not forwarded. */
export function markUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer, switched?: (res: ServerResponse) => void): UpgradeSocket {
  const kept: Buffer[] = [head]
  let bytes = 0
  const data = (chunk: Buffer): void => {
    kept.push(chunk)
    bytes += chunk.length
    if (bytes > MAX_EARLY_BYTES) socket.destroy() // not a client waiting for its 101
  }
  const leave = (): void => { socket.destroy() }
  socket.on('data', data)
  socket.on('end', leave) // the server's sockets allow half-open ones: a FIN would not close it
  socket.on('error', leave)
  const marked: UpgradeSocket = {
    socket,
    switched,
    take: () => {
      socket.off('data', data)
      socket.off('end', leave)
      socket.off('error', leave)
      // Not paused: unread, so the next reader's first 'data' listener starts the flow (as ws expects).
      ;(socket as { readableFlowing: boolean | null }).readableFlowing = null
      return Buffer.concat(kept)
    }
  }
  upgrades.set(req, marked)
  return marked
}

/** The raw connection of a request that arrived as an upgrade, if it was marked. */
export function upgradeOf (req: IncomingMessage): UpgradeSocket | undefined {
  return upgrades.get(req)
}

/** Whether `req` asks for a WebSocket: a GET with `websocket` among its Upgrade tokens. */
export function isWebSocket (req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.split(',').some(p => p.trim().toLowerCase() === 'websocket')
}
