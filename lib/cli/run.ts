import { runConfig } from './config.js'
import type { Io } from './io.js'
import { runServe } from './serve.js'

// The command table: `litefs-proxy <command>`. It sits above the commands
// (serve.ts, config.ts), which know nothing of each other or of it.

export type { Io } from './io.js'

export const USAGE = `Usage: litefs-proxy <command> [flags]

Commands:
  serve    read-your-writes in front of any app on LiteFS, in place of LiteFS's own proxy
  config   write one node's litefs.yml

  --version  the version of litefs-proxy

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
  if (command === '--version' || command === '-v' || command === 'version') { io.out(`litefs-proxy ${io.version ?? 'unknown'}\n`); return 0 }
  if (command === 'config') return runConfig(rest, io)
  if (command === 'serve') return await runServe(rest, io)
  io.err(`litefs-proxy: unknown command ${JSON.stringify(command)} (serve or config; litefs-proxy --help)\n`)
  return 2
}
