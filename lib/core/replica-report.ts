import { createHmac, timingSafeEqual } from 'node:crypto'
import { request, type Dispatcher } from 'undici'
import type { Logger } from './logger.js'
import { HEARTBEAT, type PeerReport } from './peer-table.js'
import { formatTxid } from './txid.js'
import { PEER_HEADER } from './own-headers.js'

// A replica's litefs-proxy tells the primary's where it is (peer-table.ts keeps
// it there): its hostname, whether it is a candidate, its position per
// database. LiteFS's API tells the primary nothing of its replicas; each
// replica knows its own position (the event stream), its candidacy (LiteFS's
// /info) and how to reach the primary (primaryUrl), so reports flow from
// replicas to the primary on any platform, and follow a failover by themselves.
//
// One small POST per report, on a kept-alive connection: sent when a position
// changes (at most one in flight; changes meanwhile ride on the next) and every
// HEARTBEAT ms otherwise, so a silent peer is a gone peer. Each report is
// signed with the shared secret (HMAC over a timestamp and the body): the
// endpoint accepts only its peers.

export { PEER_HEADER }
/** A report signed longer ago than this (ms), or that far ahead, is refused (a replay). */
export const SKEW = 30_000

export function signReport (secret: string, body: string, now = Date.now()): string {
  return `${now}.${createHmac('sha256', secret).update(`${now}\n${body}`).digest('base64url')}`
}

/** Whether `signature` signs `body` with one of `secrets`, recently enough. */
export function verifyReport (secrets: readonly string[], body: string, signature: string | undefined, now = Date.now()): boolean {
  const m = signature === undefined ? null : /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(signature)
  if (m === null) return false
  const at = Number(m[1])
  if (Math.abs(now - at) > SKEW) return false
  const mac = Buffer.from(m[2])
  return secrets.some(secret => {
    const expected = Buffer.from(createHmac('sha256', secret).update(`${at}\n${body}`).digest('base64url'))
    return timingSafeEqual(expected, mac)
  })
}

export interface ReporterSource {
  /** This node's name in the primary's table. */
  hostname: string
  /** This process, among those that report `hostname` (PeerReport.instance). */
  instance: string
  /** Whether LiteFS lets this node become primary (`/info`'s `candidate`); undefined while unknown. */
  candidate: () => boolean | undefined
  /** Where the primary's litefs-proxy takes reports now, undefined while none is known (or this node is it). */
  url: () => string | undefined
  /** This node's positions now, per database. */
  positions: () => Map<string, bigint>
}

export class ReplicaReporter {
  private inFlight = false
  private again = false
  private timer: NodeJS.Timeout | undefined
  private closed = false
  /** Why reports fail now (undefined: they do not): said when it starts and whenever it changes. */
  private failing: string | undefined
  /** Reports the primary took, and those it did not (for stats and tests). */
  sent = 0
  refused = 0

  constructor (
    private readonly source: ReporterSource,
    private readonly secret: string,
    private readonly dispatcher: Dispatcher,
    private readonly log: Logger
  ) {}

  /** Something changed (a position, the primary): report soon. */
  changed (): void {
    if (this.closed) return
    if (this.inFlight) { this.again = true; return }
    void this.send()
  }

  start (): void {
    this.changed()
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  private async send (): Promise<void> {
    clearTimeout(this.timer)
    if (this.closed) return
    const url = this.source.url()
    const candidate = this.source.candidate()
    if (url === undefined || candidate === undefined) return this.heartbeat()
    this.inFlight = true
    const positions: Record<string, string> = {}
    for (const [db, pos] of this.source.positions()) positions[db] = formatTxid(pos)
    const report: PeerReport = { hostname: this.source.hostname, candidate, positions, instance: this.source.instance }
    const body = JSON.stringify(report)
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json', [PEER_HEADER]: signReport(this.secret, body) },
        body,
        headersTimeout: HEARTBEAT * 2,
        bodyTimeout: HEARTBEAT * 2
      })
      await res.body.dump()
      if (res.statusCode === 204) {
        this.sent++
        if (this.failing !== undefined) this.log.info({ url }, 'litefs-proxy: reporting to the primary again')
        this.failing = undefined
      } else {
        this.refused++
        this.fail(url, `it answered ${res.statusCode}${res.statusCode === 403 ? ' (is peerSecret the same on every node?)' : ''}`)
      }
    } catch (err) {
      this.fail(url, (err as Error).message)
    }
    this.inFlight = false
    if (this.again) {
      this.again = false
      return await this.send()
    }
    this.heartbeat()
  }

  /**
   * Said when reports start failing, and again whenever the reason changes: a
   * primary not listening yet at startup, then refusing the signature, must
   * not have the second, real cause swallowed by the first (walk 5).
   */
  private fail (url: string, why: string): void {
    if (why !== this.failing) this.log.warn({ url, why }, 'litefs-proxy: the primary did not take this replica\'s report; retrying')
    this.failing = why
  }

  private heartbeat (): void {
    this.timer = setTimeout(() => { void this.send() }, HEARTBEAT)
    this.timer.unref()
  }
}
