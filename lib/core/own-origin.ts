import type { IncomingMessage } from 'node:http'

/**
 * The origin of the server `req` arrived on, as seen from this host: its
 * socket's local address and port (`http://127.0.0.1:3000`,
 * `http://[::1]:3000`). Undefined when that server cannot be spoken to in
 * plain HTTP/1.1, which is how the core forwards: a TLS socket or an HTTP/2
 * session (Fastify's `http2` servers need not accept HTTP/1.1).
 */
export function ownOrigin (req: IncomingMessage): string | undefined {
  const socket = req.socket as IncomingMessage['socket'] & { encrypted?: boolean }
  if (socket.encrypted === true || req.httpVersionMajor === 2) return undefined
  const address = socket.localAddress
  const port = socket.localPort
  if (address === undefined || port === undefined) return undefined
  return address.includes(':') ? `http://[${address}]:${port}` : `http://${address}:${port}`
}
