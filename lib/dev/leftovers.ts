import { rmSync } from 'node:fs'

// The dev cluster's files live in a temporary directory it made; close()
// removes it. A process that ends without close() — a test that throws,
// process.exit(), a Ctrl-C handled by exiting (the demo) — must not leave it
// behind: what is left is removed on 'exit'. A signal the process does not
// handle ends it without 'exit' (no JavaScript runs): handle it by exiting.
// Not done here: a library's signal handler would change how the user's
// process ends, and two "clean up, then die unless someone else listens"
// handlers (signal-exit is another) each defer to the other and keep it alive.

const dirs = new Set<string>()
let installed = false

function removeAll (): void {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs.clear()
}

/** Remove `dir` when the process exits, unless `forget()` (its owner removed it) comes first. */
export function removeAtExit (dir: string): { forget: () => void } {
  if (!installed) {
    installed = true
    process.on('exit', removeAll)
  }
  dirs.add(dir)
  return { forget: () => { dirs.delete(dir) } }
}
