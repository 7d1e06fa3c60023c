/**
 * The public shapes of the real-LiteFS test harness (`litefs-proxy/litefs-cluster`):
 * the options a test passes and the cluster and nodes it gets back. Only types
 * live here; what they do is in `litefs-node.ts` (a node's process and mount),
 * `litefs-config.ts` (its litefs.yml), `replication-relay.ts` (pausing
 * replication) and `litefs-cluster.ts` (the cluster).
 */

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
