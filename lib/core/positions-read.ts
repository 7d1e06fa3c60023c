import type { TrackedDatabases } from './databases.js'
import type { NodeState } from './node-state.js'
import { SharedRead } from './shared-read.js'

// The positions of every tracked database after a write (several databases:
// databases.ts), from the authority: one batch of `-pos` reads, all started at
// once on libuv's thread pool (PosFiles.read, one job per database), never one
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
    const driver = state.driver
    // A driver without an asynchronous read (a given state) answers at once.
    const read = driver.readPositionAsync === undefined
      ? async (db: string) => state.readPosition(db)
      : async (db: string) => await (driver as Required<Pick<typeof driver, 'readPositionAsync'>>).readPositionAsync(db).catch(() => undefined)
    const readAll = async (dbs: readonly string[], out: ReadPositions): Promise<void> => {
      const positions = await Promise.all(dbs.map(read))
      dbs.forEach((db, i) => {
        const pos = positions[i]
        // Raised, never lowered: an event may have brought a newer position while this read was on its way.
        if (pos !== undefined && pos > state.position(db)) state.setPosition(db, pos)
        out.set(db, pos)
      })
    }
    this.shared = new SharedRead(async () => {
      const out: ReadPositions = new Map()
      const known = tracked.now()
      if (!tracked.settings.all) {
        await readAll(known, out)
        return out
      }
      // `'*'`: the mount is listed beside the reads; a database found new (the handler created it) is read after.
      const [, listed] = await Promise.all([readAll(known, out), tracked.listNow().then(() => tracked.now())])
      const found = listed.filter(db => !out.has(db))
      if (found.length > 0) await readAll(found, out)
      return out
    })
  }

  /** Every tracked database's position, from a batch of reads that starts after this call. */
  after (): Promise<ReadPositions> {
    return this.shared.join() // not an async function: one promise less per answer
  }
}
