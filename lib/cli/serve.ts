import { dbLabel } from '../core/db-missing.js'
import { createSidecar } from '../sidecar/sidecar.js'
import { flagMessage, type GivenFlag } from '../sidecar/flag-errors.js'
import { SERVE_USAGE, serveSettings } from '../sidecar/settings.js'
import type { Io } from './io.js'

// `litefs-proxy serve`: settings from flags and litefs.yml (sidecar/settings.ts),
// the sidecar itself (sidecar/sidecar.ts), listening until SIGTERM/SIGINT.

/** Resolves with an exit code when serve cannot start (2: bad settings, 1: cannot listen), else undefined once listening. */
export async function runServe (argv: readonly string[], io: Io): Promise<number | undefined> {
  if (argv.length === 0) { io.err(SERVE_USAGE); return 2 }
  let sidecar
  let target: string
  let given: Record<string, GivenFlag> = {}
  let json = false
  try {
    const settings = serveSettings(argv, io.env, io.out)
    if (settings === undefined) { io.out(SERVE_USAGE); return 0 }
    given = settings.given
    json = settings.format === 'json'
    target = settings.options.target
    sidecar = createSidecar(settings.options)
  } catch (err) {
    // Everything that fails here comes from the settings given: flags, the file,
    // option checks (the core's, said as the flags that set them).
    io.err(`litefs-proxy serve: ${flagMessage(err as Error, given)}\n`)
    return 2
  }
  try {
    await sidecar.listen()
  } catch (err) {
    io.err(`litefs-proxy serve: cannot listen: ${(err as Error).message}\n`)
    await sidecar.close()
    return 1
  }
  const s = sidecar
  const o = s.core.options
  const started = `litefs-proxy serve: listening on ${s.url}, app at ${target}, database ${dbLabel(o)} in ${o.mount}, LiteFS API ${String(o.api)}`
  // At any --log-level (it says serve is up); with --log-format json, a JSON line as every other.
  io.out(json ? JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: started, url: s.url, target, db: dbLabel(o), mount: o.mount, api: o.api }) + '\n' : started + '\n')
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => { void s.close() }) // held requests answered, in-flight ones finished, then exit
  }
  return undefined
}
