import { performance } from 'node:perf_hooks'
import { request, type Dispatcher } from 'undici'
import type { Logger } from './logger.js'
import { warnings, type Warnings } from './warnings.js'

// The lease fence (DESIGN §3.5): with a Consul lease, LiteFS does not fence. A
// primary cut off from Consul keeps accepting writes (its renewal hangs with
// no timeout), and another node takes the lease once the session lapses: two
// primaries, and the old one's writes are discarded when the partition heals
// (fixtures README, "With a Consul lease"). So litefs-proxy asks Consul itself
// whether the lease is this node's, and a write is let through, and its
// success answered, only while such a confirmation is recent enough.
//
// How recent: LiteFS's lease is a Consul lock on one key, held by a session
// with a TTL and a lock-delay (consul/consul.go). While the key names this
// node under a live session, nobody else holds it; if the session is
// invalidated one instant after Consul answered, Consul still refuses the lock
// to anyone for lock-delay. So an answer that said "this node" at the moment
// its question was SENT proves that no other node can hold the lease until
// `sentAt + lockDelay`. The fence counts a confirmation for `lockDelay − MARGIN`
// (MARGIN covers Consul servers answering a moment late and the instant between
// the check and the bytes leaving), and never for more: not the TTL, which a
// session whose renewal hung may already be most of the way through.
//
// Cost: one `GET /v1/kv/<key>?consistent` per confirmation, made only while
// writes ask for it (touch), at most one in flight, and each one that starts
// serves every write that joined it. An idle primary asks nothing.

/** The Consul lease LiteFS uses (litefs.yml `lease.consul`), as litefs-proxy needs it. */
export interface ConsulLease {
  /** Consul's URL (`lease.consul.url`); a path in it is LiteFS's key prefix, a password in it the ACL token. */
  url: string
  /** The lease key (`lease.consul.key`). */
  key: string
  /** `lease.consul.lock-delay` in ms (LiteFS's default: 1 s). */
  lockDelay: number
}

/** What the fence knows: whose the lease is, by Consul's last answer. */
export type FenceView = 'mine' | 'other' | 'none' | 'unknown'

/** Taken off lock-delay for Consul's and this process's own delays (ms). */
export const MARGIN = 200
/** While the fence is closed and writes want it, Consul is asked this often (ms). */
const RETRY = 100
/** Writes stopped this long ago (ms): stop asking; the next write asks again. */
const IDLE = 1000

/** Where Consul keeps LiteFS's lease and how to ask for it. */
export function consulTarget (lease: ConsulLease): { origin: string, path: string, token: string | undefined } {
  const url = new URL(lease.url)
  // LiteFS: the URL's path is a key prefix (path.Join(prefix, key)); its password the ACL token.
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '')
  const key = [prefix, lease.key.replace(/^\/+|\/+$/g, '')].filter(s => s !== '').join('/')
  const token = url.password === '' ? undefined : decodeURIComponent(url.password)
  return { origin: url.origin, path: `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}?consistent`, token }
}

/**
 * Whose the lease is in one `GET /v1/kv/<key>` answer: `none` when the key is
 * absent (404) or held by no session; the holder's hostname otherwise (LiteFS
 * stores `{"hostname","advertise-url"}` as the value).
 */
export function leaseHolder (status: number, body: string): { holder: string | undefined } | undefined {
  if (status === 404) return { holder: undefined }
  if (status !== 200) return undefined
  let entries: unknown
  try { entries = JSON.parse(body) } catch { return undefined }
  const entry = Array.isArray(entries) ? entries[0] as { Session?: unknown, Value?: unknown } | undefined : undefined
  if (entry === undefined || typeof entry !== 'object' || entry === null) return undefined
  if (typeof entry.Session !== 'string' || entry.Session === '') return { holder: undefined }
  if (typeof entry.Value !== 'string') return undefined
  let info: unknown
  try { info = JSON.parse(Buffer.from(entry.Value, 'base64').toString('utf8')) } catch { return undefined }
  const hostname = (info as { hostname?: unknown } | null)?.hostname
  return typeof hostname === 'string' && hostname !== '' ? { holder: hostname } : undefined
}

export class LeaseFence {
  /** Consul's last answer, as seen from this node. */
  view: FenceView = 'unknown'
  /** The hostname holding the lease by that answer, if another node. */
  holder: string | undefined
  /** performance.now() until which this node may acknowledge local writes (−Infinity: not now). */
  openUntil = -Infinity
  /** How long one confirmation counts (ms). */
  readonly window: number

  private readonly target: { origin: string, path: string, token: string | undefined }
  private inFlight: Promise<void> | undefined
  private queued: Promise<boolean> | undefined
  private lastTouch = -Infinity
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly warn: Warnings
  /** The key's URL, as the warnings name it. */
  private readonly where: string
  /** Why the last question got no usable answer (a misconfiguration is said once: warnings.ts). */
  private problem = ''

  /**
   * @param self this node's lease hostname now (LiteFS's `/info` on the primary), undefined while unknown
   * @param changed called whenever the fence opens or closes (NodeState releases held writes)
   */
  constructor (
    lease: ConsulLease,
    private readonly self: () => Promise<string | undefined>,
    private readonly dispatcher: Dispatcher,
    private readonly log: Logger,
    private readonly changed: (open: boolean) => void
  ) {
    this.target = consulTarget(lease)
    this.window = lease.lockDelay - MARGIN
    this.warn = warnings(log)
    this.where = `${this.target.origin}${this.target.path.replace(/\?consistent$/, '')}`
  }

  /** Whether a local write may be acknowledged at `now` (performance.now()). */
  isOpen (now = performance.now()): boolean {
    return now < this.openUntil
  }

  /**
   * A write wants the fence: keep confirming in the background while writes
   * come, so a confirmation is nearly always fresh when one is needed. Cheap:
   * a clock read, and a timer only when none runs.
   */
  touch (now = performance.now()): void {
    this.lastTouch = now
    if (this.timer === undefined && !this.closed) this.schedule(now)
  }

  /**
   * Resolves with whether the lease is this node's, by an answer to a question
   * sent after this call (so it covers whatever happened before it).
   */
  confirm (): Promise<boolean> {
    if (this.closed) return Promise.resolve(false)
    // A question not sent yet will be sent after this call: it answers for it too.
    if (this.queued !== undefined) return this.queued
    if (this.inFlight === undefined) return this.ask()
    // The one in flight was sent before this call: join the next one, after it.
    this.queued = this.inFlight.then(() => {
      this.queued = undefined
      return this.ask()
    })
    return this.queued
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    this.setOpen(-Infinity)
  }

  private schedule (now: number): void {
    // Open: ask again when a third of the window is left, so a write arriving
    // then finds it still open. Closed: every RETRY ms, not in a tight loop.
    const next = this.isOpen(now) ? this.openUntil - this.window / 3 - now : RETRY
    this.timer = setTimeout(this.tick, Math.max(0, next))
    this.timer.unref()
  }

  private readonly tick = (): void => {
    this.timer = undefined
    const now = performance.now()
    if (this.closed || now - this.lastTouch > IDLE) return
    void this.confirm().then(() => { if (this.timer === undefined && !this.closed) this.schedule(performance.now()) })
  }

  private ask (): Promise<boolean> {
    const sentAt = performance.now()
    let mine = false
    const done = this.question().then(answer => {
      if (this.closed) return
      if (answer === undefined) {
        this.view = 'unknown'
      } else {
        this.view = answer.mine ? 'mine' : answer.holder === undefined ? 'none' : 'other'
        this.holder = answer.mine ? undefined : answer.holder
      }
      this.say(answer?.self)
      mine = this.view === 'mine'
      // A later answer never shortens an open window an earlier one granted, and
      // never opens one past what its own question proves.
      if (mine) this.setOpen(Math.max(this.openUntil, sentAt + this.window))
      else this.setOpen(-Infinity)
    }).finally(() => { this.inFlight = undefined })
    this.inFlight = done
    return done.then(() => mine)
  }

