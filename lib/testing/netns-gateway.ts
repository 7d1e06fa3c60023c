/**
 * How the test process reaches into a cluster's private network (`netns.ts`):
 * a small relay process in the hub namespace listens on a Unix socket (a file,
 * so it is reachable from any namespace); each connection starts with one line,
 * `<host> <port>\n`, the relay connects there from inside the network and
 * answers one byte, `K` (connected: from now on the socket is that TCP stream,
 * both ways) or `E` (refused, unreachable, or no answer within 3 s). Nothing was
 * sent to the target before `K`, so a caller may try another one.
 *
 * `gateway.connect(host, port)` gives such a socket; `gateway.dispatcher` is an
 * undici Agent whose connections go through it, so `request('http://10.213.0.11:20202/info',
 * { dispatcher })` works from the test process. The relay is tracked by the
 * safety net and also exits when the test process's end of its stdin closes.
 * The balancer that uses it is `balancer.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { Agent, type Dispatcher } from 'undici'
import { trackKill, untrackKill } from './safety-net.js'
import { withTimeout } from './wait.js'

/** The relay, as a program for `node -e` (this package is built to two module formats: no file path to spawn is safe in both). */
const RELAY = String.raw`
const net = require('node:net'), fs = require('node:fs')
const path = process.argv[1]
try { fs.unlinkSync(path) } catch {}
const server = net.createServer((client) => {
  client.on('error', () => {})
  let head = ''
  const onReadable = () => {
    let chunk
    while ((chunk = client.read()) !== null) {
      head += chunk.toString('latin1')
      const nl = head.indexOf('\n')
      if (nl === -1) { if (head.length > 300) client.destroy(); continue }
      client.removeListener('readable', onReadable)
      const rest = Buffer.from(head.slice(nl + 1), 'latin1')
      const [host, port] = head.slice(0, nl).split(' ')
      const up = net.connect({ host, port: Number(port), timeout: 3000 })
      const fail = () => { up.destroy(); if (!client.destroyed) client.end('E') }
      up.once('timeout', fail)
      up.once('error', fail)
      up.once('connect', () => {
        up.setTimeout(0)
        up.removeListener('error', fail)
        up.on('error', () => client.destroy())
        client.on('close', () => up.destroy())
        up.on('close', () => client.destroy())
        client.write('K')
        if (rest.length > 0) up.write(rest)
        client.pipe(up)
        up.pipe(client)
      })
      return
    }
  }
  client.on('readable', onReadable)
})
server.listen(path, () => process.stdout.write('ready\n'))
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
`

export interface Gateway {
  /** A TCP stream to `host:port` inside the network; rejects (ECONNREFUSED) when the relay could not connect. */
  connect (host: string, port: number): Promise<Socket>
  /** An undici dispatcher whose connections go through the gateway. */
  readonly dispatcher: Dispatcher
  close (): Promise<void>
}

/** Starts the relay in namespace `ns` (through `wrap`), its socket in `dir`. */
export async function startGateway (wrap: string[], dir: string): Promise<Gateway> {
  const socketPath = join(dir, 'gateway.sock')
  const [cmd, ...args] = [...wrap, process.execPath, '-e', RELAY, socketPath]
  const child: ChildProcess = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const kill = (): void => { try { child.kill('SIGKILL') } catch {} }
  trackKill(kill)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    await withTimeout(new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve())
      child.once('exit', (code) => reject(new Error(`netns gateway exited (${code}) before listening`)))
      child.once('error', reject)
    }), 10_000, 'netns gateway')
  } catch (err) {
    kill()
    untrackKill(kill)
    throw err
  }

  const connect = (host: string, port: number): Promise<Socket> => new Promise((resolve, reject) => {
    const socket = netConnect(socketPath)
    const refused = (why: string): void => {
      socket.destroy()
      reject(Object.assign(new Error(`connect ECONNREFUSED ${host}:${port} (through the netns gateway: ${why})`), { code: 'ECONNREFUSED' }))
    }
    const onError = (err: Error): void => refused(err.message)
    const onEnd = (): void => refused('closed')
    const onReadable = (): void => {
      const byte = socket.read(1) as Buffer | null
      if (byte === null) return
      socket.removeListener('readable', onReadable)
      socket.removeListener('error', onError)
      socket.removeListener('end', onEnd)
      if (byte.toString() === 'K') resolve(socket)
      else refused('unreachable')
    }
    socket.once('error', onError)
    socket.once('end', onEnd)
    socket.once('connect', () => socket.write(`${host} ${port}\n`))
    socket.on('readable', onReadable)
  })

  const dispatcher = new Agent({
    connect: (opts, callback) => {
      connect(opts.hostname, Number(opts.port) || 80).then((s) => callback(null, s), (err: Error) => callback(err, null))
    },
  })

  return {
    connect,
    dispatcher,
    async close () {
      await dispatcher.destroy().catch(() => {})
      child.stdin?.end()
      await withTimeout(exited, 2_000, 'netns gateway exit').catch(kill)
      untrackKill(kill)
    },
  }
}
