import type { Io } from './run.js'

/** `litefs-proxy config`: write one node's litefs.yml. (Being built.) */
export function runConfig (_argv: readonly string[], io: Io): number {
  io.err('litefs-proxy config: not built yet\n')
  return 2
}
