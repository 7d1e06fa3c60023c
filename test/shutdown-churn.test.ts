// Issue 18, kind 1: SIGTERM while keep-alive clients close their connections.
// Closing resets the server's idle connections (idle-reset.ts); one whose client
// had just half-closed is one Node's server is already closing, libuv refuses
// to reset it, and the process never exited (spinning). Each adapter and
// `serve` run as their own process with the README's shutdown code; every
// round half-closes a batch of kept-alive connections and sends SIGTERM at
// once, then more connections keep coming. Every process must exit, code 0.
import t from 'tap'
import type { ChildProcess } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { startAdapter, startServe } from './helpers/shutdown-processes.js'

// Each process takes seconds to load here: the file needs more than tap's 30 s.
t.setTimeout(300_000)

const ROUNDS = 3
const CONNECTIONS = 40
/** A process that has not exited this long after SIGTERM is hung (no request here takes more than a few ms). */
const HUNG_AFTER = 8000

/** A kept-alive connection that has had one answer. */
async function kept (port: number): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))
    let text = ''
    const onData = (b: Buffer): void => {
      text += b.toString()
      if (/\r\n\r\n[\s\S]*x{1024}/.test(text)) { socket.off('data', onData); resolve(socket) }
    }
    socket.on('data', onData)
    socket.once('error', reject)
  })
}

/** New connections, one request each, until `stop()`: the churn while the process closes. */
function churn (port: number): { stop: () => Promise<void> } {
  let stopped = false
  const one = async (): Promise<void> => {
    for (let i = 0; i < 10_000 && !stopped; i++) {
      await new Promise<void>(resolve => {
        const s = connect(port, '127.0.0.1', () => s.end('GET / HTTP/1.1\r\nhost: x\r\n\r\n')) // sent and half-closed at once
        s.on('data', () => {})
        s.once('close', () => resolve())
        s.once('error', () => resolve())
      })
    }
  }
  const workers = Array.from({ length: 8 }, one)
  return { stop: async () => { stopped = true; await Promise.all(workers) } }
}

async function round (child: ChildProcess, port: number): Promise<{ code: number | null, signal: NodeJS.Signals | null, hung: boolean }> {
  const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, async () => await kept(port)))
  for (const s of sockets) s.on('error', () => {})
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  const load = churn(port)
  for (const s of sockets) s.end() // half-closed: the server ends its side at once…
  child.kill('SIGTERM') // …as the process closes
  let hung = false
  const guard = setTimeout(() => { hung = true; child.kill('SIGKILL') }, HUNG_AFTER)
  const result = await exited
  clearTimeout(guard)
  await load.stop()
  for (const s of sockets) s.destroy()
  return { ...result, hung }
}

for (const adapter of ['fastify', 'express', 'http', 'serve']) {
  t.test(`${adapter}: SIGTERM under keep-alive churn, ${ROUNDS} rounds: the process exits every time`, { timeout: 120_000 }, async t => {
    const history: Array<{ code: number | null, signal: NodeJS.Signals | null, hung: boolean }> = []
    let fake: FakeLitefs | undefined
    let app: { child: ChildProcess, port: number } | undefined
    if (adapter === 'serve') {
      fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
      app = await startAdapter('http') // the app behind serve (its own SIGTERM is not sent)
    }
    t.teardown(async () => {
      app?.child.kill('SIGKILL')
      await fake?.close()
    })
    // Started together (a process takes seconds to load here), then one round each.
    const processes = await Promise.all(Array.from({ length: ROUNDS }, async () => adapter === 'serve' ? await startServe(app?.port as number, fake as FakeLitefs) : await startAdapter(adapter)))
    t.teardown(() => { for (const p of processes) p.child.kill('SIGKILL') })
    for (const { child, port } of processes) history.push(await round(child, port))
    t.same(history, Array.from({ length: ROUNDS }, () => ({ code: 0, signal: null, hung: false })), `every round: exited with code 0 (${JSON.stringify(history)})`)
  })
}

t.test('closing with idle keep-alive connections on TLS and on a Unix socket: no reset tried (Node would throw), the server closes', async t => {
  const { readFileSync, mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { createServer, request: httpRequest } = await import('node:http')
  const https = await import('node:https')
  const { wrap } = await import('../lib/http.js')
  const fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
  const dir = mkdtempSync(join(tmpdir(), 'sock-'))
  t.teardown(async () => { await fake.close(); rmSync(dir, { recursive: true, force: true }) })
  const tls = { key: readFileSync(new URL('./fixtures/tls/key.pem', import.meta.url)), cert: readFileSync(new URL('./fixtures/tls/cert.pem', import.meta.url)) }
  for (const kind of ['tls', 'unix'] as const) {
    const listener = wrap((_req, res) => { res.end('ok') }, { db: 'app.db', mount: fake.mount, api: false, role: 'primary', logger: { debug () {}, info () {}, warn () {}, error () {} } })
    const server = kind === 'tls' ? https.createServer(tls, listener) : createServer(listener)
    const path = join(dir, 'app.sock')
    await new Promise<void>(resolve => kind === 'tls' ? server.listen(0, '127.0.0.1', resolve) : server.listen(path, resolve))
    const agent = kind === 'tls' ? new https.Agent({ keepAlive: true, ca: tls.cert }) : undefined
    const status = await new Promise<number>((resolve, reject) => {
      const target = kind === 'tls' ? { host: '127.0.0.1', port: (server.address() as { port: number }).port, agent } : { socketPath: path, headers: { connection: 'keep-alive' } }
      const req = (kind === 'tls' ? https.request : httpRequest)({ ...target, path: '/' }, res => { res.resume(); res.on('end', () => resolve(res.statusCode as number)) })
      req.on('error', reject)
      req.end()
    })
    t.equal(status, 200, `${kind}: answered; the connection stays open, idle`)
    await t.resolves(listener.close(), `${kind}: close() does not throw`)
    await new Promise(resolve => server.close(resolve))
    agent?.destroy()
    t.pass(`${kind}: the server closed`)
  }
})
