// Builds dist/esm (import) and dist/cjs (require) from lib/ with tsc, and marks
// each folder's module format so Node loads each build as what it is.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
rmSync('dist', { recursive: true, force: true })
for (const [project, dir, type] of [['tsconfig.json', 'dist/esm', 'module'], ['tsconfig.cjs.json', 'dist/cjs', 'commonjs']]) {
  execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' })
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}/package.json`, JSON.stringify({ type }) + '\n')
}
