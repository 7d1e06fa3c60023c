/**
 * A real LiteFS cluster on one machine, for tests: N `litefs mount` processes
 * with a static lease, each with its own FUSE mount, data directory and HTTP
 * API port on 127.0.0.1. Nodes can be stopped (SIGTERM), crashed (SIGKILL),
 * restarted, and the static primary moved ("static failover").
 *
 * Needs Linux, /dev/fuse, fusermount3, root, and a litefs binary
 * (`scripts/install-litefs.sh` installs the last two). Use `fuseProblem()` and
 * `findLitefs()` to skip tests where they are missing.
 *
 * Teardown is the hard part: a LiteFS that stops tries to unmount, and fails
 * ("Device or resource busy") while any fd is open in its mount, leaving a dead
 * mount (every access fails with ENOTCONN) that blocks the next mount there.
 * The harness unmounts what LiteFS leaves behind, and a synchronous
 * `process.on('exit')` hook (plus SIGINT/SIGTERM/SIGHUP) kills every LiteFS it
 * started and lazily unmounts its mounts, so a test that crashes or forgets
 * `close()` leaves no mounts behind. Only a SIGKILL of the test process itself
 * can leave them.
 */
// Longer than 300 lines: the harness is being split by job (nodes and mounts, the
// lease, faults) in its own change; until then it stays whole.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { connect as netConnect, createServer, createServer as createNetServer, type AddressInfo, type Server, type Server as NetServer, type Socket } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'

/** What `exec` and `env` callbacks get to know about a node. Paths are absolute. */
export interface LitefsNodeInfo {
  /** Position in `cluster.nodes`, 0-based. */
  readonly index: number
  /** The lease hostname: what `/info` and `.primary` say when this node is the primary. */
  readonly hostname: string
  /** The FUSE mount directory (`fuse.dir`): where the app opens its databases. */
  readonly mount: string
  /** LiteFS's own data directory (`data.dir`). */
  readonly dataDir: string
  /** `http://127.0.0.1:<port>`: LiteFS's HTTP API (`/info`, `/events`, replication). */
  readonly apiUrl: string
  /** This node's `litefs.yml`. */
  readonly configPath: string
  /** True when this node is the static lease's candidate, i.e. the primary, in its current config. */
  readonly candidate: boolean
}

/** `GET /info` as LiteFS v0.5.14 answers it. */
export interface LitefsInfo {
  /** Absent until the node has a cluster ID. */
  clusterID?: string
  isPrimary: boolean
  candidate: boolean
  /** The data directory. */
  path: string
  /** `hostname` is "" while a replica is not connected to a primary. */
  primary: { hostname: string }
}

/** LiteFS's `proxy:` section (cmd/litefs/config.go), with its YAML names. */
export interface LitefsProxySection {
  addr: string
  target: string
  db: string
  passthrough?: string[]
  'always-forward'?: string[]
  'primary-redirect-timeout'?: string
  'max-lag'?: string
}

export interface LitefsClusterOptions {
  /** How many nodes. Default 3. */
  nodes?: number
  /** Index of the static lease's candidate (the primary). Default 0. */
  primary?: number
  /**
   * Base directory; each node gets `<dir>/<hostname>/{litefs.yml,data,mnt}`.
   * Default: a fresh `mkdtemp` under `os.tmpdir()`, removed by `close()`.
   * A given directory is left in place (with the nodes' data) by `close()`.
   */
  dir?: string
  /** The litefs binary. Default `findLitefs()`; the cluster fails to start with a clear Error when none is found. */
  binary?: string
  /** Lease hostnames, one per node, unique, `[A-Za-z0-9._-]+`. Default `node-1` … `node-N`. */
  hostnames?: string[]
  /**
   * The `exec:` command for a node's litefs.yml, or undefined for none. Called each
   * time the config is written (cluster start, `setPrimary`), so it can depend on
   * `node.candidate`. LiteFS runs it once the node is ready, forwards SIGTERM to it
   * on stop, and shuts down when it exits. It is split into words (shellwords), not
   * run by a shell: use `sh -c '…'` for pipes or redirections. LiteFS expands `$VAR`
   * and `${VAR}` in it from its environment before parsing, so a literal `$` (even
   * `$$`) does not survive.
   */
  exec?: (node: LitefsNodeInfo) => string | undefined
  /** Extra environment for that node's LiteFS process (and so for its `exec` command and for `${VAR}` in its config). Called on every start. */
  env?: (node: LitefsNodeInfo) => Record<string, string>
  /**
   * LiteFS's own proxy for that node (its `proxy:` section), e.g. to compare with
   * litefs-proxy: `{ addr: '127.0.0.1:8080', target: '127.0.0.1:8000', db: 'app.db' }`.
   */
  proxy?: (node: LitefsNodeInfo) => LitefsProxySection | undefined
  /**
   * Route each replica's replication stream through a relay the test controls,
   * so `node.pauseReplication()` can hold a replica behind the primary (as the
   * dev cluster's `pauseReplication` does) while its mount and API stay live.
   * Default false (replicas connect to the primary's API directly).
   */
  pausableReplication?: boolean
  /** Milliseconds; the bound for every readiness wait (`start`, `waitReplicated`'s default). Default 20000. */
  readyTimeout?: number
  /** Milliseconds `stop()` gives LiteFS to exit after SIGTERM before it sends SIGKILL. Default 10000. */
  stopTimeout?: number
  /**
   * Receives every line LiteFS writes (stdout and stderr), with the node's hostname.
   * Lines are also always kept per node (last 200, `node.logs()`) and shown in errors.
   */
  log?: (hostname: string, line: string) => void
}

