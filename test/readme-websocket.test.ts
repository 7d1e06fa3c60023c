// README.md's "Websockets" runs as written: each program (Fastify with
// @fastify/websocket, Express and node:http with ws, Socket.IO), on the built
// package, as a replica on a stand-in LiteFS. A handshake carrying a token
// ahead of the replica is held while a handshake without one opens at once;
// once the replica has the write, the held socket opens and its first message,
// read from SQLite, has it. A malformed frame after a handshake ends no
// program (ws needs the snippet's 'error' listener; @fastify/websocket and
// engine.io listen themselves), which goes on serving.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { request } from 'undici'
import WebSocket from 'ws'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { builtPackageEnv } from './helpers/child-env.js'
import { root, snippet } from './helpers/readme-snippet.js'


// Inside the package, so `litefs-proxy/…` resolves to the built package (self-reference).
const dir = join(root, '.cache', `readme-websocket-${process.pid}`)
mkdirSync(dir, { recursive: true })
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)) })
  })
}

/**
 * A handshake, then a malformed frame (`ff 80 00 00 00 00`: RSV2 and RSV3 set);
 * resolves once the server has closed the connection (or after 2 s).
 */
async function malformedFrame (port: number, path: string): Promise<string> {
  return await new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    let out = ''
    const timer = setTimeout(() => { s.destroy(); resolve(out) }, 2000)
    s.on('data', d => {
      const first = out === ''
      out += String(d)
      if (first && out.startsWith('HTTP/1.1 101')) s.write(Buffer.from([0xff, 0x80, 0, 0, 0, 0]))
    })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve(out) })
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  })
}

/** A client; for Socket.IO it speaks engine.io's WebSocket transport and joins the main namespace. */
class Client {
  readonly ws: WebSocket
  readonly messages: string[] = []
  /** The close code, once closed. */
  closed: number | undefined
  constructor (t: { teardown: (fn: () => void) => void }, url: string, socketIo: boolean, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers })
    this.ws.on('close', code => { this.closed = code })
    this.ws.on('message', m => {
      const text = String(m)
      if (socketIo && text.startsWith('0{')) this.ws.send('40') // engine.io open: join the namespace
      if (!socketIo || text.startsWith('42')) this.messages.push(socketIo ? JSON.stringify(JSON.parse(text.slice(2))[1]) : text)
    })
    this.ws.on('error', () => {})
    t.teardown(() => { this.ws.terminate() })
  }

  async first (): Promise<unknown> {
    await until(() => this.messages.length > 0, 'a message')
    return JSON.parse(this.messages[0])
  }
}

for (const file of ['websocket-fastify.mjs', 'websocket-express.mjs', 'websocket-http.mjs', 'websocket-socketio.mjs']) {
  t.test(file, async t => {
    writeFileSync(join(dir, file), snippet(file))
    const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
    t.teardown(async () => { await fake.close() })
    const port = await freePort()
    const app = spawn(process.execPath, [file], { cwd: dir, env: { ...builtPackageEnv(), LITEFS_MOUNT: fake.mount, LITEFS_API: fake.apiUrl, PORT: String(port), PRIMARY_URL: 'http://127.0.0.1:9' } })
    let output = ''
    app.stdout.on('data', b => { output += b })
    app.stderr.on('data', b => { output += b })
    t.teardown(async () => { if (app.exitCode === null) { app.kill('SIGTERM'); await new Promise(resolve => app.once('exit', resolve)) } })
    const origin = `http://127.0.0.1:${port}`
    for (let i = 0; ; i++) {
      if (i > 400 || app.exitCode !== null) throw new Error(`${file} never listened: ${output}`)
      try { await (await request(origin)).body.dump(); break } catch { await new Promise(resolve => setTimeout(resolve, 25)) }
    }
    const socketIo = file === 'websocket-socketio.mjs'
    const url = `ws://127.0.0.1:${port}${socketIo ? '/socket.io/?EIO=4&transport=websocket' : '/live'}`

    // Before the database has arrived on this replica (walk 6: the snippet's throw ended the process).
    const early = new Client(t, url, socketIo)
    await until(() => early.closed !== undefined, 'the connection made before the database arrived is closed')
    if (!socketIo) t.equal(early.closed, 1011, 'closed with 1011 (internal error)')
    t.equal(app.exitCode, null, `the process lives on (${output.trim().split('\n').slice(-1)[0] ?? ''})`)
    const db = new Database(join(fake.mount, 'app.db'))
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)')

    // A malformed frame after the handshake (walk 7: no 'error' listener on the socket ended the process
    // with "RangeError: Invalid WebSocket frame: RSV2 and RSV3 must be clear").
    const path = url.slice(url.indexOf('/', 'ws://'.length))
    t.match(await malformedFrame(port, path), /^HTTP\/1\.1 101/, 'the handshake was answered, then the frame sent')
    await new Promise(resolve => setTimeout(resolve, 100))
    t.equal(app.exitCode, null, `a malformed frame ends no process: ${output.trim().split('\n').slice(-3).join(' | ')}`)
    // …and it goes on serving: the clients below connect after it.

    const held = new Client(t, url, socketIo, { cookie: `litefs-txid=${(7n).toString(16).padStart(16, '0')}` })
    const now = new Client(t, url, socketIo)
    t.same(await now.first(), [], 'without a token: at once, from what the replica has')
    t.equal(held.ws.readyState, WebSocket.CONNECTING, 'with a token ahead of the replica: held')
    db.prepare('INSERT INTO notes (text) VALUES (?)').run('my write') // replication brings the client's write…
    fake.advance(7n) // …and LiteFS says so
    t.same(await held.first(), [{ id: 1, text: 'my write' }], 'the first message has it')
    db.close()
    t.equal(app.exitCode, null, `still running: ${output}`)
  })
}
