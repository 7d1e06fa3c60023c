// The package as a new user gets it (`npm run test:install`): installed into a
// scratch app from `npm pack` and from a git URL, the README's snippets run as
// they stand — ESM, and CommonJS as the README says to write them — against a
// stand-in LiteFS on a fresh mount (no database yet: the snippet creates it),
// and type-check as they stand with `tsc --strict` (checkJs) in every module
// mode, on TypeScript 5.9 (this package's) and 7.0; strict TypeScript accepts
// the documented uses, CommonJS named imports included, and rejects the bad
// route settings.
import t from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

/** The snippets also run as CommonJS (the others: the dev cluster's top-level await, the CORS example's ESM page). */
const AS_COMMONJS = ['express.mjs', 'fastify.mjs', 'http.mjs']

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
/** TypeScript 7 (the native compiler), installed beside this package's 5.9 under another name. */
const TYPESCRIPT_7 = '7.0.2'

// The compilers run as a user runs them: without this test runner's module hooks,
// under which TypeScript 7's ESM launcher cannot load (ERR_REQUIRE_CYCLE_MODULE).
// Dropping NODE_OPTIONS from the env given is not enough: tap's process tracking
// (@tapjs/processinfo) wraps child_process and puts its loader back into every
// child's NODE_OPTIONS; `env -u` takes it off between that wrapper and node.
const node = (args: string[], options: Parameters<typeof execFileSync>[2]): string =>
  String(execFileSync('env', ['-u', 'NODE_OPTIONS', process.execPath, ...args], options))

/** `tsc` (`typescript` or `typescript7` in `app`) on `files`; its output, '' when they type-check. */
function tsc (app: string, compiler: 'typescript' | 'typescript7', files: string[], extra: string[]): string {
  try {
    return node([join(app, 'node_modules', compiler, 'bin/tsc'), '--noEmit', '--strict', '--target', 'es2022', '--types', 'node', ...extra, ...files], { cwd: app, encoding: 'utf8', env: quietEnv })
  } catch (err) {
    return String((err as { stdout?: string }).stdout) + String((err as { stderr?: string }).stderr)
  }
}

