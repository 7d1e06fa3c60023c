import { createSidecar } from '../sidecar/sidecar.js'
import { SERVE_USAGE, serveOptions } from '../sidecar/settings.js'
import { runConfig } from './config.js'

/** Where the CLI writes, and its environment (tests give their own). */
export interface Io {
  out: (text: string) => void
  err: (text: string) => void
  env: NodeJS.ProcessEnv
}

export const USAGE = `Usage: litefs-proxy <command> [flags]

Commands:
  serve    read-your-writes in front of any app on LiteFS, in place of LiteFS's own proxy
  config   write one node's litefs.yml

Examples:
  litefs-proxy serve --addr :8080 --target localhost:8000 --db db.sqlite3 --primary-url 'http://{hostname}:8080'
  litefs-proxy config --node node-2 --primary node-1 --nodes node-1,node-2,node-3 --exec 'gunicorn app:app'

litefs-proxy <command> --help tells more.
`

/**
 * Run a command. Resolves with the exit code for commands that end (0, or 2 for
 * bad usage), or undefined for `serve`, which runs until SIGTERM/SIGINT.
 */
export async function run (argv: readonly string[], io: Io): Promise<number | undefined> {
  const [command, ...rest] = argv
  if (command === undefined) { io.err(USAGE); return 2 }
  if (command === '--help' || command === '-h' || command === 'help') { io.out(USAGE); return 0 }
  if (command === 'config') return runConfig(rest, io)
  if (command !== 'serve') {
    io.err(`litefs-proxy: unknown command ${JSON.stringify(command)} (serve or config; litefs-proxy --help)\n`)
    return 2
  }
  if (rest.length === 0) { io.err(SERVE_USAGE); return 2 }
  let sidecar
  let target: string
  try {
    const options = serveOptions(rest, io.env, io.out)
    if (options === undefined) { io.out(SERVE_USAGE); return 0 }
    target = options.target
    sidecar = createSidecar(options)
  } catch (err) {
    // Everything that fails here comes from the settings given: flags, the file, option checks.
    io.err(`litefs-proxy serve: ${(err as Error).message.replace(/^litefs-proxy: /, '')}\n`)
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
  io.out(`litefs-proxy serve: listening on ${s.url}, app at ${target}, database ${o.db} in ${o.mount}, LiteFS API ${String(o.api)}\n`)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => { void s.close() }) // held requests answered, in-flight ones finished, then exit
  }
  return undefined
}
