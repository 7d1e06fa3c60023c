/**
 * A fault: a replica's replication stream held back while its mount and API stay
 * live. With `pausableReplication`, each replica reaches the primary's LiteFS API
 * through a relay on 127.0.0.1 that the test controls; `pause()` stops passing
 * bytes both ways (the connection stays open), so the replica stays behind until
 * `resume()`, as the dev cluster's `pauseReplication` does. Which port the
 * replica is told to use is the config's job (`litefs-config.ts`).
 */
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'

export class ReplicationRelay {
  private server: NetServer | undefined
  private relayPort = 0
  private readonly relayed = new Set<Socket>()
  private paused = false

  /** `primaryPort` is asked on every new connection: the relay follows the primary. */
  constructor (private readonly primaryPort: () => number) {}

  /** The port replicas connect to; 0 before `open()`. */
  get port (): number { return this.relayPort }

  /** Listen for this node's replication stream; each connection is relayed to whichever node is primary then. */
  async open (): Promise<void> {
    const relay = createNetServer((client) => {
      const upstream = netConnect(this.primaryPort(), '127.0.0.1')
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        this.relayed.add(a)
        a.on('data', (chunk: Buffer) => { if (!b.write(chunk)) a.pause() })
        b.on('drain', () => { if (!this.paused) a.resume() })
        a.on('error', () => b.destroy())
        a.on('close', () => { this.relayed.delete(a); b.destroy() })
        if (this.paused) a.pause()
      }
    })
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
    this.server = relay
    this.relayPort = (relay.address() as AddressInfo).port
  }

  pause (): void {
    this.paused = true
    for (const s of this.relayed) s.pause()
  }

  resume (): void {
    this.paused = false
    for (const s of this.relayed) s.resume()
  }

  close (): void {
    for (const s of this.relayed) s.destroy()
    this.server?.close()
  }
}
