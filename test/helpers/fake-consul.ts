// A stand-in for Consul's KV endpoint as LiteFS's lease uses it
// (superfly/litefs consul/consul.go): the lease key holds
// `{"hostname","advertise-url"}` locked by a session; an invalidated session
// (Behavior "delete") removes the key. Only what the lease fence asks is served:
// `GET /v1/kv/<key>`. Tests set who holds the lease, make Consul answer late or
// not at all, and count the questions.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export class FakeConsul {
  /** The lease holder's hostname; undefined: the key is absent (404). */
  holder: string | undefined
  /** Answer a question only once this resolves (a slow or partitioned Consul). */
  gate: Promise<void> | undefined
  /** Answer with this status and body instead (a broken Consul). */
  broken: { status: number, body: string } | undefined
  /** Questions asked, with the path and token of each. */
  readonly asked: Array<{ path: string, token: string | undefined }> = []
  private readonly server: Server
  private readonly held = new Set<ServerResponse>()

  constructor (holder?: string) {
    this.holder = holder
    this.server = createServer((req, res) => { void this.answer(req, res) })
  }

  static async start (holder?: string): Promise<FakeConsul> {
    const c = new FakeConsul(holder)
    await new Promise<void>(resolve => c.server.listen(0, '127.0.0.1', resolve))
    return c
  }

  get url (): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  private async answer (req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.asked.push({ path: req.url as string, token: req.headers['x-consul-token'] as string | undefined })
    this.held.add(res)
    res.on('close', () => this.held.delete(res))
    if (this.gate !== undefined) await this.gate
    if (res.destroyed) return
    if (this.broken !== undefined) {
      res.writeHead(this.broken.status).end(this.broken.body)
      return
    }
    if (this.holder === undefined) {
      res.writeHead(404).end()
      return
    }
    const key = (req.url as string).replace(/^\/v1\/kv\//, '').replace(/\?.*$/, '')
    const value = Buffer.from(JSON.stringify({ hostname: this.holder, 'advertise-url': `http://${this.holder}:20202` })).toString('base64')
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify([{ LockIndex: 1, Key: decodeURIComponent(key), Flags: 0, Value: value, Session: '3f1c8e2a-0000-4000-8000-000000000001', CreateIndex: 12, ModifyIndex: 14 }]))
  }

  async close (): Promise<void> {
    for (const res of this.held) res.destroy()
    this.server.closeAllConnections()
    await new Promise(resolve => this.server.close(resolve))
  }
}
