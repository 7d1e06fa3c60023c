import type { TrackedDatabases } from './databases.js'
import type { NodeState } from './node-state.js'
import { SharedRead } from './shared-read.js'

// The positions of every tracked database after a write (several databases:
// databases.ts), from the authority: one batch of `-pos` reads (PosFiles.readMany:
// one job on a worker thread for the batch once the fds are kept, else one
// thread-pool job per database; one promise for them all), never one
// FUSE round trip after another on the event loop. As a single database's read
// (NodeState.positionAfter, DESIGN §3.5) the batch starts after the caller
// joined — so it includes the handler's commits — and is shared with every
// answer ready before it started (shared-read.ts). The databases are the ones
// tracked when the batch starts; with `'*'`, the mount is listed beside the
// reads, and a database found then (the handler created it) is read too.

/** Database → its position (undefined: no `-pos`, or unreadable). */
export type ReadPositions = Map<string, bigint | undefined>

/** Several databases tracked by one core: which, and their batched read. */
export interface Several {
  readonly tracked: TrackedDatabases
  readonly read: PositionsRead
}

export class PositionsRead {
  private readonly shared: SharedRead<ReadPositions>

  constructor (state: NodeState, tracked: TrackedDatabases) {
    const readMany = readerOf(state)
    const readAll = (dbs: readonly string[], out: ReadPositions): Promise<void> => readMany(dbs).then(positions => {
      dbs.forEach((db, i) => {
        const pos = positions[i]
        // Raised, never lowered: an event may have brought a newer position while this read was on its way.
        if (pos !== undefined && pos > state.position(db)) state.setPosition(db, pos)
        out.set(db, pos)
      })
    })
    this.shared = new SharedRead(() => {
      const out: ReadPositions = new Map()
      const known = tracked.now()
      if (!tracked.settings.all) return readAll(known, out).then(() => out)
      // `'*'`: the mount is listed beside the reads; a database found new (the handler created it) is read after.
      return Promise.all([readAll(known, out), tracked.listNow().then(() => tracked.now())]).then(async ([, listed]) => {
        const found = listed.filter(db => !out.has(db))
        if (found.length > 0) await readAll(found, out)
        return out
      })
    })
  }

  /** Every tracked database's position, from a batch of reads that starts after this call. */
  after (): Promise<ReadPositions> {
    return this.shared.join() // not an async function: one promise less per answer
  }
}

type ReadMany = (dbs: readonly string[]) => Promise<Array<bigint | undefined>>

/**
 * How a batch reads its databases: the driver's one-promise batch
 * (readPositionsAsync: LiteFS's mount), else one asynchronous read per
 * database, else the synchronous read (a given state). Never rejects: a read
 * that fails is no position.
 */
function readerOf (state: NodeState): ReadMany {
  const driver = state.driver
  const none = (): undefined => undefined
  if (driver.readPositionsAsync !== undefined) {
    const many = driver.readPositionsAsync
    return async dbs => {
      try {
        return await many(dbs)
      } catch {
        return dbs.map(none) // a driver that throws or rejects: no positions this batch
      }
    }
  }
  const async = driver.readPositionAsync
  const one = async === undefined
    ? async (db: string) => state.readPosition(db)
    : async (db: string) => {
      try {
        return await async(db)
      } catch {
        return undefined
      }
    }
  return async dbs => await Promise.all(dbs.map(one))
}
