// The failover suite's load and observation: 10 clients (by default) through
// the balancer, each writing unique tokens and reading each acknowledged one
// back with the cookie its write got, and a poller that records who holds the
// lease in Consul every 100 ms. Both only record (test/helpers/failover-history.ts
// checks); neither asserts.
import { randomUUID } from 'node:crypto'
import { Agent, request } from 'undici'
import type { ConsulCluster } from '../../../lib/testing/litefs-cluster.js'
import { now, type LeaseSample, type RequestRecord } from '../../helpers/failover-history.js'

export interface Running { stop (): Promise<void> }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const ok = (s: number | undefined): boolean => s !== undefined && s >= 200 && s < 300

/** `clients` loops of write-then-read-back through `url`, until stopped. A request gives up after `giveUpMs` (then recorded without status). */
export function startClients (url: string, clients: number, giveUpMs: number, into: RequestRecord[]): Running {
  let running = true
  const dispatcher = new Agent({ headersTimeout: giveUpMs, bodyTimeout: giveUpMs, connectTimeout: 5_000 })
  const call = async (rec: RequestRecord, method: 'POST' | 'GET', path: string, cookie?: string): Promise<{ setCookie?: string, body?: any }> => {
    const headers: Record<string, string> = {}
    if (method === 'POST') headers['content-type'] = 'application/json'
    if (cookie !== undefined) headers.cookie = cookie
    try {
      // reset: one connection per request, so the balancer sends each request to the next node.
      const res = await request(url + path, { method, headers, body: method === 'POST' ? JSON.stringify({ token: rec.token }) : undefined, dispatcher, reset: true })
      const text = await res.body.text()
      rec.end = now()
      rec.status = res.statusCode
      const node = res.headers['x-node']
      rec.node = typeof node === 'string' ? node : undefined
      const set = res.headers['set-cookie']
      const first = Array.isArray(set) ? set[0] : set
      let body: any
      try { body = JSON.parse(text) } catch {}
      if (res.statusCode >= 400 && typeof body?.code === 'string') rec.code = body.code
      return { setCookie: first?.split(';')[0], body }
    } catch (err) {
      rec.end = now()
      rec.error = (err as Error).message
      return {}
    }
  }
  const loop = async (client: number): Promise<void> => {
    for (let seq = 0; running; seq++) {
      const token = `c${client}-${seq}-${randomUUID().slice(0, 8)}`
      const w: RequestRecord = { kind: 'write', token, client, start: now(), end: 0, status: undefined, node: undefined, cookie: undefined }
      into.push(w)
      const written = await call(w, 'POST', '/tokens')
      w.cookie = written.setCookie
      if (!ok(w.status)) { await sleep(50); continue }
      if (w.cookie === undefined) continue
      const r: RequestRecord = { kind: 'read', token, client, start: now(), end: 0, status: undefined, node: undefined, cookie: w.cookie }
      into.push(r)
      const read = await call(r, 'GET', `/tokens/${token}`, w.cookie)
      if (ok(r.status)) r.found = read.body?.found === true
    }
  }
  const loops = Array.from({ length: clients }, (_, i) => loop(i))
  return {
    async stop () {
      running = false
      await Promise.all(loops)
      await dispatcher.close()
    }
  }
}

/** Polls Consul's lease holder every `everyMs` until stopped. */
export function pollLease (cluster: ConsulCluster, into: LeaseSample[], everyMs = 100): Running {
  let running = true
  const done = (async () => {
    while (running) {
      const at = now()
      try {
        const holder = await cluster.leaseHolder()
        into.push({ at, atEnd: now(), holder: holder.hostname })
      } catch (err) {
        into.push({ at, atEnd: now(), holder: undefined, error: (err as Error).message })
      }
      await sleep(everyMs)
    }
  })()
  return { async stop () { running = false; await done } }
}
