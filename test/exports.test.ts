// The published entry points, as users load them: `import` and `require` of the
// built package by its own name (run after `npm run build`, which `npm test` does first).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { builtPackageEnv } from './helpers/child-env.js'

const root = new URL('..', import.meta.url).pathname
// Children print JSON and run without colour: what they print is the same in a terminal, a pipe or CI.
const run = (args: string[], env: Record<string, string> = {}): string => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...builtPackageEnv(), ...env } })

const ENTRIES = ['litefs-proxy', 'litefs-proxy/fastify', 'litefs-proxy/express', 'litefs-proxy/http', 'litefs-proxy/dev', 'litefs-proxy/litefs-cluster']

t.test('require() and import load every entry point; require() gives what the default import gives, and every named export', async t => {
  const esm = JSON.parse(run(['--input-type=module', '-e', `
    const out = {}
    for (const name of ${JSON.stringify(ENTRIES)}) {
      const m = await import(name)
      // What hangs on the default export (litefs.skip(), litefs.durable()…) is used as much as a named export.
      const onDefault = typeof m.default === 'function' ? Object.keys(m.default) : []
      out[name] = { names: Object.keys(m).filter(k => k !== 'default').sort(), onDefault, defaultType: typeof m.default }
    }
    console.log(JSON.stringify(out))`]))
  const cjs = JSON.parse(run(['-e', `
    const out = {}
    for (const name of ${JSON.stringify(ENTRIES)}) {
      const m = require(name)
      out[name] = { type: typeof m, names: Object.keys(m).sort() }
    }
    console.log(JSON.stringify(out))`]))
  for (const name of ENTRIES) {
    for (const n of esm[name].names) t.ok(cjs[name].names.includes(n), `${name}: require() has ${n}`)
    for (const n of esm[name].onDefault) t.ok(cjs[name].names.includes(n), `${name}: require() has ${n}, as the default import has it`)
    if (esm[name].defaultType === 'function') t.equal(cjs[name].type, 'function', `${name}: require() is the function the default import is`)
  }
  t.ok(esm['litefs-proxy'].names.includes('LitefsCore') && esm['litefs-proxy'].names.includes('NodeState'))
  t.same(esm['litefs-proxy/express'].onDefault.sort(), ['alwaysForward', 'durable', 'errorHandler', 'skip'], 'the Express factory\'s own helpers are seen')
  // CommonJS TypeScript users see what the CommonJS types declare: each of those helpers too.
  const declared = run(['-e', 'console.log(require("fs").readFileSync("dist/cjs/require/express.d.ts", "utf8"))'])
  for (const n of esm['litefs-proxy/express'].onDefault) t.match(declared, new RegExp(`\\bconst ${n}:`), `the CommonJS types declare ${n}`)
})

t.test('CommonJS, as the README shows it under import: Express middleware and node:http wrap() are callable', async t => {
  const out = run(['-e', `
    const litefs = require('litefs-proxy/express')
    const mw = litefs({ db: 'app.db', mount: '/nonexistent', api: false, logger: { debug () {}, info () {}, warn () {}, error () {} } })
    const skip = litefs.skip(), fwd = litefs.alwaysForward(), err = litefs.errorHandler()
    const wrap = require('litefs-proxy/http')
    const l = wrap(() => {}, { db: 'app.db', mount: '/nonexistent', api: false, logger: { debug () {}, info () {}, warn () {}, error () {} } })
    const { wrap: named } = require('litefs-proxy/http')
    console.log([typeof mw, typeof skip, typeof fwd, typeof err, typeof l, named === wrap, litefs.default === litefs, typeof litefs.LitefsHttpError].join(' '))
    Promise.all([mw.close(), l.close()])`], { NODE_NO_WARNINGS: '1' })
  t.equal(out.trim(), 'function function function function function true true function')
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
