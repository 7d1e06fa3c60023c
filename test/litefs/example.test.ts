// examples/fastify as its README runs it: `NODE=node-1 litefs mount -config
// examples/fastify/litefs.yml` from the package root, the file unchanged —
// LiteFS mounts /litefs, takes the static lease and starts the app with `exec`.
// The node runs in a private mount namespace (unshare), so its /litefs and a
// fresh tmpfs at /var/lib/litefs exist for it alone and vanish with it; it uses
// the example's own ports, 20202 and 8080.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createConnection } from 'node:net'
import { request } from 'undici'
import { findLitefs } from '../../lib/testing/litefs-cluster.js'
import { plainEnv } from '../helpers/child-env.js'
import { leavesNothingBehind } from './leftovers.js'

const root = new URL('../../', import.meta.url).pathname

async function portTaken (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createConnection({ port, host: '127.0.0.1' })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

async function until (what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

t.test('the Fastify example runs under LiteFS exec with its own litefs.yml', async t => {
  for (const port of [8080, 20202]) {
    if (await portTaken(port)) return t.fail(`port ${port} is taken: the example uses it (free it and run again)`)
  }
  mkdirSync('/litefs', { recursive: true }) // mount points; what is mounted on them stays in the namespace
  mkdirSync('/var/lib/litefs', { recursive: true })
  const litefs = findLitefs() as string
  const output: string[] = []
  const node = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
    'mount -t tmpfs tmpfs /var/lib/litefs && exec "$LITEFS" mount -config examples/fastify/litefs.yml'], {
    cwd: root,
    env: plainEnv({ NODE: 'node-1', LITEFS: litefs }), // its output is read below
    stdio: ['ignore', 'pipe', 'pipe']
  })
  for (const s of [node.stdout, node.stderr]) s.on('data', (b: Buffer) => output.push(...b.toString().split('\n').filter(Boolean)))
  const exited = new Promise<number | null>(resolve => node.once('exit', code => resolve(code)))
  t.teardown(() => { if (node.exitCode === null) node.kill('SIGKILL') })

  try {
    await until('the app answers on :8080', async () => (await request('http://127.0.0.1:8080/litefs/health')).statusCode === 200)
  } catch (err) {
    t.comment(output.slice(-30).join('\n'))
    throw err
  }
  const health = await (await request('http://127.0.0.1:8080/litefs/health')).body.json() as Record<string, unknown>
  t.equal(health.role, 'primary', 'LiteFS made node-1 primary; the plugin follows its API on :20202')

  const write = await request('http://127.0.0.1:8080/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'ada', text: 'hello' }) })
  t.equal(write.statusCode, 201)
  t.same(await write.body.json(), { id: 1 })
  const cookie = String(write.headers['set-cookie'])
  t.match(cookie, /^litefs-txid=[0-9a-f]{16}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=300$/)
  const after = await (await request('http://127.0.0.1:8080/litefs/health')).body.json() as Record<string, unknown>
  t.equal(cookie.slice('litefs-txid='.length, 'litefs-txid='.length + 16), after.txid, "the cookie is LiteFS's position after the write")
  const read = await request('http://127.0.0.1:8080/notes?user=ada', { headers: { cookie: cookie.split(';')[0] } })
  t.same(await read.body.json(), { notes: [{ id: 1, text: 'hello' }] })

  node.kill('SIGTERM') // LiteFS passes it to the app, waits for it, then unmounts
  t.equal(await exited, 0, 'LiteFS and the app stop cleanly')
  t.notOk(output.some(l => /busy|error/i.test(l) && !/exit-on-error/.test(l)), 'no error on the way out')
})

leavesNothingBehind(t)