export interface LitefsNode extends LitefsNodeInfo {
  /** True from `start()` until the LiteFS process has exited. */
  readonly running: boolean
  /** The LiteFS process ID while running. */
  readonly pid: number | undefined
  /**
   * Spawn `litefs mount -config <configPath>` and resolve once `GET /info` answers,
   * the mount is live (`.lag` readable) and the node has its role: the primary says
   * `isPrimary`, a replica is connected (`.primary` exists). A dead mount left by
   * `kill()` is unmounted first. No-op when already running. Rejects (after killing
   * the process it started) when LiteFS exits or logs `ERROR:` first, or after
   * `readyTimeout` ms; the Error names the step waited for and shows LiteFS's last
   * log lines. A replica's start waits for a running primary.
   */
  start(): Promise<void>
  /**
   * SIGTERM, wait up to `stopTimeout` ms for exit, then SIGKILL (to LiteFS's process
   * group, so an `exec` child dies too); then make sure the mount is gone
   * (`fusermount3 -u`, then `-uz`, then `umount -l`). Afterwards the mount
   * directory is an ordinary empty directory. Also cleans the dead mount a `kill()`
   * left. Rejects only when the process or the mount cannot be removed.
   */
  stop(): Promise<void>
  /**
   * SIGKILL LiteFS's process group (a crash) and wait for the exit. The mount stays,
   * dead (ENOTCONN), so tests can observe it; `start()`, `stop()` or `close()` remove it.
   */
  kill(): Promise<void>
  /** `stop()` then `start()`. */
  restart(): Promise<void>
  /**
   * With `pausableReplication`: stop passing replication bytes between this
   * replica and the primary (both ways; the connection stays open), so the
   * replica's position stays behind until `resumeReplication()`. Throws without the option.
   */
  pauseReplication(): void
  resumeReplication(): void
  /** `GET /info`. Rejects when the node does not answer within min(readyTimeout, 5000) ms or answers non-200. */
  info(): Promise<LitefsInfo>
  /**
   * The TXID in `<mount>/<db>-pos` (fresh open/read/close, ~150 µs through FUSE);
   * undefined when this node's LiteFS is not running, the file is absent or the
   * mount is dead. A synchronous read: it would block if LiteFS hung (e.g. SIGSTOP).
   */
  position(db: string): bigint | undefined
  /** LiteFS's last 200 output lines, oldest first. */
  logs(): string[]
}

