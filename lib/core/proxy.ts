import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { readTxidCookie, txidSetCookie } from './cookie.js'
import { LitefsHttpError } from './errors.js'
import { acquireLitefsNode, type NodeLease } from './litefs-node.js'
import { silentLogger, type Logger } from './logger.js'
import type { NodeState, Role, WaitResult } from './node-state.js'
import { resolveOptions, type LitefsRouteOptions, type ResolvedOptions } from './options.js'
import { pathOf } from './path-match.js'
import { formatTxid } from './txid.js'

export type RequestKind = 'passthrough' | 'health' | 'read' | 'write'

/** What litefs-proxy did with one request (`request.litefs` in Fastify, `req.litefs` elsewhere). */
export interface LitefsInfo {
  kind: RequestKind
  /** This node's role when the request was decided. */
  role: Role
  /** The client's TXID (cookie) that a read was checked against, as 16 hex digits. */
  awaitedTxid?: string
  /** Milliseconds a read was held for the replica to catch up. */
  waitedMs?: number
  /** The TXID set in the response cookie, as 16 hex digits. */
  setTxid?: string
  /** A write served by this node as primary: its response gets the cookie. */
  local: boolean
  /** Set when the proxy answers instead of the app. */
  error?: LitefsHttpError
  /** The client went away while the request was held: answer nothing. */
  aborted?: boolean
}

/** A route's litefs setting: options, `false` (passthrough), or nothing. */
export type RouteSetting = LitefsRouteOptions | false | undefined

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The framework-free core: classifies a request, holds reads until the replica
 * has the client's last write, rejects or routes writes, and writes the cookie.
 * Adapters only translate between their framework and these calls.
 */
export class LitefsCore {
  readonly options: ResolvedOptions
  readonly state: NodeState
  private readonly lease: NodeLease | undefined

  constructor (input: unknown, log: Logger = silentLogger, extraOptions: readonly string[] = []) {
    const options = resolveOptions(input, extraOptions)
    this.options = options
    if (options.state !== undefined) {
      this.state = options.state
    } else {
      this.lease = acquireLitefsNode({
        mount: options.mount,
        api: options.api,
        role: options.role,
        databases: [options.db],
        pollInterval: options.pollInterval,
        log
      })
      this.state = this.lease.state
    }
  }

  classify (method: string, url: string, route: RouteSetting): RequestKind {
    if (route === false) return 'passthrough'
    const path = pathOf(url)
    const o = this.options
    if (o.passthrough(path)) return 'passthrough'
    if (path === o.healthPath && (method === 'GET' || method === 'HEAD')) return 'health'
    if (READS.has(method) && route?.alwaysForward !== true && !o.alwaysForward(path)) return 'read'
    return 'write'
  }

  /**
   * Decide a request before the app sees it. Synchronous on the fast paths; a
   * Promise when the request is held. `info.error` set: answer it instead of the
   * app; `info.aborted`: the client left, answer nothing.
   */
  decide (req: IncomingMessage, res: ServerResponse, route: RouteSetting, log: Logger): LitefsInfo | Promise<LitefsInfo> {
    // A server's IncomingMessage always has both (the types also cover client responses).
    const info: LitefsInfo = { kind: this.classify(req.method as string, req.url as string, route), role: this.state.role, local: false }
    switch (info.kind) {
      case 'read': return this.read(req, res, info, log)
      case 'write': return this.write(info, log)
      default: return info
    }
  }

  private read (req: IncomingMessage, res: ServerResponse, info: LitefsInfo, log: Logger): LitefsInfo | Promise<LitefsInfo> {
    const txid = readTxidCookie(this.options.cookie, req.headers.cookie)
    if (txid === undefined || txid === 0n) return info
    info.awaitedTxid = formatTxid(txid)
    // The primary has every transaction there is; a cookie ahead of it cannot be
    // satisfied by waiting (see DESIGN §3.4).
    if (this.state.role === 'primary') return info
    const db = this.options.db
    if (this.state.position(db) >= txid || (this.state.readPosition(db) ?? 0n) >= txid) return info
    return this.hold(res, info, txid, log)
  }

