import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'

// A forwarded request's body, one attempt at a time (forward.ts makes the
// attempts): pulled from the client only when an attempt starts sending, kept
// while small so an attempt the primary reset unread can be made again, counted
// against the forwarding limit, and given up on when the client stalls.

/** Bodies up to this size are kept while they are sent, so an attempt the primary never read can be made again. */
const REPLAY_LIMIT = 64 * 1024

/** What one request's body has been so far, across attempts. */
interface Replay {
  kept: Buffer[]
  bytes: number
  /** More was sent than is kept: no further attempt can resend it. */
  overflow: boolean
  /** The client's body has ended (all of it is in `kept`, unless overflow). */
  ended: boolean
}

const replays = new WeakMap<IncomingMessage, Replay>()

/** An attempt to forward this request has begun (its body is ours, whatever was read of it). */
export function attempted (req: IncomingMessage): boolean {
  return replays.has(req)
}

/**
 * An attempt to forward this request read from its body (the primary then
 * reset it unread, so it may be sent again from what was kept): the app on
 * this node can no longer read that body from the request itself.
 */
export function bodyTaken (req: IncomingMessage): boolean {
  const replay = replays.get(req)
  return replay !== undefined && (replay.bytes > 0 || replay.ended)
}

/**
 * The request body as a fresh stream for one attempt. It pulls from the client
 * only when undici starts sending, so an attempt refused at connect leaves the
 * client's body untouched for the next one; a small body is kept as it goes, so
 * an attempt the primary reset before reading can be made again from the start;
 * it counts bytes against the limit; and it gives up on a client that sends
 * nothing for `idleMs` (a stalled upload must not hold a connection to the
 * primary until Node's own request timeout).
 */
export class AttemptBody extends Readable {
  started = false
  tooLarge = false
  stalled = false
  readonly replay: Replay
  private idle: NodeJS.Timeout | undefined

  constructor (private readonly source: IncomingMessage, private readonly limit: number, private readonly idleMs: number) {
    super()
    let replay = replays.get(source)
    if (replay === undefined) {
      replay = { kept: [], bytes: 0, overflow: false, ended: false }
      replays.set(source, replay)
    }
    this.replay = replay
    // Its failures are told by its flags and undici's onError; undici may end
    // an attempt (the client gone as it connects) before it listens to the body.
    this.on('error', () => {})
  }

  override _read (): void {
    if (!this.started) {
      this.started = true
      for (const chunk of this.replay.kept) this.push(chunk) // what an earlier attempt sent
      if (this.replay.ended) {
        this.push(null)
        return
      }
      this.source.on('data', this.onData)
      this.source.once('end', this.onEnd)
      this.source.once('error', this.onError)
      this.source.once('aborted', this.onAborted)
      this.idle = setTimeout(this.onIdle, this.idleMs)
    }
    this.source.resume()
  }

  override _destroy (err: Error | null, done: (err?: Error | null) => void): void {
    this.detach()
    done(err)
  }

  /**
   * Stop feeding this attempt and let the rest of the client's body drain, so
   * the answer given instead (413, 502…) reaches a client still uploading.
   */
  release (): void {
    this.released = true
    this.detach()
    this.source.resume()
  }

  /** The client's body is drained from now on (nothing will send it again), whatever ends this attempt later. */
  private released = false

  /** Stop feeding this attempt; the client's body stays where it is, for the next one. */
  private detach (): void {
    clearTimeout(this.idle)
    this.idle = undefined
    // Paused first: a flowing stream without a 'data' listener drops what
    // arrives, and the next attempt (or the app, see bodyTaken) needs it.
    if (!this.released) this.source.pause()
    this.source.off('data', this.onData)
    this.source.off('end', this.onEnd)
    this.source.off('error', this.onError)
    this.source.off('aborted', this.onAborted)
  }

  private readonly onEnd = (): void => {
    // An HTTP/2 stream the client reset ends too: that body is cut, not complete,
    // and must reach the primary as an aborted request, never as a shorter one.
    if ((this.source as { aborted?: boolean }).aborted === true) return this.onAborted()
    this.replay.ended = true
    clearTimeout(this.idle)
    this.push(null)
  }

  private readonly onAborted = (): void => {
    this.onError(new Error('the client aborted its request'))
  }

  /** The client's own request failed (it went away mid-upload). */
  clientFailed = false

  private readonly onError = (err: Error): void => {
    this.clientFailed = true
    this.destroy(err)
  }

  private readonly onIdle = (): void => {
    this.stalled = true
    this.release()
    this.destroy(new Error('the client sent no body bytes in time'))
  }

  private readonly onData = (chunk: Buffer): void => {
    this.idle?.refresh()
    const replay = this.replay
    replay.bytes += chunk.length
    if (replay.bytes > this.limit) {
      this.tooLarge = true
      this.release()
      this.destroy(new Error('request body larger than the forwarding limit'))
      return
    }
    if (!replay.overflow && replay.bytes <= REPLAY_LIMIT) {
      replay.kept.push(chunk)
    } else if (!replay.overflow) {
      replay.overflow = true
      replay.kept = [] // too big to send again: free it
    }
    if (!this.push(chunk)) this.source.pause()
  }
}