export interface LitefsCluster {
  readonly nodes: readonly LitefsNode[]
  /** The node that is the static lease's candidate in the current configs. */
  readonly primary: LitefsNode
  /** The base directory (realpath). */
  readonly dir: string
  /**
   * Resolve with the primary's position of `db` once every running node's
   * `<db>-pos` equals it (polls every 5 ms). Rejects when the primary is not
   * running, or after `timeoutMs` (default readyTimeout) with every node's position
   * and the lagging node's last log lines.
   */
  waitReplicated(db: string, timeoutMs?: number): Promise<bigint>
  /**
   * Manual "static failover": stop every node, rewrite every litefs.yml so node
   * `index` is the candidate (its hostname and advertise-url on all nodes), start it,
   * then start the other nodes that were running before. Commits that had not
   * reached `index` are lost, as in a real failover; call `waitReplicated` first to avoid that.
   */
  setPrimary(index: number): Promise<void>
  /**
   * Always completes: stops every node (SIGTERM, then SIGKILL), unmounts every mount
   * (dead ones included), removes the base directory if the harness created it.
   * Rejects, after all of that, only when a mount or the directory could not be removed.
   * Idempotent.
   */
  close(): Promise<void>
}

const DEFAULT_READY_TIMEOUT = 20_000
const DEFAULT_STOP_TIMEOUT = 10_000
/** After SIGKILL a process exits at once unless it is stuck in the kernel (e.g. on a FUSE call). */
const KILL_WAIT = 5_000
const LOG_LINES = 200
/** Log lines quoted in errors: enough to see LiteFS's last steps, short enough to read. */
const ERROR_LOG_LINES = 25
const POLL_MS = 25
const HOSTNAME_RE = /^[A-Za-z0-9._-]+$/

// --- Finding LiteFS and checking FUSE ---------------------------------------------

/**
 * The litefs binary to use, as an absolute path, or undefined when none is found.
 * In order: env `LITEFS_BIN` (returned as given, even if it is not there, so a wrong
 * setting fails loudly instead of silently using another binary); `.cache/litefs/bin/litefs`
 * in the package root (where `scripts/install-litefs.sh` puts it), looked up from the
 * current directory and from this module's location; `litefs` on PATH; `~/go/bin/litefs`.
 */
export function findLitefs (): string | undefined {
  const fromEnv = process.env.LITEFS_BIN
  if (fromEnv) return resolve(fromEnv)
  // The package root is the nearest ancestor with a package.json. Under CommonJS
  // `__dirname` also finds the copy next to this module (ESM has no __dirname and
  // `import.meta` does not compile for the CJS build, so ESM relies on the cwd).
  const starts = [process.cwd()]
  if (typeof __dirname === 'string') starts.push(__dirname)
  for (const start of starts) {
    const root = packageRoot(start)
    const candidate = root && join(root, '.cache', 'litefs', 'bin', 'litefs')
    if (candidate && isExecutable(candidate)) return candidate
  }
  const onPath = whichSync('litefs')
  if (onPath) return onPath
  const goBin = join(homedir(), 'go', 'bin', 'litefs')
  return isExecutable(goBin) ? goBin : undefined
}

/**
 * Undefined when LiteFS can mount here; otherwise one line naming everything
 * missing, e.g. `/dev/fuse absent; fusermount3 missing (apt-get install fuse3)`.
 * Checks: Linux, /dev/fuse present and readable+writable, fusermount3 on PATH, root.
 */
export function fuseProblem (): string | undefined {
  if (process.platform !== 'linux') return `LiteFS needs Linux FUSE (this is ${process.platform})`
  const problems: string[] = []
  if (!existsSync('/dev/fuse')) problems.push('/dev/fuse absent')
  else {
    try { accessSync('/dev/fuse', constants.R_OK | constants.W_OK) } catch { problems.push('/dev/fuse not accessible (needs read+write)') }
  }
  if (!whichSync('fusermount3')) problems.push('fusermount3 missing (apt-get install fuse3)')
  // Root: LiteFS's mount and the harness's `umount -l` fallback for dead mounts need it.
  if (process.getuid?.() !== 0) problems.push('not root')
  return problems.length > 0 ? problems.join('; ') : undefined
}

function packageRoot (from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return undefined
  }
}

function isExecutable (file: string): boolean {
  try {
    return statSync(file).isFile() && (accessSync(file, constants.X_OK), true)
  } catch {
    return false
  }
}

function whichSync (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return resolve(dir, name)
  }
  return undefined
}

// --- Mount table and unmounting ---------------------------------------------------

/** /proc/self/mounts escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountField (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/** Whether something (live or dead) is mounted at `dir`; `dir` must be a realpath. */
function isMounted (dir: string): boolean {
  let table: string
  try { table = readFileSync('/proc/self/mounts', 'utf8') } catch { return false }
  for (const line of table.split('\n')) {
    const mountPoint = line.split(' ')[1]
    if (mountPoint !== undefined && unescapeMountField(mountPoint) === dir) return true
  }
  return false
}

