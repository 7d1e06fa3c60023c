// The logging surface the core needs; pino (Fastify's logger) and console both fit.
export interface Logger {
  debug: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
  /** Whether lines at `level` are written (pino's name): a caller can skip building one that is not. */
  isLevelEnabled?: (level: 'debug' | 'info' | 'warn' | 'error') => boolean
}

const nothing = (): void => {}
export const silentLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing }
