import type { IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { addForwardedHeaders, isForwardedMetadata, type ForwardedView } from '../core/forwarded-headers.js'

// WebSocket (and any other) upgrades are passed to the app as they are: the
// request head re-sent to the target with this node's forwarded headers, then
// bytes piped both ways until either side ends. An upgrade is neither a read to
// hold nor a write to forward: it is a connection the app itself serves.

/** Pipe an upgrade request to the app at `host:port`. */
export function passUpgrade (req: IncomingMessage, client: Duplex, head: Buffer, target: { host: string, port: number }, view: ForwardedView): void {
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !isForwardedMetadata(name)) headers[name] = value
  }
  addForwardedHeaders(headers, req, view)
  let lines = `${req.method as string} ${req.url as string} HTTP/1.1\r\n`
  for (const [name, value] of Object.entries(headers)) {
    for (const v of ([] as string[]).concat(value)) lines += `${name}: ${v}\r\n`
  }
  const app: Socket = connect(target.port, target.host)
  const fail = (): void => {
    if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n{"error":"the app did not take the upgrade","code":"LITEFS_TARGET_FAILED"}')
  }
  app.once('error', () => { if (app.bytesRead === 0) fail(); else client.destroy() })
  client.once('error', () => app.destroy())
  app.once('connect', () => {
    app.write(lines + '\r\n')
    if (head.length > 0) app.write(head)
    app.pipe(client)
    client.pipe(app)
  })
  app.once('close', () => { client.destroy() })
  client.once('close', () => { app.destroy() })
}
