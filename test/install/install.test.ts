// The package as a new user gets it (`npm run test:install`): installed into a
// scratch app from `npm pack` and from a git URL, the README's snippets run as
// they stand — ESM, and CommonJS as the README says to write them — against a
// stand-in LiteFS, and strict TypeScript accepts the documented uses and
// rejects the bad route settings, in ESM, CommonJS and old node10 resolution.
import t from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { request } from 'undici'
import { FakeLitefs } from '../helpers/fake-litefs.js'

const root = new URL('../../', import.meta.url).pathname
const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const quietEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }
const npm = (cwd: string, ...args: string[]): string => execFileSync('npm', args, { cwd, encoding: 'utf8', env: quietEnv, stdio: ['ignore', 'pipe', 'pipe'] })

const work = mkdtempSync(join(tmpdir(), 'litefs-proxy-install-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** The README's fenced blocks named `js <file>`. */
function readmeSnippets (): Map<string, string> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const found = new Map<string, string>()
  for (const m of readme.matchAll(/```js (\S+)\n([\s\S]*?)```/g)) found.set(m[1], m[2])
  return found
}

/**
 * The same program in CommonJS, as the README tells CommonJS users to write
 * it: `require` where it imports, and top-level await inside an async main.
 */
function asCommonJs (esm: string): string {
  const body = esm
    .replace(/^import \{ (\w+) \} from '([^']+)'$/gm, "const { $1 } = require('$2')")
    .replace(/^import (\w+) from '([^']+)'$/gm, "const $1 = require('$2')")
  return `(async () => {\n${body}\n})().catch(err => { console.error(err); process.exit(1) })\n`
}

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)) })
  })
}

