import type { Logger } from '../core/logger.js'

// The sidecar's logger: one line per event, as text or JSON, at a level the
// user chooses. Plain text is what a terminal wants; JSON is what a log
// pipeline wants. Both go to one stream (stdout by default).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFormat = 'text' | 'json'

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

function text (fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ')
}

/** A Logger that writes lines at `level` and above, as `format`, with `write` (the CLI: stdout). */
export function lineLogger (level: LogLevel, format: LogFormat, write: (line: string) => void): Logger {
  const at = (lvl: Exclude<LogLevel, 'silent'>) => (obj: object, msg: string): void => {
    if (RANK[lvl] < RANK[level]) return
    const time = new Date().toISOString()
    if (format === 'json') {
      write(JSON.stringify({ time, level: lvl, msg, ...obj }) + '\n')
    } else {
      const rest = text(obj as Record<string, unknown>)
      write(`${time} ${lvl.toUpperCase().padEnd(5)} ${msg}${rest === '' ? '' : ' ' + rest}\n`)
    }
  }
  // isLevelEnabled, as pino has it: a warning goes to this log only where it shows warn lines (warnings.ts).
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), isLevelEnabled: (lvl: string) => RANK[lvl as LogLevel] >= RANK[level] }
}
