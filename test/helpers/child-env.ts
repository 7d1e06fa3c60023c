// The environment for a child process whose output a test reads. tap turns
// colour on for its test processes when it reports to a terminal (FORCE_COLOR),
// and every child inherits it: `console.log(true)` then prints `\x1b[33mtrue\x1b[39m`.
// Colour off, both ways Node and libraries read it (FORCE_COLOR=0 wins over a
// terminal; with FORCE_COLOR=0, NO_COLOR=1 draws no warning).
export function plainEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...extra }
}

/** The same, for a child running the built package (dist), which is not the source under coverage. */
export function builtPackageEnv (): NodeJS.ProcessEnv {
  return plainEnv({ _TAPJS_PROCESSINFO_COVERAGE_: '0' })
}
