import { Agent, request } from 'undici'
import { parseTxid } from './txid.js'
import type { Logger } from './logger.js'

// A subscription to LiteFS's `GET /events`: NDJSON, one object per line, never
// ending. `init` comes first on every subscription; LiteFS drops subscribers that
// read too slowly, so an ending stream is normal and is resubscribed with backoff.

export interface EventHandlers {
  /** `init` and `primaryChange`: hostname is the primary's ("" or absent: none known). */
  role: (isPrimary: boolean, hostname: string | undefined) => void
  /** `tx`: database `db` is now at `txid`. */
  tx: (db: string, txid: bigint) => void
  /** The subscription answered (`init` seen): read what the stream does not carry. */
  subscribed: () => void
  /** The stream ended or failed; the caller falls back to the files. */
  lost: () => void
}

const MAX_LINE = 1 << 20 // a line this long is not LiteFS talking: drop the connection
const MIN_BACKOFF = 50
const MAX_BACKOFF = 2000

function txidOf (value: unknown): bigint | undefined {
  if (typeof value === 'string') return parseTxid(value)
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  return undefined
}

export class EventsFeed {
  connected = false
  private readonly agent = new Agent({ connectTimeout: 2000 })
  private readonly abort = new AbortController()
  private backoff = MIN_BACKOFF
  private retry: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined

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
        bodyTimeout: 0 // an idle node sends nothing for hours; that is not a failure
      })
      if (res.statusCode !== 200) {
        await res.body.dump()
        throw new Error(`GET ${this.url} answered ${res.statusCode}`)
      }
      await this.read(res.body)
      this.log.warn({ url: this.url }, 'litefs-proxy: LiteFS event stream ended; polling the mount until it is back')
    } catch (err) {
      if (this.abort.signal.aborted) return
      this.log.warn({ url: this.url, err: (err as Error).message }, 'litefs-proxy: LiteFS event stream unavailable; polling the mount until it is back')
    }
    this.lose()
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
      const host = typeof data.hostname === 'string' ? data.hostname : undefined
      this.on.role(data.isPrimary === true, host)
      if (event.type === 'init') {
        this.connected = true
        this.backoff = MIN_BACKOFF
        this.on.subscribed()
      }
    } else if (event.type === 'tx' && typeof event.db === 'string') {
      const txid = txidOf(data.txID)
      if (txid !== undefined) this.on.tx(event.db, txid)
    }
  }

  private lose (): void {
    this.connected = false
    this.on.lost()
    this.retry = setTimeout(() => { this.running = this.subscribe() }, this.backoff)
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF)
  }
}
