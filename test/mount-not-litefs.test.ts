// LiteFS's API answers, but `mount` is not its live mount: a typo (no such
// directory), or a plain directory (no `.lag`: where SQLite would create a new,
// empty database). LiteFS is not there for this app, so it must never write:
// writes wait for the mount, then 503 LITEFS_UNAVAILABLE, the handler never
// run; health says `unavailable`; LITEFS_MOUNT says why, once. Once the mount
// answers (LiteFS mounted it late, or it was there all along under a slow
// start) the app serves writes again without a restart. Every adapter and serve.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { ADAPTERS, serve } from './helpers/apps.js'
import { createSidecar } from '../lib/sidecar/sidecar.js'
import { lineLogger } from '../lib/sidecar/access-log.js'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { NodeState } from '../lib/core/node-state.js'

type Test = typeof t

interface Node { url: string, state: NodeState, writes: () => number, said: () => string[] }

/** The app of `flavour` on `mount`, with the fake's API (a primary). */
async function start (t: Test, flavour: string, fake: FakeLitefs, mount: string): Promise<Node> {
  // Said once: on the app's logger, or (Fastify's, silent here) as a process warning.
  const said: string[] = []
  const logger = { debug () {}, info () {}, warn (o: unknown, m?: string) { said.push(String(m ?? o)) }, error () {} }
  const onWarning = (w: Error & { code?: string }): void => { if (w.name === 'LitefsProxyWarning' && w.message.includes(mount)) said.push(`${w.code as string} ${w.message}`) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const opts = { mount, readTimeout: 300, primaryRedirectTimeout: 300, ...(flavour === 'fastify' ? {} : { logger }) } as const
  if (flavour !== 'serve') {
    const served = await serve(flavour as typeof ADAPTERS[number], fake, opts, { ready: false })
    t.teardown(served.close)
    return { url: served.url, state: served.state, writes: () => served.writes, said: () => said }
  }
  let writes = 0
  const app = createServer((req, res) => {
    if (req.method === 'POST') writes++
    req.resume().on('end', () => res.writeHead(200).end('{}'))
  })
  await new Promise<void>(resolve => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { app.closeAllConnections(); app.close() })
  const lines: string[] = []
  const sidecar = createSidecar({ addr: '127.0.0.1:0', target: `127.0.0.1:${(app.address() as AddressInfo).port}`, db: 'app.db', mount, api: fake.apiUrl, pollInterval: 1, readTimeout: 300, primaryRedirectTimeout: 300, logger: lineLogger('info', 'json', l => lines.push(l)) })
  await sidecar.listen()
  t.teardown(async () => { await sidecar.close() })
  return { url: sidecar.url, state: sidecar.core.state, writes: () => writes, said: () => lines.filter(l => l.includes('"level":"warn"')) }
}

for (const flavour of [...ADAPTERS, 'serve']) {
  for (const [what, makeMount] of [
    ['no such directory', (dir: string) => join(dir, 'nowhere')],
    ['a plain directory', (dir: string) => dir]
  ] as const) {
    t.test(`${flavour}: the API answers, the mount is ${what}`, async t => {
      const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
      const dir = mkdtempSync(join(tmpdir(), 'not-litefs-'))
      t.teardown(async () => { await fake.close(); rmSync(dir, { recursive: true, force: true }) })
      const mount = makeMount(dir)
      const node = await start(t, flavour, fake, mount)
      await until(() => fake.subscribers === 1, 'subscribed: the API answers')
      t.equal(node.state.litefs, 'down', 'LiteFS is not up for this app')

      const write = await request(`${node.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      const body = await write.body.json() as { code: string }
      t.equal(write.statusCode, 503)
      t.equal(body.code, 'LITEFS_UNAVAILABLE')
      t.equal(node.writes(), 0, 'the handler never ran')

      const health = await request(`${node.url}/litefs/health`)
      t.equal(health.statusCode, 503)
      t.match(await health.body.json(), { status: 'unavailable' })
      t.equal(node.said().filter(l => l.includes('LITEFS_MOUNT') || /not its mount|not a live LiteFS mount|does not exist/.test(l)).length, 1, 'LITEFS_MOUNT, once')
    })
  }

  t.test(`${flavour}: a mount that answers late is taken up while the stream flows`, async t => {
    const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
    const dir = mkdtempSync(join(tmpdir(), 'late-mount-'))
    t.teardown(async () => { await fake.close(); rmSync(dir, { recursive: true, force: true }) })
    const node = await start(t, flavour, fake, dir)
    // Subscribed (LITEFS_MOUNT is said then), and down: the mount does not answer.
    await until(() => node.said().some(l => /not a live LiteFS mount|not its mount/.test(l)) && node.state.litefs === 'down', 'subscribed, down while the mount does not answer')
    // LiteFS's files appear (what the fake's own mount holds for a primary).
    writeFileSync(join(dir, '.lag'), '+000000000\n')
    writeFileSync(join(dir, 'app.db-pos'), '0000000000000003/00000000000000ab\n')
    await until(() => node.state.litefs === 'up', 'up once the mount answers')
    const write = await request(`${node.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    await write.body.dump()
    t.equal(write.statusCode, 200)
    t.equal(node.writes(), 1)
  })
}

t.test('a role LiteFS announces while the mount does not answer is the one taken up when it does', async t => {
  const fake = await FakeLitefs.start({ role: 'primary', txid: 3n })
  const dir = mkdtempSync(join(tmpdir(), 'late-role-'))
  t.teardown(async () => { await fake.close(); rmSync(dir, { recursive: true, force: true }) })
  const node = await start(t, 'http', fake, dir)
  await until(() => node.said().some(l => /not a live LiteFS mount|not its mount/.test(l)) && node.state.litefs === 'down', 'subscribed, down')
  fake.becomeReplica('node-b') // primaryChange on the stream, while down
  const driver = (node.state as unknown as { driver: { apiRole: { hostname?: string } } }).driver
  await until(() => driver.apiRole.hostname === 'node-b', 'kept, not applied')
  t.equal(node.state.role, 'unknown', 'no role while LiteFS is not up for this app')
  writeFileSync(join(dir, '.lag'), '+000000000\n')
  writeFileSync(join(dir, 'app.db-pos'), '0000000000000003/00000000000000ab\n')
  writeFileSync(join(dir, '.primary'), 'node-b\n')
  await until(() => node.state.litefs === 'up', 'up once the mount answers')
  t.not(node.state.role, 'primary', 'a replica now, as the stream last said')
})
