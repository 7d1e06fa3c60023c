// Closing with answers still in flight on kept-alive connections (a balancer's,
// a replica's forwarder's). Node's server.close() ends only the connections
// idle at that instant; a busy one stayed kept-alive after its answer, so the
// README's shutdown code waited for its client (Fastify: 72 s; for ever while
// the client kept using it), and LiteFS, which waits for its `exec` app before
// it hands the lease over, waited as long. Now the last answer on each busy
// connection says `Connection: close` (last-answer.ts). Each adapter and
// `serve` run as their own process with the README's shutdown code (SIGTERM),
// through raw sockets.
import t from 'tap'
import type { ChildProcess } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { startAdapter, startServe } from './helpers/shutdown-processes.js'

t.setTimeout(300_000) // each process takes seconds to load here

/** A raw kept-alive connection: what arrived, and whether the server ended it. */
function raw (port: number): { socket: Socket, text: () => string, ended: () => boolean } {
  const socket = connect(port, '127.0.0.1')
  let text = ''
  let ended = false
  socket.setEncoding('latin1').on('data', (d: string) => { text += d }).on('end', () => { ended = true }).on('error', () => { ended = true })
  return { socket, text: () => text, ended: () => ended }
}

/** True once `port` refuses connections: the process has begun closing. */
async function refuses (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', () => resolve(true))
  })
}

/** Poll `cond` (which may be async) until it holds: bounded, never timed. */
async function eventually (cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; !(await cond()); i++) {
    if (i > 20_000) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** Each answer's status line and Connection header, in order. */
function answers (text: string): Array<{ status: number, connection: string | undefined }> {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n/g)].map(m => ({
    status: Number(m[1]),
    connection: /^connection: *([^\r]*)$/im.exec(m[2])?.[1].toLowerCase()
  }))
}

async function count (port: number): Promise<number> {
  const c = raw(port)
  c.socket.write('GET /writes HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
  await eventually(() => c.ended(), 'the count answered')
  return Number(/\r\n\r\n(\d+)$/.exec(c.text())?.[1])
}

for (const adapter of ['fastify', 'express', 'http', 'serve']) {
  t.test(`${adapter}: an answer in flight at SIGTERM says Connection: close, and the process exits once it is sent`, async t => {
    let fake: FakeLitefs | undefined
    let behind: { child: ChildProcess, port: number } | undefined
    if (adapter === 'serve') {
      fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
      behind = await startAdapter('http') // the app behind serve (never sent SIGTERM)
    }
    const p = adapter === 'serve' ? await startServe(behind?.port as number, fake as FakeLitefs, ['--role', 'primary']) : await startAdapter(adapter)
    t.teardown(async () => { p.child.kill('SIGKILL'); behind?.child.kill('SIGKILL'); await fake?.close() })
    const app = behind ?? p // who holds the slow answer
    const exited = new Promise<number | null>(resolve => p.child.once('exit', code => resolve(code)))

    const c = raw(p.port)
    t.teardown(() => { c.socket.destroy() })
    c.socket.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\n')
    await new Promise(resolve => setTimeout(resolve, 100)) // the request on its way in (not a timing assertion: slow answers only when released)
    p.child.kill('SIGTERM')
    await eventually(async () => await refuses(p.port), 'the listener closed: the close has begun')
    app.child.send('release')
    await eventually(() => c.ended(), 'the server ended the connection after its answer')
    t.same(answers(c.text()), [{ status: 200, connection: 'close' }], `one answer, 200, saying Connection: close (${JSON.stringify(c.text())})`)
    t.equal(await exited, 0, 'the process exited, code 0, with the client still connected')
  })

  t.test(`${adapter}: a write pipelined behind an answer in flight at SIGTERM is answered, or not run at all`, async t => {
    let fake: FakeLitefs | undefined
    let behind: { child: ChildProcess, port: number } | undefined
    if (adapter === 'serve') {
      fake = await FakeLitefs.start({ role: 'primary', txid: 1n })
      behind = await startAdapter('http')
    }
    const p = adapter === 'serve' ? await startServe(behind?.port as number, fake as FakeLitefs, ['--role', 'primary']) : await startAdapter(adapter)
    t.teardown(async () => { p.child.kill('SIGKILL'); behind?.child.kill('SIGKILL'); await fake?.close() })
    const app = behind ?? p
    let writesIn = -1
    const exited = new Promise<number | null>(resolve => p.child.once('exit', code => resolve(code)))

    const c = raw(p.port)
    t.teardown(() => { c.socket.destroy() })
    c.socket.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\nPOST /write HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n')
    await new Promise(resolve => setTimeout(resolve, 100)) // both on their way in (not a timing assertion)
    if (adapter !== 'serve') writesIn = await count(p.port) // in-process: the write runs at once, behind the slow answer
    p.child.kill('SIGTERM')
    await eventually(async () => await refuses(p.port), 'the listener closed: the close has begun')
    app.child.send('release')
    // serve ends the connection after the answer in flight; in-process, the write's head was built
    // before the close began (kept-alive), so the connection is the server's close's: the client
    // leaves once it has both answers, as a client that is done does.
    await eventually(() => c.ended() || answers(c.text()).length === 2, 'the server ended the connection, or both answers came')
    c.socket.end()
    const got = answers(c.text())
    if (adapter === 'serve') {
      // serve sends pipelined requests to the app one at a time: the write never left.
      t.same(got, [{ status: 200, connection: 'close' }], 'the answer in flight, saying Connection: close; nothing after it')
      t.equal(await count((behind as { port: number }).port), 0, 'the write was not run')
    } else {
      t.equal(writesIn, 1, 'the write ran before the close (Node runs pipelined requests at once)')
      t.same(got.map(a => a.status), [200, 201], 'both answered, in order: the read kept the connection open for the write behind it')
      t.not(got[0].connection, 'close', 'the read did not close the connection before the answer behind it')
    }
    t.equal(await exited, 0, 'the process exited, code 0')
  })
}