  private async hold (res: ServerResponse, info: LitefsInfo, txid: bigint, log: Logger): Promise<LitefsInfo> {
    const state = this.state
    const db = this.options.db
    const started = performance.now()
    log.debug({ db, txid: info.awaitedTxid, position: formatTxid(state.position(db)) }, 'litefs-proxy: holding read until the replica catches up')
    const result = await new Promise<WaitResult>(resolve => {
      let gone: (() => void) | undefined
      const waiter = state.waitForPosition(db, txid, this.options.readTimeout, r => {
        if (gone !== undefined) res.off('close', gone)
        resolve(r)
      })
      if (waiter === undefined) return
      // A client that disconnects while held takes its waiter with it at once.
      gone = () => { state.cancel(waiter) }
      res.once('close', gone)
    })
    info.waitedMs = performance.now() - started
    info.role = state.role
    if (result === 'ready') {
      log.debug({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: replica caught up; serving read')
    } else if (result === 'cancelled') {
      info.aborted = true
      log.debug({ db, txid: info.awaitedTxid, waitedMs: info.waitedMs }, 'litefs-proxy: client left while its read was held')
    } else if (result === 'timeout') {
      info.error = new LitefsHttpError(504, 'LITEFS_READ_TIMEOUT',
        `replica did not reach TXID ${info.awaitedTxid as string} within ${this.options.readTimeout} ms (at ${formatTxid(state.position(db))})`)
      log.warn({ db, txid: info.awaitedTxid, position: formatTxid(state.position(db)) }, 'litefs-proxy: read timed out waiting for replication')
    } else {
      info.error = shuttingDown()
    }
    return info
  }

  private write (info: LitefsInfo, log: Logger): LitefsInfo {
    const state = this.state
    state.refresh()
    info.role = state.role
    if (state.role === 'primary') {
      info.local = true
      return info
    }
    const primary = state.primaryHostname
    info.error = new LitefsHttpError(503, 'LITEFS_NOT_PRIMARY',
      primary === undefined ? 'this node is not the primary and no primary is known' : `this node is not the primary; the primary is ${primary}`,
      primary === undefined ? { 'retry-after': '1' } : { 'litefs-primary': primary })
    log.warn({ role: state.role, primary }, 'litefs-proxy: write refused on a replica')
    return info
  }

  /** The health check's answer: 200, or 503 when the lag is above `maxLag` (or unknown). */
  health (): { statusCode: number, body: string } {
    const state = this.state
    const lag = state.readLag()
    const max = this.options.maxLag
    const ok = max === 0 || (lag !== undefined && lag <= max)
    const body = {
      status: ok ? 'ok' : 'lagging',
      role: state.role,
      primary: state.primaryHostname ?? null,
      lag: lag ?? null,
      txid: formatTxid(state.position(this.options.db))
    }
    return { statusCode: ok ? 200 : 503, body: JSON.stringify(body) }
  }

  /**
   * The Set-Cookie value for a response about to be sent, or undefined. Only a
   * write served here as primary gets one, and its TXID is read from the
   * authority at this instant so it includes the handler's own commit.
   */
  cookie (info: LitefsInfo, secure: boolean): string | undefined {
    if (!info.local) return undefined
    const txid = this.state.readPosition(this.options.db)
    if (txid === undefined || txid === 0n) return undefined
    info.setTxid = formatTxid(txid)
    return txidSetCookie(this.options.cookie, txid, secure)
  }

  async close (): Promise<void> {
    await this.lease?.release()
  }
}

function shuttingDown (): LitefsHttpError {
  return new LitefsHttpError(503, 'LITEFS_CLOSED', 'the server is shutting down', { 'retry-after': '1' })
}