/**
 * The ways to remove a FUSE mount whose LiteFS has exited, gentlest first:
 * `-u` fails with "Device or resource busy" while an fd is open in it; lazy `-uz`
 * detaches it anyway (the open fds keep failing with ENOTCONN until closed);
 * `umount -l` is the root-only fallback when fusermount3 refuses.
 */
const UNMOUNTS: ReadonlyArray<readonly [string, (dir: string) => string[]]> = [
  ['fusermount3', (dir) => ['-u', dir]],
  ['fusermount3', (dir) => ['-uz', dir]],
  ['umount', (dir) => ['-l', dir]],
]

function run (cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`))
      else resolvePromise()
    })
  })
}

/**
 * Unmounts `dir` until nothing is mounted there (mounts can stack). `note` hears
 * each command that worked and each that failed. Returns what failed, or
 * undefined when the mount is gone.
 */
async function unmountAll (dir: string, note: (line: string) => void = () => {}): Promise<string | undefined> {
  const failures: string[] = []
  for (let round = 0; round < 4 && isMounted(dir); round++) {
    for (const [cmd, args] of UNMOUNTS) {
      try {
        await run(cmd, args(dir), 5_000)
        note(`[litefs-cluster] unmounted with ${cmd} ${args(dir).join(' ')}`)
        break
      } catch (err) {
        failures.push((err as Error).message)
        note(`[litefs-cluster] ${(err as Error).message}`)
      }
    }
  }
  return isMounted(dir) ? `could not unmount ${dir}: ${failures.join('; ') || 'still mounted'}` : undefined
}

function unmountAllSync (dir: string): void {
  for (let round = 0; round < 4 && isMounted(dir); round++) {
    // Lazy first: in the exit hook the LiteFS may still be dying, and a lazy
    // unmount detaches even a live or busy mount.
    for (const [cmd, args] of [['fusermount3', ['-uz', dir]], ['umount', ['-l', dir]]] as const) {
      try {
        execFileSync(cmd, [...args], { stdio: 'ignore', timeout: 5_000 })
        break
      } catch {}
    }
  }
}

// --- The safety net ---------------------------------------------------------------

/** Every node that has a LiteFS process or may have a mount, across all clusters. */
const liveNodes = new Set<Node>()
/** Base directories the harness created and has not removed yet. */
const createdDirs = new Map<string, readonly Node[]>()
let safetyNetInstalled = false

function cleanupSync (): void {
  for (const node of liveNodes) node.killSync()
  for (const node of liveNodes) unmountAllSync(node.mount)
  for (const [dir, nodes] of createdDirs) {
    // Never recurse into a mount that is still attached: that would delete through LiteFS.
    if (nodes.some((n) => isMounted(n.mount))) continue
    try { rmSync(dir, { recursive: true, force: true }) } catch {}
  }
  liveNodes.clear()
  createdDirs.clear()
}

function installSafetyNet (): void {
  if (safetyNetInstalled) return
  safetyNetInstalled = true
  process.on('exit', cleanupSync)
  // 'exit' does not run when a signal kills the process (tap sends SIGTERM on a
  // timeout). Clean up, then, if nobody else handles the signal, re-raise it so
  // the process still dies of it as it would have.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupSync()
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal)
        process.kill(process.pid, signal)
      }
    }
    process.on(signal, onSignal)
  }
}

// --- Helpers ----------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Resolves with `p`, or rejects after `ms` (a FUSE call on a hung mount would never return). */
function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms) })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Distinct free ports on 127.0.0.1: all listened on at once so none repeats, then released for LiteFS. */
async function freePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((r, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', r) })
    }
    return servers.map((s) => (s.address() as { port: number }).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  }
}

/** `<16 hex TXID>/<checksum>\n` → the TXID. */
function parsePosition (text: string): bigint | undefined {
  const m = /^([0-9a-fA-F]{16})\//.exec(text)
  return m ? BigInt('0x' + m[1]) : undefined
}

// --- Nodes ------------------------------------------------------------------------

interface ClusterContext {
  readonly binary: string
  readonly readyTimeout: number
  readonly stopTimeout: number
  readonly primary: Node
  readonly closed: boolean
  readonly options: LitefsClusterOptions
}

class Node implements LitefsNode {
  readonly index: number
  readonly hostname: string
  readonly mount: string
  readonly dataDir: string
  readonly apiUrl: string
  readonly configPath: string
  private readonly ctx: ClusterContext
  private readonly port: number
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  private exitStatus: string | undefined
  private readonly ring: string[] = []
  /** Lines since the last spawn, to fail a start fast on LiteFS's `ERROR:` (with exit-on-error false it keeps running). */
  private errorLine: string | undefined
  /** start/stop/kill of one node run one at a time. */
  private queue: Promise<unknown> = Promise.resolve()
  /** The relay replication goes through (pausableReplication), and its connections. */
  private relay: NetServer | undefined
  private relayPort = 0
  private readonly relayed = new Set<Socket>()
  private paused = false

  constructor (ctx: ClusterContext, index: number, hostname: string, nodeDir: string, port: number) {
    this.ctx = ctx
    this.index = index
    this.hostname = hostname
    this.mount = join(nodeDir, 'mnt')
    this.dataDir = join(nodeDir, 'data')
    this.configPath = join(nodeDir, 'litefs.yml')
    this.port = port
    this.apiUrl = `http://127.0.0.1:${port}`
  }

  get candidate (): boolean { return this.ctx.primary === this }

  /** Listen for this node's replication stream; each connection is relayed to whichever node is primary then. */
  async openRelay (): Promise<void> {
    const relay = createNetServer((client) => {
      const upstream = netConnect(this.ctx.primary.port, '127.0.0.1')
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        this.relayed.add(a)
        a.on('data', (chunk: Buffer) => { if (!b.write(chunk)) a.pause() })
        b.on('drain', () => { if (!this.paused) a.resume() })
        a.on('error', () => b.destroy())
        a.on('close', () => { this.relayed.delete(a); b.destroy() })
        if (this.paused) a.pause()
      }
    })
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
    this.relay = relay
    this.relayPort = (relay.address() as AddressInfo).port
  }

  pauseReplication (): void {
    if (this.relay === undefined) throw new Error('litefs-cluster: pauseReplication() needs the pausableReplication option')
    this.paused = true
    for (const s of this.relayed) s.pause()
  }

  resumeReplication (): void {
    if (this.relay === undefined) throw new Error('litefs-cluster: resumeReplication() needs the pausableReplication option')
    this.paused = false
    for (const s of this.relayed) s.resume()
  }

  closeRelay (): void {
    for (const s of this.relayed) s.destroy()
    this.relay?.close()
  }
  get running (): boolean { return this.child !== undefined }
  get pid (): number | undefined { return this.child?.pid }
  logs (): string[] { return [...this.ring] }

  private serial<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn)
    this.queue = result.catch(() => {})
    return result
  }

  /** Writes litefs.yml for the current primary. Strings are JSON-quoted (valid YAML double-quoted scalars). */
  writeConfig (): void {
    const primary = this.ctx.primary
    const q = JSON.stringify
    const lines = [
      '# Written by litefs-proxy/litefs-cluster; rewritten by setPrimary().',
      'fuse:',
      `  dir: ${q(this.mount)}`,
      'data:',
      `  dir: ${q(this.dataDir)}`,
      'http:',
      `  addr: ${q(`127.0.0.1:${this.port}`)}`,
      // false: a startup error keeps LiteFS running (and logging "ERROR:"), which
      // the harness reports with the log, instead of an exit that looks like a crash.
      'exit-on-error: false',
      // A static lease names the PRIMARY on every node; only the primary is the candidate.
      'lease:',
      '  type: "static"',
      `  hostname: ${q(primary.hostname)}`,
      // A replica reaches the primary through its relay when replication is pausable.
      `  advertise-url: ${q(this.relay !== undefined && this !== primary ? `http://127.0.0.1:${this.relayPort}` : primary.apiUrl)}`,
      `  candidate: ${this === primary}`,
      'log:',
      '  format: "text"',
    ]
    const cmd = this.ctx.options.exec?.(this)
    if (cmd !== undefined) lines.push('exec:', `  - cmd: ${q(cmd)}`)
    const proxy = this.ctx.options.proxy?.(this)
    if (proxy !== undefined) {
      lines.push('proxy:')
      for (const [key, value] of Object.entries(proxy)) {
        if (Array.isArray(value)) lines.push(`  ${key}:`, ...value.map(v => `    - ${q(v)}`))
        else lines.push(`  ${key}: ${q(value)}`)
      }
    }
    writeFileSync(this.configPath, lines.join('\n') + '\n')
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
    this.addLog(`[litefs-cluster] starting ${this.ctx.binary} mount -config ${this.configPath} (${this.candidate ? 'primary' : 'replica'})`)
    // detached: LiteFS leads its own process group, so a SIGKILL to the group
    // also kills an `exec` child (LiteFS killed alone would orphan it). A terminal's
    // Ctrl-C then no longer reaches LiteFS directly; the safety net handles SIGINT.
    const child = spawn(this.ctx.binary, ['mount', '-config', this.configPath], {
      env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    liveNodes.add(this)
    // Unref'd: a test that forgets close() still exits, and the exit hook cleans up.
    child.unref()
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue
      ;(stream as unknown as { unref?: () => void }).unref?.()
      stream.setEncoding('utf8')
      let partial = ''
      stream.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n')
        partial = parts.pop() ?? ''
        for (const line of parts) this.addLog(line)
      })
      stream.on('end', () => { if (partial) this.addLog(partial); partial = '' })
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
        if (this.candidate) {
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
    const res = await fetch(`${this.apiUrl}/info`, { signal: AbortSignal.timeout(timeoutMs) })
    const body = await res.text()
    if (res.status !== 200) throw new Error(`GET /info answered ${res.status}: ${body.trim()}`)
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

  private signalGroup (signal: NodeJS.Signals): void {
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
    liveNodes.delete(this)
  }
}

// --- The cluster ------------------------------------------------------------------

class Cluster implements LitefsCluster, ClusterContext {
  readonly nodes: Node[] = []
  readonly dir: string
  readonly binary: string
  readonly readyTimeout: number
  readonly stopTimeout: number
  readonly options: LitefsClusterOptions
  closed = false
  private primaryIndex: number
  private readonly createdDir: boolean
  private closing: Promise<void> | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor (options: LitefsClusterOptions, dir: string, createdDir: boolean, binary: string, hostnames: string[], ports: number[], primary: number) {
    this.options = options
    this.dir = dir
    this.createdDir = createdDir
    this.binary = binary
    this.readyTimeout = options.readyTimeout ?? DEFAULT_READY_TIMEOUT
    this.stopTimeout = options.stopTimeout ?? DEFAULT_STOP_TIMEOUT
    this.primaryIndex = primary
    hostnames.forEach((hostname, i) => {
      const nodeDir = join(dir, hostname)
      mkdirSync(nodeDir, { recursive: true })
      this.nodes.push(new Node(this, i, hostname, nodeDir, ports[i]))
    })
    if (createdDir) createdDirs.set(dir, this.nodes)
  }

  get primary (): Node { return this.nodes[this.primaryIndex] }

  private serial<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn)
    this.queue = result.catch(() => {})
    return result
  }

  async startAll (only?: ReadonlySet<Node>): Promise<void> {
    for (const node of this.nodes) node.writeConfig()
    // The primary first: a replica is only ready once connected to it.
    await this.primary.start()
    await Promise.all(this.nodes.filter((n) => n !== this.primary && (!only || only.has(n))).map((n) => n.start()))
  }

  async waitReplicated (db: string, timeoutMs: number = this.readyTimeout): Promise<bigint> {
    const primary = this.primary
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!primary.running) throw new Error(`litefs-cluster: waitReplicated(${JSON.stringify(db)}): the primary ${primary.hostname} is not running`)
      const target = primary.position(db)
      const lagging = this.nodes.filter((n) => n.running && n.position(db) !== target)
      if (target !== undefined && lagging.length === 0) return target
      if (Date.now() >= deadline) {
        const positions = this.nodes.map((n) => `${n.hostname}=${n.running ? (n.position(db)?.toString() ?? 'none') : 'stopped'}`).join(' ')
        const culprit = target === undefined ? primary : lagging[0]
        const tail = culprit.logs().slice(-ERROR_LOG_LINES).map((l) => '  ' + l).join('\n')
        throw new Error(`litefs-cluster: waitReplicated(${JSON.stringify(db)}): not every running node reached the primary's position within ${timeoutMs} ms (${target === undefined ? `${primary.hostname} has no ${db}-pos` : `waited for ${lagging.map((n) => n.hostname).join(', ')}`}); positions: ${positions}\n--- last LiteFS log lines of ${culprit.hostname} ---\n${tail}`)
      }
      await sleep(5)
    }
  }

  setPrimary (index: number): Promise<void> {
    return this.serial(async () => {
      if (!Number.isInteger(index) || index < 0 || index >= this.nodes.length) throw new RangeError(`litefs-cluster: setPrimary(${index}): no such node (0..${this.nodes.length - 1})`)
      if (this.closed) throw new Error('litefs-cluster: setPrimary: cluster is closed')
      const wasRunning = new Set(this.nodes.filter((n) => n.running))
      // Every node must stop: a static lease is only read at startup.
      await Promise.all(this.nodes.map((n) => n.stop()))
      this.primaryIndex = index
      await this.startAll(wasRunning)
    })
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      await this.queue
      const problems: string[] = []
      await Promise.all(this.nodes.map(async (node) => {
        try { await node.stop() } catch (err) {
          // Last resort for a process or mount stop() could not remove.
          node.killSync()
          const stuck = await unmountAll(node.mount)
          if (stuck) problems.push(stuck)
          else if (node.running) problems.push((err as Error).message)
          else liveNodes.delete(node)
        }
      }))
      for (const node of this.nodes) node.closeRelay()
      if (this.createdDir && problems.length === 0) {
        try { rmSync(this.dir, { recursive: true, force: true }) } catch (err) { problems.push(`could not remove ${this.dir}: ${(err as Error).message}`) }
      }
      createdDirs.delete(this.dir)
      if (problems.length > 0) throw new Error(`litefs-cluster: close() left things behind:\n${problems.join('\n')}`)
    })()
    return this.closing
  }
}

