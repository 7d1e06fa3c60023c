import type { CoreContext } from './context.js'
import { dbLabel } from './db-missing.js'
import type { Positions } from './positions-token.js'

/** What a read waits for: database and TXID, the main database first. */
export type Wanted = ReadonlyArray<readonly [string, bigint]>

/**
 * The positions a token names, of the databases this core tracks: what a held
 * read (read-path.ts) and a wait outside HTTP (outside-http.ts) wait for, by
 * one rule. A database it does not track (nodes configured with different `db`
 * lists, or a token from another app) is left out, and said once
 * (LITEFS_TOKEN_DB): waiting for a position nobody here follows could only
 * time out. A zero TXID (no write yet) waits for nothing.
 */
export function trackedPositions<C> (core: CoreContext<C>, positions: Positions): Array<readonly [string, bigint]> {
  const wanted: Array<readonly [string, bigint]> = []
  const tracked = core.several?.tracked
  for (const [db, txid] of positions) {
    if (tracked === undefined ? db !== core.options.db : !tracked.accepts(db)) {
      core.warn.say('LITEFS_TOKEN_DB', core.options.mount, `a token names the database "${db}", which this app does not track (db: ${dbLabel(core.options)}); its position is ignored (said once: such tokens may be many). Give every node the same "db"`, { db })
      continue
    }
    if (txid !== 0n) wanted.push([db, txid])
  }
  return wanted
}