async function untilUp (url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}): ${output()}`)
    try { await (await request(url)).body.dump(); return } catch {}
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`never listened: ${output()}`)
}

let tarball: string

t.before(() => {
  // dist is built (npm run test:install builds first): pack what a user would get.
  const name = npm(root, 'pack', '--ignore-scripts', '--pack-destination', work).trim().split('\n').pop() as string
  tarball = join(work, name)
})

t.test('installed from `npm pack`: the README snippets run, ESM and CommonJS', async t => {
  const app = join(work, 'from-pack')
  execFileSync('mkdir', ['-p', app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }))
  const dev = own.devDependencies as Record<string, string>
  npm(app, 'install', '--prefer-offline', tarball, `fastify@${dev.fastify}`, `express@${dev.express}`, `typescript@${dev.typescript}`,
    `@types/node@${dev['@types/node']}`, `@types/express@${dev['@types/express']}`, `@types/better-sqlite3@${dev['@types/better-sqlite3']}`)
  // better-sqlite3 is native: reuse this checkout's build rather than compile it again.
  symlinkSync(join(root, 'node_modules/better-sqlite3'), join(app, 'node_modules/better-sqlite3'))
  for (const dep of ['bindings', 'file-uri-to-path']) {
    try { symlinkSync(join(root, 'node_modules', dep), join(app, 'node_modules', dep)) } catch {} // already there
  }

  const snippets = readmeSnippets()
  t.same([...snippets.keys()].sort(), ['browser.mjs', 'cors-api.mjs', 'dev.mjs', 'express.mjs', 'fastify.mjs', 'http.mjs'], 'the README names its runnable snippets')
  for (const [file, code] of snippets) {
    writeFileSync(join(app, file), code)
    if (['express.mjs', 'fastify.mjs', 'http.mjs'].includes(file)) writeFileSync(join(app, file.replace('.mjs', '.cjs')), asCommonJs(code))
  }

  const out = execFileSync(process.execPath, ['dev.mjs'], { cwd: app, encoding: 'utf8', env: quietEnv, timeout: 60_000 })
  t.match(out, /\[ \{ id: 1, text: 'hi' \} \]/, 'dev.mjs: the write on a replica, read on another with the cookie')

  for (const file of ['fastify.mjs', 'fastify.cjs', 'express.mjs', 'express.cjs', 'http.mjs', 'http.cjs']) {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 7n })
    const db = new Database(join(fake.mount, 'app.db'))
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)')
    db.close()
    const port = await freePort()
    let output = ''
    const child = spawn(process.execPath, [file], { cwd: app, env: { ...quietEnv, LITEFS_MOUNT: fake.mount, LITEFS_API: fake.apiUrl, PORT: String(port) } })
    child.stdout.on('data', b => { output += b })
    child.stderr.on('data', b => { output += b })
    try {
      const url = `http://127.0.0.1:${port}`
      await untilUp(`${url}/notes`, child, () => output)
      const write = await request(`${url}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hello"}' })
      t.equal(write.statusCode, 201, `${file}: POST /notes`)
      t.match(String(write.headers['set-cookie']), /^litefs-txid=0000000000000007; Path=\/; HttpOnly; SameSite=Lax; Max-Age=300/, `${file}: cookied`)
      await write.body.dump()
      const read = await request(`${url}/notes`)
      t.match(await read.body.json(), { notes: [{ id: 1, text: 'hello' }] }, `${file}: GET /notes`)
      const health = await request(`${url}/litefs/health`)
      t.equal(health.statusCode, 200, `${file}: health`)
      await health.body.dump()
    } finally {
      child.kill('SIGTERM')
      await new Promise(resolve => child.once('exit', resolve))
      await fake.close()
    }
  }

  await t.test('strict TypeScript: the documented uses type-check; bad route settings do not', async t => {
    writeFileSync(join(app, 'uses.mts'), `import Fastify from 'fastify'
import express from 'express'
import litefs from 'litefs-proxy/fastify'
import expressLitefs from 'litefs-proxy/express'
import { wrap } from 'litefs-proxy/http'
import { createDevCluster } from 'litefs-proxy/dev'
const app = Fastify()
await app.register(litefs, { db: 'app.db' })
app.get('/a', { config: { litefs: false } }, async request => request.litefs?.kind)
app.get('/b', { config: { litefs: { alwaysForward: true } } }, async () => app.litefs.state.role)
// @ts-expect-error 'off' is not a setting
app.get('/c', { config: { litefs: 'off' } }, async () => 'c')
// @ts-expect-error true is not a setting
app.get('/d', { config: { litefs: true } }, async () => 'd')
// @ts-expect-error a misspelt key
app.get('/e', { config: { litefs: { alwaysFoward: true } } }, async () => 'e')
// @ts-expect-error a value that is not a boolean
app.get('/f', { config: { litefs: { alwaysForward: 'yes' } } }, async () => 'f')
express().use(expressLitefs({ db: 'x' })).use(expressLitefs.skip())
wrap((req, res) => { res.end(req.litefs?.kind) }, { db: 'x' })
void createDevCluster
`)
    writeFileSync(join(app, 'uses.cts'), `import litefs = require('litefs-proxy/express')
import wrap = require('litefs-proxy/http')
import plugin = require('litefs-proxy/fastify')
import Fastify = require('fastify')
const options: litefs.ExpressLitefsOptions = { db: 'app.db' }
const proxy: litefs.LitefsMiddleware = litefs(options)
void proxy; void litefs.skip(); void litefs.errorHandler()
void wrap((req, res) => { res.end(String(req.litefs?.kind)) }, { db: 'app.db' })
const f = Fastify()
void f.register(plugin, { db: 'app.db' })
f.get('/x', async () => f.litefs.state.role)
`)
    const tsc = join(app, 'node_modules/typescript/bin/tsc')
    const check = (files: string[], extra: string[]): string => {
      try {
        return execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', 'false', '--target', 'es2022', '--types', 'node', ...extra, ...files], { cwd: app, encoding: 'utf8' })
      } catch (err) {
        return String((err as { stdout?: string }).stdout) + String((err as { stderr?: string }).stderr)
      }
    }
    t.equal(check(['uses.mts', 'uses.cts'], ['--module', 'nodenext', '--moduleResolution', 'nodenext']), '', 'ESM and CommonJS in one program (nodenext): no error, no TS2717')
    t.equal(check(['uses.cts'], ['--module', 'node16', '--moduleResolution', 'node16']), '', 'CommonJS alone (node16)')
    t.equal(check(['uses.cts'], ['--module', 'commonjs', '--moduleResolution', 'node10', '--esModuleInterop']), '', 'CommonJS with node10 resolution (typesVersions)')
    writeFileSync(join(app, 'message.mts'), `import Fastify from 'fastify'\nimport litefs from 'litefs-proxy/fastify'\nconst app = Fastify(); await app.register(litefs, { db: 'a' })\napp.get('/f', { config: { litefs: { alwaysForward: 'yes' } } }, async () => 'f')\n`)
    t.match(check(['message.mts'], ['--module', 'nodenext', '--moduleResolution', 'nodenext']), /Types of property 'alwaysForward' are incompatible\.\s+Type 'string' is not assignable to type 'Boolean'/, 'a readable error names the key')
  })
})

t.test('installed from a git URL: built on install (prepare), every entry point loads', async t => {
  const app = join(work, 'from-git')
  execFileSync('mkdir', ['-p', app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-git', private: true }))
  npm(app, 'install', '--prefer-offline', `git+file://${root}`)
  const out = execFileSync(process.execPath, ['-e', `
    const litefs = require('litefs-proxy/express'); const wrap = require('litefs-proxy/http'); const plugin = require('litefs-proxy/fastify')
    import('litefs-proxy/fastify').then(esm => console.log([typeof litefs, typeof litefs.skip, typeof wrap, typeof plugin, typeof esm.default].join(' ')))`], { cwd: app, encoding: 'utf8', env: quietEnv })
  t.equal(out.trim(), 'function function function function function')
  const files = execFileSync('ls', [join(app, 'node_modules/litefs-proxy')], { encoding: 'utf8' }).split('\n')
  for (const f of ['dist', 'lib', 'LICENSE', 'README.md']) t.ok(files.includes(f), `ships ${f}`)
})
