// The client side of the deployment test (test/docker/compose.test.ts): virtual
// users writing notes and reading them back through the load balancer's
// published port, each with its own cookie jar, and the record of every request
// they made, checked afterwards. It owns the HTTP traffic and the figures; the
// test owns Docker (starting, stopping, cleaning up).
//
// Both example apps (Python behind `serve`, Fastify) speak the same API:
//   POST /notes {"user","text"} -> 201 {"id"};  GET /notes?user=U -> 200 {"notes":[{"id","text"}]}
import { randomUUID } from 'node:crypto'
import { Agent, request } from 'undici'

export interface Answer {
  status: number // 0: no answer (connection error, timeout)
  body: any
  headers: Record<string, string | string[] | undefined>
  upstream: string // the node's address nginx says answered (X-Upstream), '' if none
  began: number // performance.now() at send
  ended: number
}

/** One write and the read that followed it. */
export interface Write {
  user: string
  text: string
  answer: Answer
  code?: string // the JSON error body's code (litefs-proxy's answers)
  retryAfter?: string
  cookie?: string // the litefs-txid cookie the answer set
  read?: { status: number, seen: boolean, upstream: string, code?: string }
}

const agent = new Agent({ connections: 32, keepAliveTimeout: 1_000 })
export const closeAgent = async (): Promise<void> => { await agent.close() }

/** An HTTP request, bounded: a request nobody answers in 30 s is a failure, not a hang. */
export async function send (url: string, init: { method?: 'GET' | 'POST', body?: string, headers?: Record<string, string> } = {}): Promise<Answer> {
  const began = performance.now()
  try {
    const res = await request(url, { method: init.method ?? 'GET', body: init.body, headers: init.headers, dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000 })
    const text = await res.body.text()
    let body: any = text
    try { body = JSON.parse(text) } catch {}
    const up = String(res.headers['x-upstream'] ?? '')
    // nginx lists every address it tried ("a:8080, b:8080"): the last one answered.
    return { status: res.statusCode, body, headers: res.headers, upstream: up.split(',').pop()?.trim() ?? '', began, ended: performance.now() }
  } catch (err) {
    return { status: 0, body: String(err), headers: {}, upstream: '', began, ended: performance.now() }
  }
}

const ok = (status: number): boolean => status >= 200 && status <= 299

/** A user: a cookie jar, the user's writes, and the notes it expects. */
export class User {
  readonly jar = new Map<string, string>()
  readonly writes: Write[] = []
  constructor (readonly base: string, readonly name: string) {}

