import type { IncomingMessage } from 'node:http'

/**
 * The origin of the server `req` arrived on, as seen from this host: its
 * socket's local address and port (`http://127.0.0.1:3000`,
 * `http://[::1]:3000`), to be spoken to in the protocol `req` came in (an
 * HTTP/2 request: h2c, all a cleartext node:http2 server speaks). Undefined for
 * a TLS socket: its certificate names the host, not the address.
 */
export function ownOrigin (req: IncomingMessage): string | undefined {
  const socket = req.socket as IncomingMessage['socket'] & { encrypted?: boolean }
  if (socket.encrypted === true) return undefined
  const address = socket.localAddress
  const port = socket.localPort
  if (address === undefined || port === undefined) return undefined
  return address.includes(':') ? `http://[${address}]:${port}` : `http://${address}:${port}`
}