/** Module modes a project can be in: ESM files check under the first two, CommonJS files under all. */
const MODES: Array<{ name: string, flags: string[], ts7: boolean }> = [
  { name: 'nodenext', flags: ['--module', 'nodenext', '--moduleResolution', 'nodenext'], ts7: true },
  { name: 'node16', flags: ['--module', 'node16', '--moduleResolution', 'node16'], ts7: true },
  { name: 'bundler', flags: ['--module', 'esnext', '--moduleResolution', 'bundler'], ts7: true },
  // TypeScript 7 removed node10 resolution (TS5108): 5.9 only.
  { name: 'node10', flags: ['--module', 'commonjs', '--moduleResolution', 'node10', '--esModuleInterop'], ts7: false }
]

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
    `typescript7@npm:typescript@${TYPESCRIPT_7}`,
    `@types/node@${dev['@types/node']}`, `@types/express@${dev['@types/express']}`, `@types/better-sqlite3@${dev['@types/better-sqlite3']}`,
    // What the README's "Websockets" programs import (they run in npm test: test/readme-websocket.test.ts; here they type-check).
    `ws@${dev.ws}`, `@types/ws@${dev['@types/ws']}`, `@fastify/websocket@${dev['@fastify/websocket']}`, `socket.io@${dev['socket.io']}`)
  // better-sqlite3 is native: reuse this checkout's build rather than compile it again.
  symlinkSync(join(root, 'node_modules/better-sqlite3'), join(app, 'node_modules/better-sqlite3'))
  for (const dep of ['bindings', 'file-uri-to-path']) {
    try { symlinkSync(join(root, 'node_modules', dep), join(app, 'node_modules', dep)) } catch {} // already there
  }

  const snippets = readmeSnippets()
  t.same([...snippets.keys()].sort(), ['browser.mjs', 'cors-api.mjs', 'dev.mjs', 'express.mjs', 'fastify.mjs', 'http.mjs', 'websocket-express.mjs', 'websocket-fastify.mjs', 'websocket-http.mjs', 'websocket-socketio.mjs'], 'the README names its runnable snippets')
  for (const [file, code] of snippets) {
    writeFileSync(join(app, file), code)
    if (AS_COMMONJS.includes(file)) writeFileSync(join(app, file.replace('.mjs', '.cjs')), asCommonJs(code))
  }

  const out = execFileSync(process.execPath, ['dev.mjs'], { cwd: app, encoding: 'utf8', env: quietEnv, timeout: 60_000 })
  t.match(out, /\[ \{ id: 1, text: 'hi' \} \]/, 'dev.mjs: the write on a replica, read on another with the cookie')

  for (const file of ['fastify.mjs', 'fastify.cjs', 'express.mjs', 'express.cjs', 'http.mjs', 'http.cjs']) {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 7n }) // a fresh cluster: no database yet
    const port = await freePort()
    let output = ''
    const child = spawn(process.execPath, [file], { cwd: app, env: { ...quietEnv, LITEFS_MOUNT: fake.mount, LITEFS_API: fake.apiUrl, PORT: String(port) } })
    child.stdout.on('data', b => { output += b })
    child.stderr.on('data', b => { output += b })
    try {
      const url = `http://127.0.0.1:${port}`
      await untilUp(`${url}/litefs/health`, child, () => output)
      const write = await request(`${url}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hello"}' })
      t.equal(write.statusCode, 201, `${file}: POST /notes`)
      t.match(String(write.headers['set-cookie']), /^litefs-txid=0000000000000007; Path=\/; HttpOnly; SameSite=Lax; Max-Age=300/, `${file}: cookied`)
      await write.body.dump()
      // A newcomer's first curl -X POST, without a body: the snippet says what it wants, no 500 and no stack trace.
      const bodiless = await request(`${url}/notes`, { method: 'POST' })
      t.equal(bodiless.statusCode, 400, `${file}: a POST without a body`)
      t.same(await bodiless.body.json(), { error: 'send JSON: {"text": "…"}' }, `${file}: says what to send`)
      const read = await request(`${url}/notes`)
      t.match(await read.body.json(), { notes: [{ id: 1, text: 'hello' }] }, `${file}: GET /notes`)
      t.notMatch(output, /does not exist yet|SQLITE_CANTOPEN/, `${file}: the primary created the database and its table`)
      const health = await request(`${url}/litefs/health`)
      t.equal(health.statusCode, 200, `${file}: health`)
      await health.body.dump()
    } finally {
      child.kill('SIGTERM')
      await new Promise(resolve => child.once('exit', resolve))
      await fake.close()
    }
  }

  await t.test('every README snippet type-checks as it stands (tsc --strict, checkJs), in every module mode, on TypeScript 5.9 and 7.0', async t => {
    const esm = [...snippets.keys()]
    const cjs = AS_COMMONJS.map(f => f.replace('.mjs', '.cjs'))
    for (const compiler of ['typescript', 'typescript7'] as const) {
      for (const mode of MODES) {
        if (compiler === 'typescript7' && !mode.ts7) continue
        // ESM snippets need a mode that reads import/export as ESM: not node10's commonjs.
        const files = mode.name === 'node10' ? cjs : [...esm, ...cjs]
        t.equal(tsc(app, compiler, files, ['--allowJs', '--checkJs', '--skipLibCheck', 'false', ...mode.flags]), '', `${compiler} ${mode.name}: ${files.join(' ')}`)
      }
    }
  })

  await t.test('strict TypeScript: the documented uses type-check, CommonJS named imports too; bad route settings do not', async t => {
    writeFileSync(join(app, 'uses.mts'), `import Fastify from 'fastify'
import express from 'express'
import litefs from 'litefs-proxy/fastify'
import expressLitefs from 'litefs-proxy/express'
import { wrap } from 'litefs-proxy/http'
import { createDevCluster } from 'litefs-proxy/dev'
const app = Fastify()
await app.register(litefs, { db: 'app.db', primaryUrl: 'http://127.0.0.1:8081' })
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
const cluster = await createDevCluster()
cluster.stop(cluster.nodes[0])
await cluster.close()
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
    // What TypeScript users write in CommonJS (issue 23: TS2595 and TS2339 before).
    writeFileSync(join(app, 'named.cts'), `import { wrap } from 'litefs-proxy/http'
import * as httpMod from 'litefs-proxy/http'
import { litefs } from 'litefs-proxy/express'
import * as expressMod from 'litefs-proxy/express'
import { litefs as plugin } from 'litefs-proxy/fastify'
void wrap((_req, res) => { res.end() }, { db: 'app.db' })
void httpMod.wrap((_req, res) => { res.end() }, { db: 'app.db' })
void litefs({ db: 'app.db' }); void expressMod.litefs({ db: 'app.db' }); void expressMod.skip()
void plugin
`)
    for (const compiler of ['typescript', 'typescript7'] as const) {
      t.equal(tsc(app, compiler, ['uses.mts', 'uses.cts', 'named.cts'], ['--skipLibCheck', 'false', '--module', 'nodenext', '--moduleResolution', 'nodenext']), '', `${compiler}: ESM and CommonJS in one program (nodenext): no error, no TS2717`)
      t.equal(tsc(app, compiler, ['uses.cts', 'named.cts'], ['--skipLibCheck', 'false', '--module', 'node16', '--moduleResolution', 'node16']), '', `${compiler}: CommonJS alone (node16)`)
    }
    t.equal(tsc(app, 'typescript', ['uses.cts', 'named.cts'], ['--skipLibCheck', 'false', '--module', 'commonjs', '--moduleResolution', 'node10', '--esModuleInterop']), '', 'CommonJS with node10 resolution (typesVersions)')
    // Compiled and run: what the named imports give is what they are typed as.
    node([join(app, 'node_modules/typescript/bin/tsc'), '--strict', '--target', 'es2022', '--types', 'node', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--outDir', 'named-out', 'named.cts'], { cwd: app, env: quietEnv })
    const ran = node(['-e', `require('./named-out/named.cjs'); setTimeout(() => process.exit(0), 100)`], { cwd: app, encoding: 'utf8', env: { ...quietEnv, NODE_NO_WARNINGS: '1' } })
    t.equal(ran, '', 'they run')
    writeFileSync(join(app, 'message.mts'), `import Fastify from 'fastify'\nimport litefs from 'litefs-proxy/fastify'\nconst app = Fastify(); await app.register(litefs, { db: 'a' })\napp.get('/f', { config: { litefs: { alwaysForward: 'yes' } } }, async () => 'f')\n`)
    t.match(tsc(app, 'typescript', ['message.mts'], ['--skipLibCheck', 'false', '--module', 'nodenext', '--moduleResolution', 'nodenext']), /Types of property 'alwaysForward' are incompatible\.\s+Type 'string' is not assignable to type 'Boolean'/, 'a readable error names the key')
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
