/**
 * An app process that runs beside a LiteFS node, in that node's network
 * namespace (or on loopback): the Fastify plugin app, `litefs-proxy serve` and
 * the app behind it… Spawned in a process group of its own, so LiteFS's faults
 * (`consul-node.ts`) can crash or pause it with its LiteFS, or leave it
 * running (an orphaned app). The safety net kills it if the test dies; which
 * apps a node has, and when they end, is the node's business.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { trackKill, untrackKill } from './safety-net.js'
import { withTimeout } from './wait.js'

export interface NodeAppOptions {
  /** Extra environment (added to the test process's). */
  env?: Record<string, string>
  cwd?: string
  /** Default `['ignore', 'inherit', 'inherit']`; add `'ipc'` for a Node app that talks to the test. */
  stdio?: StdioOptions
}

export interface NodeApp {
  readonly child: ChildProcess
  readonly pid: number | undefined
  /** True until the process has exited. */
  readonly running: boolean
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<void>
  /** Send a signal to the app's process group (no-op once it exited). */
  signal (signal: NodeJS.Signals): void
  /** SIGTERM (after SIGCONT, in case it is paused), then SIGKILL after `timeoutMs` (default 5000). */
  stop (timeoutMs?: number): Promise<void>
}

export function spawnNodeApp (wrap: string[], command: string, args: readonly string[], o: NodeAppOptions = {}): NodeApp {
  const [cmd, ...rest] = [...wrap, command, ...args]
  const child = spawn(cmd, rest, { env: { ...process.env, ...o.env }, cwd: o.cwd, stdio: o.stdio ?? ['ignore', 'inherit', 'inherit'], detached: true })
  let running = true
  const signal = (sig: NodeJS.Signals): void => {
    if (!running || child.pid === undefined) return
    try { process.kill(-child.pid, sig) } catch { try { child.kill(sig) } catch {} }
  }
  const kill = (): void => signal('SIGKILL')
  trackKill(kill)
  const exited = new Promise<void>((resolve) => {
    const done = (): void => { running = false; untrackKill(kill); resolve() }
    child.once('exit', done)
    child.once('error', done)
  })
  return {
    child,
    get pid () { return child.pid },
    get running () { return running },
    exited,
    signal,
    async stop (timeoutMs = 5_000) {
      signal('SIGCONT')
      signal('SIGTERM')
      await withTimeout(exited, timeoutMs, 'app exit').catch(async () => { kill(); await exited })
    },
  }
}
