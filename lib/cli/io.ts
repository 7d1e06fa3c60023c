// Where a CLI command writes, and the environment it reads: the process's in
// `main.ts`, the tests' own in tests. Shared by every command (run.ts, config.ts, serve.ts).

export interface Io {
  out: (text: string) => void
  err: (text: string) => void
  env: NodeJS.ProcessEnv
  /** The package's version (`litefs-proxy --version`), as main.ts reads it from package.json. */
  version?: string
}
