import { openLitefsNode, type LitefsDriver, type LitefsNodeOptions } from './litefs-node.js'
import type { NodeState } from './node-state.js'

// One NodeState per mount per process, shared by every plugin instance and
// adapter that names the same mount, API, role and lease, released when the
// last of them closes: one event stream, one kept -pos fd, one fence per node.
// How a NodeState follows LiteFS is litefs-node.ts's.

interface Shared { state: NodeState, driver: LitefsDriver, users: number }
const shared = new Map<string, Shared>()

export interface NodeLease {
  state: NodeState
  release: () => Promise<void>
}

/** The NodeState of the node `opts` names, shared; release it when done (the last release closes it). */
export function acquireLitefsNode (opts: LitefsNodeOptions): NodeLease {
  const key = `${opts.mount}\0${String(opts.api)}\0${opts.role ?? ''}\0${JSON.stringify(opts.consul ?? null)}`
  let entry = shared.get(key)
  if (entry === undefined) {
    const state = openLitefsNode(opts)
    entry = { state, driver: state.driver as LitefsDriver, users: 0 }
    shared.set(key, entry)
  }
  for (const db of opts.databases) entry.driver.databases.add(db)
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
