// README "Writers outside HTTP", behind `serve`: the Python job (```python
// job.py) and the curl lines of its sh block run as they stand, against
// `serve --token-path /litefs/token` on a primary and a replica over fake
// LiteFS nodes (token-endpoint.ts).
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { createSidecar, type Sidecar, type SidecarOptions } from '../lib/sidecar/sidecar.js'
import { silentLogger } from '../lib/core/logger.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const section = readme.slice(readme.indexOf('### Behind `serve`: `--token-path`'))
const job = (/```python job\.py\n([\s\S]*?)```/.exec(section) as RegExpExecArray)[1]
const curls = (/```sh\n([\s\S]*?)```/.exec(section) as RegExpExecArray)[1].split('\n').filter(l => l.startsWith('curl '))

const dir = mkdtempSync(join(tmpdir(), 'readme-serve-token-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'job.py'), job)

async function run (file: string, args: string[], env: Record<string, string> = {}): Promise<{ out: string, err: string, code: number }> {
  return await new Promise(resolve => {
    execFile(file, args, { cwd: dir, env: { ...process.env, ...env } }, (err, out, errOut) => {
      resolve({ out, err: errOut, code: err === null ? 0 : (err as { code?: number }).code ?? 1 })
    })
  })
}

async function node (t: typeof import('tap').default, fake: FakeLitefs, opts: Partial<SidecarOptions>): Promise<Sidecar> {
  const app = createServer((_req, res) => { res.end('app') }).listen(0, '127.0.0.1')
  await new Promise(resolve => app.once('listening', resolve))
  t.teardown(() => { app.close() })
  const s = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(app.address() as AddressInfo).port}`, db: 'db.sqlite3', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, tokenPath: '/litefs/token', logger: silentLogger, ...opts })
  await s.listen()
  t.teardown(async () => { await s.close() })
  await until(() => s.core.state.litefs === 'up' && (fake.role === 'primary' ? s.core.state.role === 'primary' : s.core.state.primaryHostname !== undefined))
  return s
}

t.test('the job: waits on a replica for the client\'s token, then gets the primary\'s token after its write', async t => {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n, db: 'db.sqlite3' })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n, db: 'db.sqlite3' })
  t.teardown(async () => { await pfake.close(); await rfake.close() })
  const primary = await node(t, pfake, {})
  const replica = await node(t, rfake, { primaryUrl: () => primary.url })

  const held = run('python3', ['job.py'], { LITEFS_PROXY_URL: replica.url, CLIENT_TOKEN: '000000000000000a' })
  await until(() => replica.core.state.waiterCount === 1, 'the job waiting')
  rfake.advance(10n)
  pfake.advance(11n, { event: false }) // the job's own commit, on the primary
  const r = await held
  t.equal(r.code, 0, r.err)
  t.match(JSON.parse(r.out), { waited: { reached: true, txid: '000000000000000a' }, token: '000000000000000b' })

  const none = await run('python3', ['job.py'], { LITEFS_PROXY_URL: replica.url })
  t.match(JSON.parse(none.out), { waited: { reached: true, txid: null }, token: '000000000000000b' }, 'no client token: at once')

  // The curl lines, against this replica's serve.
  const [post, get] = curls.map(line => line.replace(/\s+#.*$/, '').replaceAll('localhost:8080', replica.url.slice('http://'.length)))
  const posted = await run('bash', ['-c', post])
  t.same(JSON.parse(posted.out), { token: '000000000000000b', txid: '000000000000000b' }, post)
  const got = await run('bash', ['-c', get])
  t.match(JSON.parse(got.out), { reached: true, txid: '000000000000000a' }, get)
})

t.test('the job past --txid-timeout: urllib raises HTTPError 504 LITEFS_READ_TIMEOUT, as the README says', async t => {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n, db: 'db.sqlite3' })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n, db: 'db.sqlite3' })
  t.teardown(async () => { await pfake.close(); await rfake.close() })
  const primary = await node(t, pfake, {})
  const replica = await node(t, rfake, { primaryUrl: () => primary.url, readTimeout: 100 })
  const r = await run('python3', ['job.py'], { LITEFS_PROXY_URL: replica.url, CLIENT_TOKEN: '000000000000000a' })
  t.not(r.code, 0)
  t.match(r.err, /HTTPError: HTTP Error 504/)
})
