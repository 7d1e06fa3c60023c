/**
 * The exit-hook safety net: a synchronous `process.on('exit')` hook (plus
 * SIGINT/SIGTERM/SIGHUP) that kills every LiteFS the harness started and every
 * other process it tracks (Consul, apps, the namespace gateway), lazily unmounts
 * the mounts, deletes the network namespaces and removes the base directories
 * the harness created, so a test that crashes or forgets `close()` leaves
 * nothing behind. Only a SIGKILL of the test process itself can (and the next
 * cluster's network sweeps that run's namespaces: `netns.ts`). Nodes, clusters
 * and networks say what to clean by tracking and untracking it here; the
 * ordinary, asynchronous teardown is theirs.
 */
import { rmSync } from 'node:fs'
import { isMounted, unmountAllSync } from './mounts.js'

/** What the exit hook needs of a node: its mount, and a way to kill its process without waiting. */
export interface TrackedNode {
  readonly mount: string
  /** SIGKILL, no waiting, no events (the event loop is gone). */
  killSync(): void
}

/** Every node that has a LiteFS process or may have a mount, across all clusters. */
const liveNodes = new Set<TrackedNode>()
/** Base directories the harness created and has not removed yet. */
const createdDirs = new Map<string, readonly TrackedNode[]>()
/** Synchronous kills of other processes (Consul, apps, the gateway): run with the nodes' kills. */
const kills = new Set<() => void>()
/** Synchronous removals run once every process is dead and every mount gone (network namespaces). */
const finals = new Set<() => void>()
let safetyNetInstalled = false
/** How long other handlers of a signal get to end the process before it dies of the signal anyway (ms). */
const SIGNAL_GRACE_MS = 2000

/** From spawn until its process is gone and its mount removed. */
export function trackNode (node: TrackedNode): void { liveNodes.add(node) }
export function untrackNode (node: TrackedNode): void { liveNodes.delete(node) }
/** A base directory to remove at exit, unless one of `nodes`' mounts is still attached inside it. */
export function trackCreatedDir (dir: string, nodes: readonly TrackedNode[]): void { createdDirs.set(dir, nodes) }
export function untrackCreatedDir (dir: string): void { createdDirs.delete(dir) }
/** `kill` SIGKILLs a process the harness started, without waiting. */
export function trackKill (kill: () => void): void { kills.add(kill) }
export function untrackKill (kill: () => void): void { kills.delete(kill) }
/** `remove` deletes something (a network namespace) after every process and mount is gone. */
export function trackFinal (remove: () => void): void { finals.add(remove) }
export function untrackFinal (remove: () => void): void { finals.delete(remove) }

function cleanupSync (): void {
  for (const node of liveNodes) node.killSync()
  for (const kill of kills) { try { kill() } catch {} }
  for (const node of liveNodes) unmountAllSync(node.mount)
  for (const remove of finals) { try { remove() } catch {} }
  for (const [dir, nodes] of createdDirs) {
    // Never recurse into a mount that is still attached: that would delete through LiteFS.
    if (nodes.some((n) => isMounted(n.mount))) continue
    try { rmSync(dir, { recursive: true, force: true }) } catch {}
  }
  liveNodes.clear()
  createdDirs.clear()
  kills.clear()
  finals.clear()
}

export function installSafetyNet (): void {
  if (safetyNetInstalled) return
  safetyNetInstalled = true
  process.on('exit', cleanupSync)
  // 'exit' does not run when a signal kills the process (tap sends SIGTERM on a
  // timeout). Clean up, then let the process die of the signal as it would
  // have: re-raised at once if nobody else handles it; else left to them
  // (tap's own handler, signal-exit, re-raises once it is the last listener,
  // so this one steps aside), and re-raised after a grace period should they
  // keep the process alive anyway.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupSync()
      process.removeListener(signal, onSignal)
      if (process.listenerCount(signal) === 0) {
        process.kill(process.pid, signal)
        return
      }
      setTimeout(() => {
        for (const other of process.listeners(signal)) process.removeListener(signal, other)
        process.kill(process.pid, signal)
      }, SIGNAL_GRACE_MS).unref()
    }
    process.on(signal, onSignal)
  }
}
