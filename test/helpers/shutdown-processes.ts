// The processes the shutdown tests send SIGTERM to: one adapter's app as the
// README shows it (shutdown-app.ts), and `serve` in front of such an app, each
// its own process, each reporting the port it listens on.
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { FakeLitefs, until } from './fake-litefs.js'
import { plainEnv } from './child-env.js'

export interface Started { child: ChildProcess, port: number }

/** shutdown-app.ts for `adapter` (fastify, express, http), once it listens. */
export async function startAdapter (adapter: string): Promise<Started> {
  const child = fork(new URL('./shutdown-app.ts', import.meta.url).pathname, [adapter], { execArgv: process.execArgv, env: plainEnv(), stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', m => resolve((m as { port: number }).port))
    child.once('exit', code => reject(new Error(`${adapter} exited with ${String(code)} before listening`)))
  })
  return { child, port }
}

/** `serve` in front of the app at `target`, on `fake`'s mount (no API), once it listens; `flags`: more of its flags. */
export async function startServe (target: number, fake: FakeLitefs, flags: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, [...process.execArgv, new URL('../../lib/cli/main.ts', import.meta.url).pathname, 'serve',
    '--addr', '127.0.0.1:0', '--target', `127.0.0.1:${target}`, '--db', 'app.db', '--mount', fake.mount, '--api', 'false', ...flags, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv() })
  let out = ''
  child.stdout?.on('data', b => { out += b })
  await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out), 'serve listening')
  return { child, port: Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]) }
}
