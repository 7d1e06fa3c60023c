import { channel } from 'node:diagnostics_channel'
import type { ServerResponse } from 'node:http'
import { appendOnHead } from './on-head.js'
import type { LitefsStatus, NodeState, Role } from './node-state.js'
import type { DurabilityCounts, PeerView } from './peer-link.js'

// What litefs-proxy did, for those who watch: `node:diagnostics_channel`
// messages (named as undici names its own: `<package>:<object>:<event>`),
// counters for `stats()`, and the optional `Server-Timing` header. The core
// only calls the methods here; nothing here decides anything.

/** Channels; each message is an object described on its channel. Subscribe with `diagnostics_channel.subscribe(name, fn)`. */
export const CHANNELS = {
  /** A request starts waiting: `{ request, kind: 'position' | 'primary' | 'mount', txid? }` (txid: 16 hex digits). */
  waitStart: 'litefs-proxy:wait:start',
  /** It stopped: `{ request, kind, result: 'ready' | 'timeout' | 'cancelled' | 'closed' | 'unreachable' | 'overloaded', ms }`. */
  waitEnd: 'litefs-proxy:wait:end',
  /** A request is being streamed to the primary: `{ request, origin }`. */
  forwardStart: 'litefs-proxy:forward:start',
  /** Done: `{ request, origin, outcome: 'sent' | 'gone' | 'failed', code?, ms }`. */
  forwardEnd: 'litefs-proxy:forward:end',
  /** A write's answer got the TXID cookie: `{ request, txid }`. */
  cookieSet: 'litefs-proxy:cookie:set',
  /** A read held past `readTimeout` got its answer: `{ request, action: 'error' | 'primary' | 'stale', txid, position }` (16 hex digits each). */
  readTimeout: 'litefs-proxy:read:timeout'
} as const

const waitStart = channel(CHANNELS.waitStart)
const waitEnd = channel(CHANNELS.waitEnd)
const forwardStart = channel(CHANNELS.forwardStart)
const forwardEnd = channel(CHANNELS.forwardEnd)
const cookieSet = channel(CHANNELS.cookieSet)
const readTimeout = channel(CHANNELS.readTimeout)

/** The three answers of a read held past `readTimeout` (read-timeout.ts). */
export type ReadTimeoutAnswer = 'error' | 'primary' | 'stale'

/** `stats()`: what one app's litefs-proxy has done since it started, and where it stands. */
export interface LitefsStats {
  /** Requests this app holds now (reads waiting for a TXID, writes for a primary, requests for LiteFS). */
  held: number
  /** Waits begun, and how they ended. */
  waits: number
  timeouts: number
  /** Reads held past `readTimeout`, by the answer they got: 504, forwarded to the primary, served here maybe stale. */
  readTimeouts: Record<ReadTimeoutAnswer, number>
  /** Reads served at once because the primary itself is behind their TXID. */
  unreachable: number
  /** Requests refused because `maxWaiting` requests were held (503 LITEFS_OVERLOADED). */
  overloaded: number
  /** Requests streamed to the primary, and failures by code (LITEFS_FORWARD_FAILED, LITEFS_NO_PRIMARY…). */
  forwards: number
  forwardErrors: Record<string, number>
  /** Write answers that got the TXID cookie. */
  cookies: number
  /** How this node learns LiteFS's state now: its event stream, polling its mount, the mount files alone, or another driver. */
  feed: 'events' | 'polling' | 'files' | 'state'
  /** Whether LiteFS answers (see LitefsStatus), this node's role and the primary it knows. */
  litefs: LitefsStatus
  role: Role
  primary: string | null
  /** With `peerSecret`: the peers reporting to this node (who, candidate or not, connected, how far behind, since when). */
  peers?: PeerView[]
  /** With `peerSecret`: write answers held for their candidates, and how they ended. */
  durability?: DurabilityCounts
}

export type WaitKind = 'position' | 'primary' | 'mount'

export class Observer {
  waits = 0
  timeouts = 0
  unreachable = 0
  overloaded = 0
  forwards = 0
  forwardErrors: Record<string, number> = {}
  cookies = 0
  readTimeouts: Record<ReadTimeoutAnswer, number> = { error: 0, primary: 0, stale: 0 }

  constructor (private readonly serverTiming: boolean) {}

  waitStarted (request: unknown, kind: WaitKind, txid?: string): void {
    this.waits++
    if (waitStart.hasSubscribers) waitStart.publish({ request, kind, txid })
  }

  waitEnded (request: unknown, kind: WaitKind, result: string, ms: number, res?: ServerResponse): void {
    if (result === 'timeout') this.timeouts++
    else if (result === 'unreachable') this.unreachable++
    else if (result === 'overloaded') this.overloaded++
    if (waitEnd.hasSubscribers) waitEnd.publish({ request, kind, result, ms })
    if (this.serverTiming && result !== 'cancelled' && res !== undefined) this.timing(res, 'wait', () => ms)
  }

  forwardStarted (request: unknown, origin: string, res: ServerResponse): () => number {
    this.forwards++
    if (forwardStart.hasSubscribers) forwardStart.publish({ request, origin })
    const started = performance.now()
    const elapsed = (): number => performance.now() - started
    if (this.serverTiming) this.timing(res, 'forward', elapsed) // measured when the primary's head arrives
    return elapsed
  }

  forwardEnded (request: unknown, origin: string, outcome: string, code: string | undefined, ms: number): void {
    if (code !== undefined) this.forwardErrors[code] = (this.forwardErrors[code] ?? 0) + 1
    if (forwardEnd.hasSubscribers) forwardEnd.publish({ request, origin, outcome, code, ms })
  }

  cookieSet (request: unknown, txid: string): void {
    this.cookies++
    if (cookieSet.hasSubscribers) cookieSet.publish({ request, txid })
  }

  readTimedOut (request: unknown, action: ReadTimeoutAnswer, txid: string, position: string): void {
    this.readTimeouts[action]++
    if (readTimeout.hasSubscribers) readTimeout.publish({ request, action, txid, position })
  }

  stats (held: number, state: NodeState): LitefsStats {
    return {
      held,
      waits: this.waits,
      timeouts: this.timeouts,
      readTimeouts: { ...this.readTimeouts },
      unreachable: this.unreachable,
      overloaded: this.overloaded,
      forwards: this.forwards,
      forwardErrors: { ...this.forwardErrors },
      cookies: this.cookies,
      feed: state.driver.source?.() ?? 'state',
      litefs: state.litefs,
      role: state.role,
      primary: state.primaryHostname ?? null
    }
  }

  /** `Server-Timing: litefs;dur=<ms>;desc="wait"` (or "forward") on the response's head. */
  private timing (res: ServerResponse, desc: string, ms: () => number): void {
    appendOnHead(res, 'server-timing', () => `litefs;dur=${ms().toFixed(1)};desc="${desc}"`)
  }
}
