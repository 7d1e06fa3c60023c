/**
 * Small waiting and lookup helpers the harness's modules share: sleeping, a bound
 * on a promise (a FUSE call on a hung mount never returns), free loopback ports,
 * and the TXID of a `-pos` file's text. Nothing here knows about nodes.
 */
import { createServer, type Server } from 'node:net'

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Resolves with `p`, or rejects after `ms` (a FUSE call on a hung mount would never return). */
export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms) })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Distinct free ports on 127.0.0.1: all listened on at once so none repeats, then released for LiteFS. */
export async function freePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((r, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', r) })
    }
    return servers.map((s) => (s.address() as { port: number }).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  }
}

/** `<16 hex TXID>/<checksum>\n` → the TXID. */
export function parsePosition (text: string): bigint | undefined {
  const m = /^([0-9a-fA-F]{16})\//.exec(text)
  return m ? BigInt('0x' + m[1]) : undefined
}
