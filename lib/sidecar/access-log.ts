import type { ServerResponse } from 'node:http'
import { whenClosed } from '../core/client-gone.js'
import type { Logger } from '../core/logger.js'

// The sidecar's logger: one line per event, as text or JSON, at a level the
// user chooses, and its one line per request (logWhenDone). Plain text is what a terminal wants; JSON is what a log
// pipeline wants. Both go to one stream (stdout by default).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFormat = 'text' | 'json'

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

// A log line must never throw: a field JSON.stringify() refuses (a BigInt) would end the
// process from whatever callback logged it. BigInts are written as numbers, as pino does.
function json (value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? Number(v) : v)
}

function text (fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : json(v)}`)
    .join(' ')
}

/** A Logger that writes lines at `level` and above, as `format`, with `write` (the CLI: stdout). */
export function lineLogger (level: LogLevel, format: LogFormat, write: (line: string) => void): Logger {
  const at = (lvl: Exclude<LogLevel, 'silent'>) => (obj: object, msg: string): void => {
    if (RANK[lvl] < RANK[level]) return
    const time = new Date().toISOString()
    if (format === 'json') {
      write(json({ time, level: lvl, msg, ...obj }) + '\n')
    } else {
      const rest = text(obj as Record<string, unknown>)
      write(`${time} ${lvl.toUpperCase().padEnd(5)} ${msg}${rest === '' ? '' : ' ' + rest}\n`)
    }
  }
  // isLevelEnabled, as pino has it: a warning goes to this log only where it shows warn lines (warnings.ts).
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), isLevelEnabled: (lvl: string) => RANK[lvl as LogLevel] >= RANK[level] }
}

/** Responses whose connection switched protocols (a WebSocket): their line says 101. */
export const switched = new WeakSet<ServerResponse>()

/** Log one line for the request of `res` when it is over (answered, switched, or its client gone). */
export function logWhenDone (log: Logger, res: ServerResponse): void {
  const started = performance.now()
  const req = res.req
  whenClosed(res, () => { // a pipelined answer whose client left: its connection says
    const info = req.litefs
    log.info({
      method: req.method,
      path: req.url,
      status: switched.has(res) ? 101 : res.headersSent ? res.statusCode : undefined,
      ms: Math.round((performance.now() - started) * 10) / 10,
      kind: info?.kind,
      role: info?.role,
      waitedMs: info?.waitedMs === undefined ? undefined : Math.round(info.waitedMs),
      forwardedTo: info?.forwardedTo,
      txid: info?.setTxid,
      // serve's own answer (an error of the table): its code, as the JSON body says it.
      code: (info?.answer as { code?: string } | undefined)?.code,
      aborted: res.writableFinished || switched.has(res) ? undefined : true
    }, 'request')
  })
}
