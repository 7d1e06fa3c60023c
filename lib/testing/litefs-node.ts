/**
 * One LiteFS node of a test cluster: its process (`litefs mount -config …`,
 * spawned in its own process group so a SIGKILL also ends an `exec` child),
 * start with a bounded readiness wait, stop (SIGTERM, then SIGKILL), kill (a
 * crash), restart, its log ring, `/info` and `-pos`, and writing its litefs.yml.
 *
 * Teardown is the hard part: a LiteFS that stops tries to unmount, and fails
 * ("Device or resource busy") while any fd is open in its mount, leaving a dead
 * mount (every access fails with ENOTCONN) that blocks the next mount there. The
 * node unmounts what LiteFS leaves behind (`mounts.ts`) and registers itself with
 * the exit-hook safety net (`safety-net.ts`) while it has a process or a mount.
 *
 * Left to others: the YAML itself (`litefs-config.ts`), the replication relay
 * (`replication-relay.ts`), which node is primary and the cluster's lifetime
 * (`litefs-cluster.ts`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Dispatcher } from 'undici'
import type { LitefsClusterOptions, LitefsInfo, LitefsNode } from './cluster-types.js'
import { httpGet } from './http-get.js'
import { eachLine } from './lines.js'
import { staticLeaseYml } from './litefs-config.js'
import { unmountAll } from './mounts.js'
import { ReplicationRelay } from './replication-relay.js'
import { trackNode, untrackNode } from './safety-net.js'
import { parsePosition, sleep, withTimeout } from './wait.js'

/** After SIGKILL a process exits at once unless it is stuck in the kernel (e.g. on a FUSE call). */
const KILL_WAIT = 5_000
const LOG_LINES = 200
/** Log lines quoted in errors: enough to see LiteFS's last steps, short enough to read. */
export const ERROR_LOG_LINES = 25
const POLL_MS = 25

export interface ClusterContext {
  readonly binary: string
  readonly readyTimeout: number
  readonly stopTimeout: number
  /** The static lease's primary (a dynamic lease has no fixed one: see `lease`). */
  readonly primary: ClusterNode
  readonly closed: boolean
  readonly options: Pick<LitefsClusterOptions, 'exec' | 'env' | 'proxy' | 'log'>
  /** Set for a lease the nodes race for (Consul): it writes the config and says where LiteFS runs. */
  readonly lease?: DynamicLease
}

/** What a node needs to know of a lease whose holder is not fixed in its config (`consul-cluster.ts`). */
export interface DynamicLease {
  /** The whole litefs.yml of `node`. */
  config (node: ClusterNode): string
  /** Whether `node` may become primary. */
  candidate (node: ClusterNode): boolean
  /** Command prefix that runs LiteFS in the node's network (`nsenter --net=…`), or []. */
  wrap (node: ClusterNode): string[]
  /** How the test process reaches the node's API (the netns gateway); undefined: directly. */
  readonly dispatcher: Dispatcher | undefined
}

export class ClusterNode implements LitefsNode {
  readonly index: number
  readonly hostname: string
  readonly mount: string
  readonly dataDir: string
  readonly apiUrl: string
  readonly configPath: string
  protected readonly ctx: ClusterContext
  readonly port: number
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  private exitStatus: string | undefined
  private readonly ring: string[] = []
  /** Lines since the last spawn, to fail a start fast on LiteFS's `ERROR:` (with exit-on-error false it keeps running). */
  private errorLine: string | undefined
  /** start/stop/kill of one node run one at a time. */
  private queue: Promise<unknown> = Promise.resolve()
  /** The relay replication goes through (pausableReplication). */
  private relay: ReplicationRelay | undefined

  /** `host` is where LiteFS's API listens: 127.0.0.1, or the node's address in its namespace. */
  constructor (ctx: ClusterContext, index: number, hostname: string, nodeDir: string, port: number, host = '127.0.0.1') {
    this.ctx = ctx
    this.index = index
    this.hostname = hostname
    this.mount = join(nodeDir, 'mnt')
    this.dataDir = join(nodeDir, 'data')
    this.configPath = join(nodeDir, 'litefs.yml')
    this.port = port
    this.apiUrl = `http://${host}:${port}`
  }

  get candidate (): boolean { return this.ctx.lease !== undefined ? this.ctx.lease.candidate(this) : this.ctx.primary === this }

  /** Listen for this node's replication stream; each connection is relayed to whichever node is primary then. */
  async openRelay (): Promise<void> {
    const relay = new ReplicationRelay(() => this.ctx.primary.port)
    await relay.open()
    this.relay = relay
  }

