// Builds dist/esm (import) and dist/cjs (require) from lib/ with tsc, and marks
// each folder's module format so Node loads each build as what it is.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
rmSync('dist', { recursive: true, force: true })
for (const [project, dir, type] of [['tsconfig.json', 'dist/esm', 'module'], ['tsconfig.cjs.json', 'dist/cjs', 'commonjs']]) {
  execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' })
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}/package.json`, JSON.stringify({ type }) + '\n')
}

// One program may load both builds' types (an ESM file importing the plugin, a
// CommonJS one requiring it). Both declare `app.litefs` on Fastify's instance;
// declarations of one property must have one type, and the two LitefsCore
// classes are two types (they have private members). So the CommonJS types
// declare it with the ESM build's class: one type, whichever build a file loads.
const cjsFastify = 'dist/cjs/fastify.d.ts'
const augmented = readFileSync(cjsFastify, 'utf8')
const fixed = augmented.replace('litefs: LitefsCore<FastifyReply>;',
  "litefs: import('../esm/core/proxy.js', { with: { 'resolution-mode': 'import' } }).LitefsCore<FastifyReply>;")
if (fixed === augmented) throw new Error(`build: the FastifyInstance augmentation in ${cjsFastify} was not found`)
writeFileSync(cjsFastify, fixed)
