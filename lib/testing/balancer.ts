/**
 * A non-sticky round-robin load balancer on 127.0.0.1, for the test process and
 * its clients: each incoming TCP connection goes to the next backend in turn
 * (clients that want one backend per request open one connection per request:
 * undici's `reset: true`). A backend that refuses the connection, or cannot be
 * reached, is skipped for the next one — nothing was sent, as a real balancer
 * retries a failed connect — and the client's connection is closed only when
 * every backend refused. Bytes are relayed untouched both ways; a backend that
 * dies mid-answer closes the client's connection.
 *
 * It knows nothing of namespaces: the cluster hands it a `connect` that reaches
 * its apps (the netns gateway, or plain TCP on loopback).
 */
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net'

export interface Backend { host: string, port: number }

export interface Balancer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Replace the backends (e.g. after an app moved); connections already made stay. */
  setBackends (backends: readonly Backend[]): void
  /** Stop listening and close every relayed connection. */
  close (): Promise<void>
}

export type Connect = (host: string, port: number) => Promise<Socket>

/** Plain TCP, for backends on loopback. */
export const directConnect: Connect = (host, port) => new Promise((resolve, reject) => {
  const s = tcpConnect({ host, port })
  s.once('connect', () => { s.removeListener('error', reject); resolve(s) })
  s.once('error', reject)
})

export async function startBalancer (backends: readonly Backend[], connect: Connect = directConnect): Promise<Balancer> {
  let list = [...backends]
  let next = 0
  const open = new Set<Socket>()
  const server = createServer((client) => {
    open.add(client)
    client.on('close', () => open.delete(client))
    client.on('error', () => {})
    client.pause()
    const first = next++
    void (async () => {
      for (let tried = 0; tried < list.length && !client.destroyed; tried++) {
        const b = list[(first + tried) % list.length]
        let upstream: Socket
        try { upstream = await connect(b.host, b.port) } catch { continue }
        if (client.destroyed) { upstream.destroy(); return }
        open.add(upstream)
        upstream.on('close', () => { open.delete(upstream); client.destroy() })
        upstream.on('error', () => client.destroy())
        client.on('close', () => upstream.destroy())
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
        return
      }
      client.destroy()
    })()
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setBackends (b) { list = [...b] },
    async close () {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of open) s.destroy()
      await closed
    },
  }
}