  private cookies (): Record<string, string> {
    return this.jar.size === 0 ? {} : { cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ') }
  }

  private keep (header: string | string[] | undefined): string | undefined {
    let txid: string | undefined
    for (const c of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
      const pair = c.split(';')[0]
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      this.jar.set(name, pair.slice(eq + 1).trim())
      if (name === 'litefs-txid' || name === '__txid') txid = pair.trim()
    }
    return txid
  }

  /** POST a unique note, then at once GET the user's notes with the cookies held. */
  async pair (read = true): Promise<Write> {
    const text = `${this.name}-${this.writes.length}-${randomUUID()}`
    const answer = await send(`${this.base}/notes`, { method: 'POST', body: JSON.stringify({ user: this.name, text }), headers: { 'content-type': 'application/json', ...this.cookies() } })
    const w: Write = { user: this.name, text, answer }
    this.writes.push(w)
    if (typeof answer.body === 'object' && answer.body !== null && typeof answer.body.code === 'string') w.code = answer.body.code
    const ra = answer.headers['retry-after']
    if (ra !== undefined) w.retryAfter = String(ra)
    w.cookie = this.keep(answer.headers['set-cookie'])
    if (read && ok(answer.status)) {
      const r = await send(`${this.base}/notes?user=${encodeURIComponent(this.name)}`, { headers: this.cookies() })
      this.keep(r.headers['set-cookie'])
      w.read = { status: r.status, seen: r.status === 200 && texts(r.body).includes(text), upstream: r.upstream }
      if (typeof r.body === 'object' && r.body !== null && typeof r.body.code === 'string') w.read.code = r.body.code
    }
    return w
  }

  /**
   * The user's notes as the cluster has them now: read with the user's cookies,
   * so a replica first catches up with everything this user was acknowledged.
   * Retried (bounded) while the answer is not a 200.
   */
  async notes (): Promise<string[]> {
    for (let i = 0; ; i++) {
      const r = await send(`${this.base}/notes?user=${encodeURIComponent(this.name)}`, { headers: this.cookies() })
      if (r.status === 200) return texts(r.body)
      if (i >= 20) throw new Error(`GET /notes?user=${this.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)} (20 tries)`)
      await sleep(500)
    }
  }
}

function texts (body: any): string[] {
  return Array.isArray(body?.notes) ? body.notes.map((n: any) => String(n.text)) : []
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** `users` users, each doing `pairs` write→read pairs in turn. */
export async function pairs (base: string, prefix: string, users: number, pairsEach: number): Promise<User[]> {
  const all = Array.from({ length: users }, (_, i) => new User(base, `${prefix}-u${i}`))
  await Promise.all(all.map(async u => { for (let i = 0; i < pairsEach; i++) await u.pair() }))
  return all
}

/**
 * Users writing (and reading back) until `running()` says stop or `maxEach`
 * pairs each; after a failed write a user waits 100 ms, as a client would
 * before trying again.
 */
export async function load (base: string, prefix: string, users: number, running: () => boolean, maxEach = 2_000): Promise<User[]> {
  const all = Array.from({ length: users }, (_, i) => new User(base, `${prefix}-u${i}`))
  await Promise.all(all.map(async u => {
    for (let i = 0; i < maxEach && running(); i++) {
      const w = await u.pair()
      if (!ok(w.answer.status)) await sleep(100)
    }
  }))
  return all
}

export interface Figures {
  writes: number
  acknowledged: number // 2xx
  pairs: number // acknowledged writes whose read was answered 200
  stale: number // such reads without the note, although the note is in the database
  lost: number // acknowledged writes not in the database at the end
  doubled: number // notes in the database more than once
  notOk: Record<string, number> // non-2xx writes by status (and code)
  appliedNotOk: number // non-2xx writes in the database all the same
  onReplica: number // acknowledged writes that nginx sent to a replica (forwarded to the primary)
  readsNot200: Record<string, number> // the reads after acknowledged writes that were not 200, by status (and code)
}

/**
 * The figures over every user's writes, against each user's notes as the
 * cluster has them at the end (`final`, from User.notes()). `replica(addr)`
 * says whether the node at that address was a replica when the write was sent.
 */
export function figures (users: User[], final: Map<User, string[]>, replica: (w: Write) => boolean): Figures {
  const f: Figures = { writes: 0, acknowledged: 0, pairs: 0, stale: 0, lost: 0, doubled: 0, notOk: {}, appliedNotOk: 0, onReplica: 0, readsNot200: {} }
  for (const u of users) {
    const counts = new Map<string, number>()
    for (const t of final.get(u) ?? []) counts.set(t, (counts.get(t) ?? 0) + 1)
    for (const w of u.writes) {
      f.writes++
      const n = counts.get(w.text) ?? 0
      if (n > 1) f.doubled++
      if (ok(w.answer.status)) {
        f.acknowledged++
        if (n === 0) f.lost++
        if (replica(w)) f.onReplica++
        if (w.read?.status === 200) {
          f.pairs++
          if (!w.read.seen && n > 0) f.stale++
        } else if (w.read !== undefined) {
          const k = w.read.code === undefined ? String(w.read.status) : `${w.read.status} ${w.read.code}`
          f.readsNot200[k] = (f.readsNot200[k] ?? 0) + 1
        }
      } else {
        const k = w.code === undefined ? String(w.answer.status) : `${w.answer.status} ${w.code}`
        f.notOk[k] = (f.notOk[k] ?? 0) + 1
        if (n > 0) f.appliedNotOk++
      }
    }
  }
  return f
}

export const show = (f: Figures): string =>
  `${f.writes} writes, ${f.acknowledged} acknowledged (${f.onReplica} of them sent to a replica), ${f.pairs} write→read pairs: ` +
  `stale ${f.stale}, lost ${f.lost}, doubled ${f.doubled}` +
  (Object.keys(f.notOk).length > 0 ? `; not acknowledged: ${JSON.stringify(f.notOk)} (applied all the same: ${f.appliedNotOk})` : '') +
  (Object.keys(f.readsNot200).length > 0 ? `; reads not 200: ${JSON.stringify(f.readsNot200)}` : '')

/** The final notes of every user, each read with its own cookies. */
export async function finalNotes (users: User[]): Promise<Map<User, string[]>> {
  const out = new Map<User, string[]>()
  for (const u of users) out.set(u, await u.notes())
  return out
}
