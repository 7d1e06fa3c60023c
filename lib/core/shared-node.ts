import { openLitefsNode, trackDatabases, type LitefsNodeOptions } from './litefs-node.js'
import type { NodeState } from './node-state.js'

// One NodeState per mount per process, shared by every plugin instance and
// adapter that names the same mount and API (one event stream, one set of
// held requests), released when the last of them closes. Following LiteFS is
// litefs-node.ts's.

interface Shared { state: NodeState, users: number }
const shared = new Map<string, Shared>()

export interface NodeLease {
  state: NodeState
  release: () => Promise<void>
}

export function acquireLitefsNode (opts: LitefsNodeOptions): NodeLease {
  const key = `${opts.mount}\0${String(opts.api)}\0${opts.role ?? ''}\0${JSON.stringify(opts.consul ?? null)}`
  let entry = shared.get(key)
  if (entry === undefined) {
    entry = { state: openLitefsNode(opts), users: 0 }
    shared.set(key, entry)
  }
  trackDatabases(entry.state, opts.databases)
  entry.users++
  const held = entry
  let released = false
  return {
    state: held.state,
    release: async () => {
      if (released) return
      released = true
      if (--held.users > 0) return
      shared.delete(key)
      await held.state.close()
    }
  }
}
