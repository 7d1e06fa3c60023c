import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'

// Declining an upgrade, as RFC 9110 §7.8 lets a server: the request, its
// `Upgrade` removed, goes back to the HTTP server, body and all, and is served
// as any other. Node hands every request that asks for another protocol to the
// server's 'upgrade' listeners, off its HTTP parser, once there is one; a
// WebSocket listener (ws, Socket.IO) then answered `Upgrade: h2c` — which
// `curl --http2` sends over plain HTTP on every request, POSTs included — with
// its own 400 or 405, and the request was never run (walk 7). litefs-proxy
// decides WebSocket handshakes (node-upgrade.ts, sidecar/upgrade.ts); any
// other upgrade comes here.

/**
 * Hand `socket` back to `server`'s HTTP parser, `pending` first (what the
 * client sent that nobody read). A TLS connection goes where an https server
 * takes its connections once their handshake is done ('secureConnection'):
 * 'connection' would start a second TLS handshake inside the first.
 */
export function giveBack (server: Server, socket: Duplex, pending: Buffer): void {
  if (socket.destroyed) return
  if (pending.length > 0) socket.unshift(pending)
  server.emit((socket as Duplex & { encrypted?: boolean }).encrypted === true ? 'secureConnection' : 'connection', socket)
}

/** The request head again, without `Upgrade` and without the `upgrade` token of `Connection`. */
export function headWithoutUpgrade (req: IncomingMessage): Buffer {
  let head = `${req.method as string} ${req.url as string} HTTP/${req.httpVersion}\r\n`
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    let value = raw[i + 1]
    if (name === 'upgrade') continue
    if (name === 'connection') {
      value = value.split(',').map(t => t.trim()).filter(t => t !== '' && t.toLowerCase() !== 'upgrade').join(', ')
      if (value === '') continue
    }
    head += `${raw[i]}: ${value}\r\n`
  }
  return Buffer.from(head + '\r\n', 'latin1')
}

/** Serve `req` (an upgrade Node handed over with `socket` and `head`) as a plain request of `server`. */
export function decline (server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  giveBack(server, socket, Buffer.concat([headWithoutUpgrade(req), head]))
}
