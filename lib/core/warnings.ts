import type { Logger } from './logger.js'

// A misconfiguration is said out loud, once, on one channel: through the app's
// logger, and as a process warning (Node prints it on stderr) only where that
// logger does not show warn lines, so an app whose logger is off (Fastify's
// default) still hears it and one whose logger shows it does not hear it
// twice. Once per cause (a code and what it is about: a mount, an API URL)
// while it lasts; when it clears, that is said once too. Causes are per
// process: two apps on one mount share one voice.

const active = new Set<string>()
const NONE: readonly string[] = []

/**
 * Whether `log` shows warn lines: pino (Fastify's logger) says so itself
 * (`isLevelEnabled`); a logger whose `warn` is its `debug` is a no-op one
 * (Fastify's `logger: false`, abstract-logging; litefs-proxy's silent logger);
 * any other logger given (console, the default of Express and node:http) is
 * taken to show what it is given.
 */
export function showsWarnings (log: Logger): boolean {
  if (typeof log.isLevelEnabled === 'function') return log.isLevelEnabled('warn')
  return log.warn !== log.debug
}

export interface Warnings {
  /** The cause `code` about `scope` holds: say `message` unless it was said since it last cleared. */
  say: (code: string, scope: string, message: string, details?: object) => void
  /** It no longer holds: if it was said, say `cleared` once. */
  clear: (code: string, scope: string, cleared: string) => void
  /** The scopes of the causes `code` said that have not cleared (of every app in the process; usually none). */
  saying: (code: string) => readonly string[]
}

export function warnings (log: Logger): Warnings {
  // serve says option names as its flags (Logger.words); an app's logger has no words of its own.
  const words = log.words ?? ((message: string) => message)
  return {
    say (code, scope, message, details = {}) {
      const cause = `${code}\0${scope}`
      if (active.has(cause)) return
      active.add(cause)
      const said = `litefs-proxy: ${words(message)}`
      log.warn({ ...details, code }, said)
      if (!showsWarnings(log)) process.emitWarning(said, { type: 'LitefsProxyWarning', code })
    },
    clear (code, scope, cleared) {
      if (!active.delete(`${code}\0${scope}`)) return
      log.info({ code }, `litefs-proxy: ${words(cleared)}`)
    },
    saying (code) {
      // Looked at on every change of a node's state (db-missing.ts): nothing said, nothing allocated.
      if (active.size === 0) return NONE
      const scopes: string[] = []
      for (const cause of active) if (cause.startsWith(`${code}\0`)) scopes.push(cause.slice(code.length + 1))
      return scopes
    }
  }
}
