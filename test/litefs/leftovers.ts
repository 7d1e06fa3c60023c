// Every real-LiteFS test file ends with `leavesNothingBehind(t)`: a last
// subtest that runs even when earlier ones failed and checks, against what
// existed when the file started, that no LiteFS mount (live or dead), no
// LiteFS or Consul process and no harness network namespace (`lfp…`) is
// left. Each file says it itself, so a leftover names the file that made it.
// What it finds is then removed, so the next file starts clean; the failure stays.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import type { Test } from 'tap'

interface Snapshot { mounts: string[], processes: string[], namespaces: string[] }

function litefsMounts (): string[] {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n')
    .map(l => l.split(' '))
    .filter(f => f[0] === 'litefs' && f[2]?.startsWith('fuse') === true)
    .map(f => f[1])
}

/** `<pid> <name>` of each live (not zombie) litefs or consul process. */
function litefsProcesses (): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const state = stat.slice(stat.lastIndexOf(')') + 2)[0]
      if ((name === 'litefs' || name === 'consul') && state !== 'Z') found.push(`${pid} ${name}`)
    } catch {} // ended meanwhile
  }
  return found
}

function harnessNamespaces (): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map(l => l.split(' ')[0]).filter(n => n.startsWith('lfp'))
  } catch {
    return []
  }
}

function snapshot (): Snapshot {
  return { mounts: litefsMounts(), processes: litefsProcesses(), namespaces: harnessNamespaces() }
}

function remove (left: Snapshot): void {
  // The process group: LiteFS leads one with the app it runs under `exec:`, which must not outlive it.
  for (const p of left.processes) {
    const pid = Number(p.split(' ')[0])
    try { process.kill(-pid, 'SIGKILL') } catch { try { process.kill(pid, 'SIGKILL') } catch {} }
  }
  for (const m of left.mounts) {
    try { execFileSync('fusermount3', ['-uz', m], { stdio: 'ignore', timeout: 5_000 }) } catch {
      try { execFileSync('umount', ['-l', m], { stdio: 'ignore', timeout: 5_000 }) } catch {}
    }
  }
  for (const ns of left.namespaces) { try { execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: 5_000 }) } catch {} }
}

/**
 * Call once, after the file's other top-level tests are registered. `close`:
 * what the file's own top-level teardown closes (a shared cluster, its apps),
 * done here first; it must be idempotent, as `cluster.close()` is.
 */
export function leavesNothingBehind (t: Test, close?: () => Promise<unknown> | undefined): void {
  const before = snapshot()
  t.test('the file leaves no LiteFS mount, LiteFS or Consul process, or network namespace behind', async t => {
    await close?.()
    const now = snapshot()
    const left: Snapshot = {
      mounts: now.mounts.filter(m => !before.mounts.includes(m)),
      processes: now.processes.filter(p => !before.processes.includes(p)),
      namespaces: now.namespaces.filter(n => !before.namespaces.includes(n))
    }
    t.same(left.mounts, [], 'no LiteFS mount left (live or dead)')
    t.same(left.processes, [], 'no LiteFS or Consul process left')
    t.same(left.namespaces, [], 'no network namespace left')
    remove(left)
  })
}
