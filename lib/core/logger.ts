// The logging surface the core needs; pino (Fastify's logger) and console both fit.
export interface Logger {
  debug: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
  /** pino's: whether lines at `level` are written (warnings.ts asks it about warn). */
  isLevelEnabled?: (level: string) => boolean
  /**
   * @internal `serve`'s: a warning's words in its own terms (option names as
   * the flags that set them: `--primary-url`, not "primaryUrl"); warnings.ts applies it.
   */
  words?: (message: string) => string
}

const nothing = (): void => {}
export const silentLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing }
