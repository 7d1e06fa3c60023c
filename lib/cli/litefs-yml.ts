import { Document, Scalar, type YAMLMap } from 'yaml'

// One node's litefs.yml as LiteFS v0.5.14 reads it (cmd/litefs/config.go): the
// document, its order and its comments. Everything here is already checked
// (lib/cli/config.ts does that); this module only lays it out.

/** The lease as it is written: `static` names the primary on every node, `consul` names this node. */
export type LitefsLease =
  | { type: 'static', hostname: string, advertiseUrl: string, candidate: boolean | string }
  | { type: 'consul', hostname: string, advertiseUrl: string, candidate: boolean | string, promote?: boolean,
    consul: { url: string, key: string, ttl?: string, lockDelay?: string } }

export interface LitefsProxySection {
  addr: string
  target: string
  db: string
  passthrough?: string[]
  alwaysForward?: string[]
  primaryRedirectTimeout?: string
  maxLag?: string
}

export interface LitefsYml {
  /** This node's name, for the header comment. */
  node: string
  fuseDir: string
  dataDir: string
  retention?: string
  exitOnError?: boolean
  httpAddr: string
  lease: LitefsLease
  exec: string[]
  proxy?: LitefsProxySection
  /** True when a value names an environment variable (LiteFS expands them when it reads the file). */
  usesEnv: boolean
}

/**
 * A value written bare, not quoted: LiteFS replaces `${A == "b"}` with true or
 * false before it parses the YAML, and a quoted "true" is not a boolean to it.
 */
function bare (value: string): Scalar {
  const s = new Scalar(value)
  s.type = Scalar.PLAIN
  return s
}

function describe (y: LitefsYml): string[] {
  const lines = [` litefs.yml for ${y.node}, written by \`litefs-proxy config\`.`]
  const l = y.lease
  if (l.type === 'static') {
    lines.push(
      ` Static lease: ${l.hostname} is the primary. Every node names it (lease.hostname and`,
      ' lease.advertise-url are the primary\'s) and only the primary is a candidate.',
      ` No failover: while ${l.hostname} is down, writes wait for it.`)
  } else {
    lines.push(
      ' Consul lease: each node names itself (lease.hostname, lease.advertise-url); a',
      ' candidate takes the lease in Consul when it is free, so the primary can move.')
  }
  if (y.proxy === undefined) {
    lines.push(' No proxy: section: litefs-proxy (in the app, or `litefs-proxy serve`) does that job.')
  }
  if (y.usesEnv) lines.push(' LiteFS fills in the environment variables named below when it reads this file.')
  return lines
}

/** The YAML text of `y`, ready to write to a file. */
export function litefsYml (y: LitefsYml): string {
  const doc = new Document({})
  const root = doc.contents as YAMLMap
  const section = (key: string, value: unknown, comment?: string): void => {
    const k = new Scalar(key)
    if (comment !== undefined) k.commentBefore = comment
    k.spaceBefore = root.items.length > 0
    root.add(doc.createPair(k, value))
  }
  doc.commentBefore = describe(y).join('\n')

  section('fuse', { dir: y.fuseDir }, ' The FUSE mount: the app opens its databases here.')
  const data: Record<string, string> = { dir: y.dataDir }
  if (y.retention !== undefined) data.retention = y.retention
  section('data', data, " LiteFS's own files (databases, transaction files).")
  if (y.exitOnError !== undefined) {
    section('exit-on-error', y.exitOnError, y.exitOnError ? undefined : ' Stay up after a startup error, to look at it.')
  }
  section('http', { addr: y.httpAddr }, " LiteFS's API: replicas stream from the primary through it; litefs-proxy reads /events.")

  const l = y.lease
  const lease: Record<string, unknown> = { type: l.type, hostname: l.hostname, 'advertise-url': l.advertiseUrl }
  lease.candidate = typeof l.candidate === 'string' ? bare(l.candidate) : l.candidate
  if (l.type === 'consul') {
    if (l.promote !== undefined) lease.promote = l.promote
    const consul: Record<string, string> = { url: l.consul.url, key: l.consul.key }
    if (l.consul.ttl !== undefined) consul.ttl = l.consul.ttl
    if (l.consul.lockDelay !== undefined) consul['lock-delay'] = l.consul.lockDelay
    lease.consul = consul
  }
  section('lease', lease)

  if (y.exec.length > 0) {
    section('exec', y.exec.map(cmd => ({ cmd })),
      ' Run once this node is primary or connected to it; LiteFS forwards SIGTERM and\n' +
      ' stops when the last command exits. Commands before the last run to completion first.')
  }

  if (y.proxy !== undefined) {
    const p = y.proxy
    const proxy: Record<string, unknown> = { addr: p.addr, target: p.target, db: p.db }
    if (p.passthrough !== undefined) proxy.passthrough = p.passthrough
    if (p.alwaysForward !== undefined) proxy['always-forward'] = p.alwaysForward
    if (p.primaryRedirectTimeout !== undefined) proxy['primary-redirect-timeout'] = p.primaryRedirectTimeout
    if (p.maxLag !== undefined) proxy['max-lag'] = p.maxLag
    section('proxy', proxy, " LiteFS's own proxy. `litefs-proxy serve --config` reads this section too: run one or the other.")
  }

  // Double quotes: a plain 0 or 10 would be a number, which LiteFS refuses for a
  // duration. No folding: LiteFS expands ${VAR} in the raw text, before YAML.
  return doc.toString({ defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 0 })
}