  /** One question to Consul: whose is the lease? Undefined when Consul did not answer usably in time. */
  private async question (): Promise<{ mine: boolean, holder: string | undefined, self: string | undefined } | undefined> {
    try {
      const self = await this.self()
      const headers: Record<string, string> = { accept: 'application/json' }
      if (this.target.token !== undefined) headers['x-consul-token'] = this.target.token
      // An answer later than the window proves nothing any more: give up then.
      const res = await request(this.target.origin + this.target.path, { dispatcher: this.dispatcher, headers, headersTimeout: this.window, bodyTimeout: this.window })
      const body = await res.body.text()
      const holder = leaseHolder(res.statusCode, body)
      if (holder === undefined) {
        this.problem = `it answered ${res.statusCode} with something else than a lease`
        return undefined
      }
      return { mine: self !== undefined && holder.holder === self, holder: holder.holder, self }
    } catch (err) {
      this.problem = (err as { code?: string }).code ?? (err as Error).message // ECONNREFUSED; or LiteFS's /info, asked first
      this.log.debug({ err: (err as Error).message }, 'litefs-proxy: could not ask Consul whose the lease is')
      return undefined
    }
  }

  /**
   * What Consul's answer says about the settings, once per cause (warnings.ts):
   * no usable answer (the wrong URL, Consul down), or nobody holding the key
   * while LiteFS says this node is the primary — LiteFS holds its own key, so
   * that is almost always another key (or key prefix in the URL) than LiteFS's.
   * A confirmed lease clears both.
   */
  private say (self: string | undefined): void {
    const where = this.where
    if (this.view === 'mine') {
      this.warn.clear('LITEFS_CONSUL', where, `Consul at ${this.target.origin} confirms this node's lease now`)
      return
    }
    const held = 'this node\'s local writes are held, then answered 503 LITEFS_LEASE_UNCONFIRMED'
    if (this.view === 'unknown') {
      this.warn.say('LITEFS_CONSUL', where, `asking Consul at ${where} whose the lease is failed (${this.problem}): is "consul.url" the Consul LiteFS uses (litefs.yml's lease.consul.url)? Until Consul answers, ${held}`, { consul: this.target.origin })
    } else if (this.view === 'none' && self !== undefined) {
      this.warn.say('LITEFS_CONSUL', where, `Consul at ${this.target.origin} says nobody holds ${where.slice(this.target.origin.length)}, while LiteFS says this node (${self}) is the primary: its lease ended (a pause, a partition), or "consul.key" is not LiteFS's lease.consul.key (or the key prefix in "consul.url" differs). Until Consul names this node, ${held}`, { consul: this.target.origin })
    }
  }

  private setOpen (until: number): void {
    const was = this.isOpen()
    this.openUntil = until
    const now = this.isOpen()
    if (was !== now) this.changed(now)
  }
}

/**
 * This node's lease hostname as its LiteFS says it: `/info`'s `primary.hostname`
 * while it is primary (the only time the fence asks). Remembered once known:
 * a node's lease hostname is its configuration's.
 */
export function hostnameFromInfo (api: string, dispatcher: Dispatcher): () => Promise<string | undefined> {
  let known: string | undefined
  const url = new URL('/info', api).href
  return async () => {
    if (known !== undefined) return known
    const res = await request(url, { dispatcher, headersTimeout: 1000, bodyTimeout: 1000 })
    const info = await res.body.json() as { isPrimary?: unknown, primary?: { hostname?: unknown } }
    const hostname = info?.primary?.hostname
    if (info?.isPrimary === true && typeof hostname === 'string' && hostname !== '') known = hostname
    return known
  }
}