/**
 * Starts a LiteFS cluster: writes every node's litefs.yml, starts the primary, then
 * the replicas (in parallel), each bounded by `readyTimeout`. Throws when no litefs
 * binary is found, when options are invalid, or when a node does not become ready
 * (then everything started so far is closed first).
 */
export async function startLitefsCluster (opts: LitefsClusterOptions = {}): Promise<LitefsCluster> {
  const count = opts.nodes ?? opts.hostnames?.length ?? 3
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`litefs-cluster: nodes must be a positive integer, got ${count}`)
  const primary = opts.primary ?? 0
  if (!Number.isInteger(primary) || primary < 0 || primary >= count) throw new RangeError(`litefs-cluster: primary must be a node index 0..${count - 1}, got ${primary}`)
  const hostnames = opts.hostnames ?? Array.from({ length: count }, (_, i) => `node-${i + 1}`)
  if (hostnames.length !== count) throw new RangeError(`litefs-cluster: ${hostnames.length} hostnames for ${count} nodes`)
  for (const h of hostnames) if (!HOSTNAME_RE.test(h)) throw new RangeError(`litefs-cluster: hostname ${JSON.stringify(h)} must match ${HOSTNAME_RE}`)
  if (new Set(hostnames).size !== count) throw new RangeError('litefs-cluster: hostnames must be unique')

  const binary = opts.binary ?? findLitefs()
  if (!binary) throw new Error('litefs-cluster: no litefs binary found (set LITEFS_BIN, run scripts/install-litefs.sh, or put litefs on PATH)')
  if (!isExecutable(binary)) throw new Error(`litefs-cluster: litefs binary ${binary} is not an executable file`)

  // Realpath: /proc/self/mounts lists resolved paths, and the mount check compares strings.
  const createdDir = opts.dir === undefined
  const dir = createdDir ? realpathSync(mkdtempSync(join(tmpdir(), 'litefs-cluster-'))) : (mkdirSync(opts.dir!, { recursive: true }), realpathSync(opts.dir!))
  // LiteFS expands ${VAR} / $VAR across the whole config, paths included.
  if (dir.includes('$')) throw new Error(`litefs-cluster: dir ${dir} contains "$", which LiteFS would expand as an environment variable`)

  installSafetyNet()
  const cluster = new Cluster(opts, dir, createdDir, binary, hostnames, await freePorts(count), primary)
  try {
    if (opts.pausableReplication === true) for (const node of cluster.nodes) await node.openRelay()
    await cluster.startAll()
  } catch (err) {
    await cluster.close().catch(() => {})
    throw err
  }
  return cluster
}