  pauseReplication (): void { this.needRelay('pauseReplication').pause() }
  resumeReplication (): void { this.needRelay('resumeReplication').resume() }
  closeRelay (): void { this.relay?.close() }

  private needRelay (what: string): ReplicationRelay {
    if (this.relay === undefined) throw new Error(`litefs-cluster: ${what}() needs the pausableReplication option`)
    return this.relay
  }
  get running (): boolean { return this.child !== undefined }
  get pid (): number | undefined { return this.child?.pid }
  logs (): string[] { return [...this.ring] }

  private serial<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn)
    this.queue = result.catch(() => {})
    return result
  }

  /** Writes litefs.yml for the current primary (a dynamic lease writes its own). */
  writeConfig (): void {
    if (this.ctx.lease !== undefined) { writeFileSync(this.configPath, this.ctx.lease.config(this)); return }
    const primary = this.ctx.primary
    writeFileSync(this.configPath, staticLeaseYml({
      mount: this.mount,
      dataDir: this.dataDir,
      port: this.port,
      primaryHostname: primary.hostname,
      // A replica reaches the primary through its relay when replication is pausable.
      advertiseUrl: this.relay !== undefined && this !== primary ? `http://127.0.0.1:${this.relay.port}` : primary.apiUrl,
      candidate: this === primary,
      exec: this.ctx.options.exec?.(this),
      proxy: this.ctx.options.proxy?.(this),
    }))
  }

  addLog (line: string): void {
    this.ring.push(line)
    if (this.ring.length > LOG_LINES) this.ring.shift()
    if (this.errorLine === undefined && line.startsWith('ERROR:')) this.errorLine = line
    this.ctx.options.log?.(this.hostname, line)
  }

  /** The node's last log lines, for error messages. */
  private logTail (): string {
    const lines = this.ring.slice(-ERROR_LOG_LINES)
    return lines.length === 0
      ? `\n(${this.hostname}'s LiteFS logged nothing)`
      : `\n--- last ${lines.length} LiteFS log lines of ${this.hostname} ---\n${lines.map((l) => '  ' + l).join('\n')}`
  }

  private fail (what: string): Error {
    return new Error(`litefs-cluster: ${this.hostname} (node ${this.index}): ${what}${this.logTail()}`)
  }

  start (): Promise<void> {
    return this.serial(async () => {
      if (this.running) return
      if (this.ctx.closed) throw this.fail('cluster is closed')
      this.writeConfig()
      // A dead mount (after kill(), or a crashed run in a given dir) makes the new
      // mount fail: fusermount3 cannot even stat the mount point (ENOTCONN).
      const stuck = await unmountAll(this.mount, (l) => this.addLog(l))
      if (stuck) throw this.fail(stuck)
      mkdirSync(this.mount, { recursive: true })
      mkdirSync(this.dataDir, { recursive: true })
      this.spawn()
      try {
        await this.waitReady()
      } catch (err) {
        // A half-started LiteFS would keep its mount and port: remove it, keep the error.
        await this.killNow().catch(() => {})
        await unmountAll(this.mount, (l) => this.addLog(l))
        throw err
      }
    })
  }

  private spawn (): void {
    const env = { ...process.env, ...this.ctx.options.env?.(this) }
    this.errorLine = undefined
    this.exitStatus = undefined
    // The ring spans restarts; mark where this run's lines begin.
    const role = this.ctx.lease !== undefined ? (this.candidate ? 'candidate' : 'not a candidate') : this.candidate ? 'primary' : 'replica'
    this.addLog(`[litefs-cluster] starting ${this.ctx.binary} mount -config ${this.configPath} (${role})`)
    // detached: LiteFS leads its own process group, so a SIGKILL to the group
    // also kills an `exec` child (LiteFS killed alone would orphan it). A terminal's
    // Ctrl-C then no longer reaches LiteFS directly; the safety net handles SIGINT.
    const [cmd, ...args] = [...(this.ctx.lease?.wrap(this) ?? []), this.ctx.binary, 'mount', '-config', this.configPath]
    const child = spawn(cmd, args, {
      env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    trackNode(this)
    // Unref'd: a test that forgets close() still exits, and the exit hook cleans up.
    child.unref()
    for (const stream of [child.stdout, child.stderr]) {
      ;(stream as unknown as { unref?: () => void } | null)?.unref?.()
      eachLine(stream, (line) => this.addLog(line))
    }
    this.exited = new Promise<void>((resolveExit) => {
      const done = (status: string): void => {
        if (this.child === child) {
          this.child = undefined
          this.exitStatus = status
        }
        resolveExit()
      }
      child.once('error', (err) => done(`could not be started (${this.ctx.binary}): ${err.message}`))
      child.once('exit', (code, signal) => done(signal ? `exited by ${signal}` : `exited with code ${code}`))
    })
  }

  private async waitReady (): Promise<void> {
    const deadline = Date.now() + this.ctx.readyTimeout
    let step = 'GET /info to answer'
    for (;;) {
      if (!this.running) throw this.fail(`LiteFS ${this.exitStatus ?? 'exited'} while waiting for ${step}`)
      if (this.errorLine) throw this.fail(`LiteFS failed to start while waiting for ${step}: ${this.errorLine}`)
      const left = deadline - Date.now()
      if (left <= 0) throw this.fail(`not ready within ${this.ctx.readyTimeout} ms: waited for ${step}`)
      try {
        step = 'GET /info to answer'
        // LiteFS listens before it mounts but serves only after: a connection can
        // hang in the backlog, hence the per-request bound.
        const info = await this.fetchInfo(Math.min(1_000, left))
        step = 'the mount to be live (.lag readable)'
        await withTimeout(readFile(join(this.mount, '.lag')), Math.min(1_000, left), '.lag')
        if (this.ctx.lease !== undefined) {
          // Either role will do: whoever wins the lease is primary, the others connect to it.
          step = 'the node to hold the lease or to connect to the primary (/info isPrimary or .primary present)'
          if (info.isPrimary) return
          await withTimeout(access(join(this.mount, '.primary')), Math.min(1_000, left), '.primary')
          return
        } else if (this.candidate) {
          step = 'the primary to hold the lease (/info isPrimary)'
          if (info.isPrimary) return
        } else {
          step = 'the replica to connect to the primary (.primary present)'
          await withTimeout(access(join(this.mount, '.primary')), Math.min(1_000, left), '.primary')
          return
        }
      } catch {}
      await sleep(POLL_MS)
    }
  }

  private async fetchInfo (timeoutMs: number): Promise<LitefsInfo> {
    const { status, body } = await httpGet(`${this.apiUrl}/info`, timeoutMs, this.ctx.lease?.dispatcher)
    if (status !== 200) throw new Error(`GET /info answered ${status}: ${body.trim()}`)
    return JSON.parse(body) as LitefsInfo
  }

  async info (): Promise<LitefsInfo> {
    try {
      return await this.fetchInfo(Math.min(this.ctx.readyTimeout, 5_000))
    } catch (err) {
      throw this.fail(`GET ${this.apiUrl}/info failed: ${(err as Error).message}`)
    }
  }

  position (db: string): bigint | undefined {
    if (!this.running) return undefined
    try {
      return parsePosition(readFileSync(join(this.mount, `${db}-pos`), 'utf8'))
    } catch {
      return undefined
    }
  }

  stop (): Promise<void> { return this.serial(() => this.stopNow()) }
  kill (): Promise<void> { return this.serial(() => this.killNow()) }
  async restart (): Promise<void> { await this.stop(); await this.start() }

  /** Resolves true once the process has exited, false after `ms`. */
  private async exitWithin (ms: number): Promise<boolean> {
    if (!this.running) return true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), ms) })
    return Promise.race([this.exited.then(() => true), timedOut]).finally(() => clearTimeout(timer))
  }

  protected signalGroup (signal: NodeJS.Signals): void {
    const pid = this.child?.pid
    if (pid === undefined) return
    try { process.kill(-pid, signal) } catch {
      try { process.kill(pid, signal) } catch {}
    }
  }

  /** SIGKILL and wait; throws when the process does not die (stuck in the kernel). */
  async killNow (): Promise<void> {
    if (!this.running) return
    this.signalGroup('SIGKILL')
    if (!(await this.exitWithin(KILL_WAIT))) throw this.fail(`LiteFS (pid ${this.pid}) did not exit within ${KILL_WAIT} ms of SIGKILL`)
  }

  /** The exit hook's version: no waiting, no events (the event loop is gone). */
  killSync (): void {
    if (this.running) this.signalGroup('SIGKILL')
  }

  async stopNow (): Promise<void> {
    if (this.running) {
      // SIGTERM to LiteFS only: it forwards it to its exec child and waits for it.
      try { this.child?.kill('SIGTERM') } catch {}
      if (!(await this.exitWithin(this.ctx.stopTimeout))) {
        this.addLog(`[litefs-cluster] no exit within ${this.ctx.stopTimeout} ms of SIGTERM; sending SIGKILL`)
        await this.killNow()
      }
    }
    // LiteFS's own unmount fails while any fd is open in the mount, leaving it dead.
    const stuck = await unmountAll(this.mount, (l) => this.addLog(l))
    if (stuck) throw this.fail(stuck)
    untrackNode(this)
  }
}
