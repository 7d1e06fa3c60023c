import type { Logger } from './logger.js'

// A misconfiguration is said out loud, once: through the app's logger and
// through process.emitWarning, which Node prints on stderr even where the app's
// logger is off (Fastify's default). Once per cause (a code and what it is
// about: a mount, an API URL) while it lasts; when it clears, that is said once
// too. Causes are per process: two apps on one mount share one voice.

const active = new Set<string>()

/**
 * Loggers whose warn lines always reach the user (the sidecar's own log at
 * level warn or below): for them a process warning would say it twice.
 */
export const showsWarnings = new WeakSet<Logger>()

export interface Warnings {
  /** The cause `code` about `scope` holds: say `message` unless it was said since it last cleared. */
  say: (code: string, scope: string, message: string, details?: object) => void
  /** It no longer holds: if it was said, say `cleared` once. */
  clear: (code: string, scope: string, cleared: string) => void
}

export function warnings (log: Logger): Warnings {
  return {
    say (code, scope, message, details = {}) {
      const cause = `${code}\0${scope}`
      if (active.has(cause)) return
      active.add(cause)
      log.warn({ ...details, code }, `litefs-proxy: ${message}`)
      if (!showsWarnings.has(log)) process.emitWarning(`litefs-proxy: ${message}`, { type: 'LitefsProxyWarning', code })
    },
    clear (code, scope, cleared) {
      if (!active.delete(`${code}\0${scope}`)) return
      log.info({ code }, `litefs-proxy: ${cleared}`)
    }
  }
}
