/**
 * The checks and the directory both cluster kinds start with (`litefs-cluster.ts`,
 * static lease; `consul-cluster.ts`, Consul lease): how many nodes and their
 * hostnames, the litefs binary, the base directory. Starting nodes is theirs.
 */
import { mkdirSync, mkdtempSync, realpathSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findLitefs, isExecutable } from './litefs-binary.js'

const HOSTNAME_RE = /^[A-Za-z0-9._-]+$/

/** The node count and hostnames (default `node-1` … `node-N`). Throws RangeError naming the bad option. */
export function clusterHostnames (opts: { nodes?: number, hostnames?: string[] }): string[] {
  const count = opts.nodes ?? opts.hostnames?.length ?? 3
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`litefs-cluster: nodes must be a positive integer, got ${count}`)
  const hostnames = opts.hostnames ?? Array.from({ length: count }, (_, i) => `node-${i + 1}`)
  if (hostnames.length !== count) throw new RangeError(`litefs-cluster: ${hostnames.length} hostnames for ${count} nodes`)
  for (const h of hostnames) if (!HOSTNAME_RE.test(h)) throw new RangeError(`litefs-cluster: hostname ${JSON.stringify(h)} must match ${HOSTNAME_RE}`)
  if (new Set(hostnames).size !== count) throw new RangeError('litefs-cluster: hostnames must be unique')
  return hostnames
}

/** `binary`, or the one `findLitefs()` finds; throws when there is none or it cannot run. */
export function litefsBinary (binary: string | undefined): string {
  const found = binary ?? findLitefs()
  if (!found) throw new Error('litefs-cluster: no litefs binary found (set LITEFS_BIN, run scripts/install-litefs.sh, or put litefs on PATH)')
  if (!isExecutable(found)) throw new Error(`litefs-cluster: litefs binary ${found} is not an executable file`)
  return found
}

/** The base directory, resolved: `dir` (created if missing), or a fresh temp dir named `prefix…` (`created`: the cluster removes it). */
export function clusterDir (dir: string | undefined, prefix: string): { dir: string, created: boolean } {
  // Realpath: /proc/self/mounts lists resolved paths, and the mount check compares strings.
  const resolved = dir === undefined ? realpathSync(mkdtempSync(join(tmpdir(), prefix))) : (mkdirSync(dir, { recursive: true }), realpathSync(dir))
  // LiteFS expands ${VAR} / $VAR across the whole config, paths included.
  if (resolved.includes('$')) throw new Error(`litefs-cluster: dir ${resolved} contains "$", which LiteFS would expand as an environment variable`)
  return { dir: resolved, created: dir === undefined }
}
