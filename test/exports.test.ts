// The published entry points, as users load them: `import` and `require` of the
// built package by its own name (run after `npm run build`, which `npm test` does first).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { builtPackageEnv } from './helpers/child-env.js'

const root = new URL('..', import.meta.url).pathname
// Children print JSON and run without colour: what they print is the same in a terminal, a pipe or CI.
const run = (args: string[]): string => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: builtPackageEnv() })

t.test('require() and import both load every entry point, with the same API', async t => {
  const cjs = JSON.parse(run(['-e', `
    const core = require('litefs-proxy'); const fastify = require('litefs-proxy/fastify')
    console.log(JSON.stringify({ core: Object.keys(core).sort(), fastify: Object.keys(fastify).sort(), plugin: typeof fastify.default, same: fastify.default === fastify.litefs }))`]))
  const esm = JSON.parse(run(['--input-type=module', '-e', `
    import * as core from 'litefs-proxy'; import * as fastify from 'litefs-proxy/fastify'; import plugin from 'litefs-proxy/fastify'
    console.log(JSON.stringify({ core: Object.keys(core).sort(), fastify: Object.keys(fastify).sort(), plugin: typeof plugin, same: plugin === fastify.litefs }))`]))
  t.same(esm, cjs, 'the two builds export the same names')
  t.ok(cjs.core.includes('LitefsCore') && cjs.core.includes('NodeState') && cjs.core.includes('parseTxid'))
  t.ok(cjs.fastify.includes('litefs') && cjs.fastify.includes('default'))
  t.equal(cjs.plugin, 'function')
  t.equal(cjs.same, true)
})

t.test('the CommonJS build registers in a CommonJS Fastify app', async t => {
  const out = run(['-e', `
    const Fastify = require('fastify')
    const fs = require('fs'), os = require('os'), path = require('path')
    const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'mount-'))
    fs.writeFileSync(path.join(mount, '.lag'), '+000000000\\n') // a live LiteFS mount, as the primary has it
    const app = Fastify()
    app.register(require('litefs-proxy/fastify'), { db: 'app.db', mount, api: false, role: 'primary' })
    app.ready().then(async () => { const r = await app.inject('/litefs/health'); console.log(JSON.stringify([r.statusCode, r.json().role])); await app.close(); fs.rmSync(mount, { recursive: true }) })`])
  t.same(JSON.parse(out), [200, 'primary'])
})

t.test('types are shipped for both builds', async t => {
  const pkg = JSON.parse(run(['-p', 'JSON.stringify(require("./package.json").exports)']))
  for (const entry of ['.', './fastify']) {
    t.match(pkg[entry].import.types, /^\.\/dist\/esm\/.*\.d\.ts$/)
    t.match(pkg[entry].require.types, /^\.\/dist\/cjs\/.*\.d\.ts$/)
  }
  const declared = run(['-e', 'const fs = require("fs"); console.log(JSON.stringify(["dist/esm/fastify.d.ts", "dist/cjs/fastify.d.ts", "dist/esm/index.d.ts"].every(f => fs.existsSync(f))))'])
  t.equal(JSON.parse(declared), true)
})
