import { connect } from 'node:net'
import { performance } from 'node:perf_hooks'
import { reasonOf } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { warnings, type Warnings } from '../core/warnings.js'

// Is the app behind `serve` there? A wrong `--target` (a typo, the app on
// another port) used to be silent: every request waited the whole retry
// window (LiteFS's 30 s: under its `exec` the app may be starting), then got
// 502. Now it is said at startup, once (warnings.ts), and again once it
// answers; while it lasts, the address is tried every second, and once it has
// refused for a whole retry window, a request is answered 502 at once instead
// of waiting that window again. The requests themselves are the sidecar's
// (sidecar.ts): it tells this what each attempt met.

/** How often the app is tried while it refuses (ms). */
const PROBE_EVERY = 1000

export class TargetWatch {
  private downSince: number | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly warn: Warnings

  constructor (
    private readonly target: { host: string, port: number, label: string },
    /** How long a request waits for an app that refuses (the sidecar's targetRetry). */
    private readonly retryMs: number,
    log: Logger,
    private readonly now: () => number = () => performance.now()
  ) {
    this.warn = warnings(log)
  }

  /** Try the app now (the sidecar is listening): said at once when nothing answers there. */
  start (): void {
    this.probe()
  }

  /** A connection to the app was refused (or failed before anything was sent). */
  refused (reason: string): void {
    if (this.closed) return
    if (this.downSince === undefined) this.downSince = this.now()
    this.warn.say('LITEFS_TARGET_DOWN', this.target.label, `nothing answers at ${this.target.label}, the app behind serve (${reason}): is --target its address? Requests wait up to ${this.retryMs / 1000} s for it (under LiteFS's exec it may be starting), then get 502 LITEFS_TARGET_UNAVAILABLE`, { target: this.target.label, reason })
    if (this.timer === undefined) {
      this.timer = setTimeout(() => { this.timer = undefined; this.probe() }, PROBE_EVERY)
      this.timer.unref()
    }
  }

  /** Something reached the app. */
  reached (): void {
    if (this.downSince === undefined) return
    this.downSince = undefined
    clearTimeout(this.timer)
    this.timer = undefined
    this.warn.clear('LITEFS_TARGET_DOWN', this.target.label, `the app at ${this.target.label} answers now`)
  }

  /**
   * Whether the app takes a connection now: undefined when it does, else why
   * not (said as any refusal is). For the health check (app-health.ts).
   */
  async reachable (): Promise<string | undefined> {
    return await new Promise(resolve => {
      const socket = connect({ host: this.target.host, port: this.target.port })
      socket.once('connect', () => { socket.destroy(); this.reached(); resolve(undefined) })
      socket.once('error', err => {
        const reason = reasonOf(err)
        this.refused(reason)
        resolve(reason)
      })
    })
  }

  /** The app has refused for a whole retry window already: waiting another one per request helps nobody. */
  get givenUp (): boolean {
    return this.downSince !== undefined && this.now() - this.downSince >= this.retryMs
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  private probe (): void {
    void this.reachable()
  }
}
