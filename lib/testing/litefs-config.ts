/**
 * A node's litefs.yml with a static lease, as the harness writes it: the mount,
 * data directory and API address of the node, the static lease naming the
 * primary on every node (only the primary is a candidate), and the optional
 * `exec:` and `proxy:` sections. Where the file goes and when it is rewritten
 * (cluster start, `setPrimary`) is the node's and the cluster's business.
 */
import type { LitefsProxySection } from './cluster-types.js'

export interface StaticLeaseConfig {
  mount: string
  dataDir: string
  /** LiteFS's API port on 127.0.0.1. */
  port: number
  /** The static primary's lease hostname. */
  primaryHostname: string
  /** Where this node reaches the primary's API (the primary's own, or a replication relay). */
  advertiseUrl: string
  /** True on the primary only. */
  candidate: boolean
  exec?: string
  proxy?: LitefsProxySection
}

/** The YAML text. Strings are JSON-quoted (valid YAML double-quoted scalars). */
export function staticLeaseYml (c: StaticLeaseConfig): string {
  const q = JSON.stringify
  const lines = [
    '# Written by litefs-proxy/litefs-cluster; rewritten by setPrimary().',
    'fuse:',
    `  dir: ${q(c.mount)}`,
    'data:',
    `  dir: ${q(c.dataDir)}`,
    'http:',
    `  addr: ${q(`127.0.0.1:${c.port}`)}`,
    // false: a startup error keeps LiteFS running (and logging "ERROR:"), which
    // the harness reports with the log, instead of an exit that looks like a crash.
    'exit-on-error: false',
    // A static lease names the PRIMARY on every node; only the primary is the candidate.
    'lease:',
    '  type: "static"',
    `  hostname: ${q(c.primaryHostname)}`,
    `  advertise-url: ${q(c.advertiseUrl)}`,
    `  candidate: ${c.candidate}`,
    'log:',
    '  format: "text"',
  ]
  if (c.exec !== undefined) lines.push('exec:', `  - cmd: ${q(c.exec)}`)
  if (c.proxy !== undefined) {
    lines.push('proxy:')
    for (const [key, value] of Object.entries(c.proxy)) {
      if (Array.isArray(value)) lines.push(`  ${key}:`, ...value.map(v => `    - ${q(v)}`))
      else lines.push(`  ${key}: ${q(value)}`)
    }
  }
  return lines.join('\n') + '\n'
}
