// The README's shell snippets that run litefs-proxy itself (`litefs-proxy
// config …`, `litefs-proxy serve …`) are accepted as written: each command
// line is taken out of README.md, split as a shell splits it, and given to the
// same code the CLI runs (runConfig, serveOptions). The JavaScript snippets run
// in test:install and test:litefs; the quick start's and the install commands
// in .ci/run and test:install.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { runConfig } from '../lib/cli/config.js'
import { serveOptions, type SidecarOptions } from '../lib/sidecar/settings.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

/** Every `litefs-proxy …` command in the README's sh blocks, continuations joined, comments dropped. */
const commands = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
  .flatMap(m => m[1].replace(/\\\n\s*/g, '').split('\n'))
  .map(line => line.replace(/\s+#.*$/, '').trim())
  .filter(line => line.startsWith('litefs-proxy '))

/** A command line split into words as sh does it, for the quoting the README uses (single quotes). */
function words (line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map(m => m[1] ?? m[2])
}

const dir = mkdtempSync(join(tmpdir(), 'litefs-proxy-readme-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.equal(commands.filter(c => c.startsWith('litefs-proxy config ')).length, 1, 'the README has one config command')
t.equal(commands.filter(c => c.startsWith('litefs-proxy serve ')).length, 4, 'and four serve commands')

t.test('litefs-proxy config, as written: writes litefs.yml for node-2 of three, node-1 the primary', async t => {
  const argv = words(commands.find(c => c.startsWith('litefs-proxy config ')) as string).slice(2)
  let err = ''
  process.chdir(dir) // --out litefs.yml: where the user runs it
  const code = runConfig(argv, { out: () => {}, err: s => { err += s }, env: {} })
  t.equal(code, 0, err)
  const yml = parse(readFileSync(join(dir, 'litefs.yml'), 'utf8'))
  t.match(yml, { lease: { type: 'static', hostname: 'node-1', candidate: false }, exec: [{ cmd: 'gunicorn app:app' }] })
})

t.test('litefs-proxy serve, as written: flags, and --config with the README\'s litefs.yml and a proxy: section', async t => {
  const serves = commands.filter(c => c.startsWith('litefs-proxy serve ')).map(c => words(c).slice(2))
  const tokenPath = serves.find(w => w.includes('--token-path')) as string[]
  const [fromFile, fromFlags, filesOnly] = serves.filter(w => w !== tokenPath)
  t.match(serveOptions(tokenPath, {}, () => {}), { addr: ':8080', target: 'localhost:8000', db: 'db.sqlite3', tokenPath: '/litefs/token' }, 'writers outside HTTP: --token-path')
  t.match(serveOptions(fromFlags, {}, () => {}), { addr: ':8080', target: 'localhost:8000', db: 'db.sqlite3', passthrough: ['/static/*'], primaryUrl: 'http://{hostname}:8080' })
  t.match(serveOptions(filesOnly, {}, () => {}), { addr: ':8080', target: 'localhost:8000', db: 'db.sqlite3', api: false, role: 'primary' }, '--api false on the primary, with its --role')
  // The README's minimal litefs.yml, with the proxy: section serve reads from it (the README says to keep one in a copy for --config).
  const yml = (/```yaml\n([\s\S]*?)```/.exec(readme) as RegExpExecArray)[1]
  const path = join(dir, 'litefs.yml')
  writeFileSync(path, `${yml}proxy:\n  addr: ":8080"\n  target: "localhost:8000"\n  db: "db.sqlite3"\n`)
  t.same(fromFile.slice(0, 1), ['--config'])
  const options = serveOptions(['--config', path], { NODE: 'node-2' }, () => {}) as SidecarOptions
  t.match(options, { addr: ':8080', target: 'localhost:8000', db: 'db.sqlite3', mount: '/litefs', api: 'http://localhost:20202' }, "fuse.dir and http.addr from LiteFS's file")
})
