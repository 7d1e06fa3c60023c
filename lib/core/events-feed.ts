import { Agent, buildConnector, request } from 'undici'
import { parseTxid } from './txid.js'
import type { Logger } from './logger.js'
import { reasonOf } from './errors.js'

// A subscription to LiteFS's `GET /events`: NDJSON, one object per line, never
// ending. `init` comes first on every subscription; LiteFS drops subscribers that
// read too slowly, so an ending stream is normal and is resubscribed with backoff.

export interface EventHandlers {
  /**
   * The subscription answered with its `init` line: LiteFS is up. `hostname` is
   * the primary's as LiteFS names it ("" or absent: none; the primary's own
   * `init` has none). Read what the stream does not carry (positions) now.
   */
  subscribed: (isPrimary: boolean, hostname: string | undefined) => void
  /** `primaryChange`: the same, later on the stream. */
  role: (isPrimary: boolean, hostname: string | undefined) => void
  /** `tx`: database `db` is now at `txid`. */
  tx: (db: string, txid: bigint) => void
  /**
   * The stream ended or failed (LiteFS stopping resets it: ECONNRESET). `first`:
   * the first failure since the stream last flowed (or since start).
   */
  lost: (reason: string, first: boolean) => void
}

const MAX_LINE = 1 << 20 // a line this long is not LiteFS talking: drop the connection
const MIN_BACKOFF = 50
const MAX_BACKOFF = 1000 // LiteFS restarts in about a second: come back soon after

/** The reason given when LiteFS closed the stream (it stops so), however undici words it. */
export const ENDED = "LiteFS's event stream ended"

function unrefConnector (connect: buildConnector.connector): buildConnector.connector {
  return (opts, callback) => connect(opts, (...args) => {
    args[1]?.unref()
    callback(...args)
  })
}

function txidOf (value: unknown): bigint | undefined {
  if (typeof value === 'string') return parseTxid(value)
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  return undefined
}

export class EventsFeed {
  connected = false
  // The stream never keeps a process alive (the app's server does): its socket
  // is unref'd, and each subscription gets a fresh one (`reset`), since undici
  // refs a kept-alive socket again when it reuses it.
  private readonly agent = new Agent({ connect: unrefConnector(buildConnector({ timeout: 2000 })) })
  private readonly abort = new AbortController()
  private backoff = MIN_BACKOFF
  private retry: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private failing = false

  constructor (
    private readonly url: string,
    private readonly on: EventHandlers,
    private readonly log: Logger
  ) {}

  start (): void {
    this.running = this.subscribe()
  }

  async close (): Promise<void> {
    this.abort.abort()
    clearTimeout(this.retry)
    await this.running
    await this.agent.close()
  }

  private async subscribe (): Promise<void> {
    try {
      const res = await request(this.url, {
        dispatcher: this.agent,
        signal: this.abort.signal,
        headersTimeout: 5000,
        reset: true,
        bodyTimeout: 0 // an idle node sends nothing for hours; that is not a failure
      })
      if (res.statusCode !== 200) {
        await res.body.dump()
        throw new Error(`GET ${this.url} answered ${res.statusCode}`)
      }
      await this.read(res.body)
      this.lose(ENDED)
    } catch (err) {
      if (this.abort.signal.aborted) return
      const e = err as Error & { code?: string }
      // A stream cut mid-chunk reaches undici's parser as "Invalid EOF state": it ended.
      this.lose(e.code === 'HPE_INVALID_EOF_STATE' || /EOF/i.test(e.message) ? ENDED : reasonOf(e))
    }
  }

  private async read (body: AsyncIterable<Buffer>): Promise<void> {
    let pending = ''
    for await (const chunk of body) {
      pending += chunk.toString('utf8')
      let nl: number
      while ((nl = pending.indexOf('\n')) !== -1) {
        this.line(pending.slice(0, nl))
        pending = pending.slice(nl + 1)
      }
      if (pending.length > MAX_LINE) {
        throw new Error('event line too long')
      }
    }
  }

  private line (text: string): void {
    if (text.trim() === '') return
    let event: { type?: unknown, db?: unknown, data?: Record<string, unknown> }
    try {
      event = JSON.parse(text)
    } catch {
      this.log.debug({ line: text.slice(0, 200) }, 'litefs-proxy: ignored a malformed LiteFS event')
      return
    }
    const data = event?.data
    if (typeof data !== 'object' || data === null) return
    if (event.type === 'init' || event.type === 'primaryChange') {
      const host = typeof data.hostname === 'string' && data.hostname !== '' ? data.hostname : undefined
      if (event.type === 'init') {
        this.connected = true
        this.failing = false
        this.backoff = MIN_BACKOFF
        this.on.subscribed(data.isPrimary === true, host)
      } else if (this.connected) {
        this.on.role(data.isPrimary === true, host)
      }
    } else if (event.type === 'tx' && typeof event.db === 'string' && this.connected) {
      const txid = txidOf(data.txID)
      if (txid !== undefined) this.on.tx(event.db, txid)
    }
  }

  private lose (reason: string): void {
    const first = !this.failing
    this.failing = true
    this.connected = false
    this.on.lost(reason, first)
    this.retry = setTimeout(() => { this.running = this.subscribe() }, this.backoff)
    this.retry.unref() // the stream never keeps a process alive; the app's server does
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF)
  }
}
