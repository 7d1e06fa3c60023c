import type { CoreContext } from './context.js'
import { mountFiles } from './mount-files.js'
import { several } from './databases.js'
import type { ResolvedOptions } from './options.js'

// A write served here as primary, and no `<db>-pos` beside it (several
// databases: none for any tracked one): read-your-writes is off for it (no
// cookie), said once (warnings.ts) as what it most likely is. With no database
// under the mount at all, the database does not exist yet (a fresh cluster: the
// app's schema has not been created on the primary); with others there, `db`
// names the wrong file. Looked at on this rare path only.

/** What option `db` names, as said: `app.db`, or `app.db, cache.db` / `*` for several. */
export function dbLabel (options: ResolvedOptions): string {
  const { named, all } = options.databases
  return [...named, ...(all ? ['*'] : [])].join(', ')
}

export function sayDbMissing<C> (core: CoreContext<C>): void {
  if (core.dbMissing) return // said (or being said) already
  core.dbMissing = true
  const { mount } = core.options
  const db = dbLabel(core.options)
  core.warn.say('LITEFS_DB', `${mount}/${db}`, `a write was served here as primary, but ${missingDbCause(core, ', so its answer has no cookie')}`,
    core.options.state !== undefined ? { db } : { mount, db })
}

/**
 * Why the tracked database has no position, where it is looked for: the
 * node's state (a given one: the dev cluster has no mount) or LiteFS's mount,
 * naming what is there instead. `so`: what it costs, said after the fact.
 */
export function missingDbCause<C> (core: CoreContext<C>, so: string): string {
  const { mount } = core.options
  const db = dbLabel(core.options)
  if (core.options.state !== undefined) {
    // A given state (the dev cluster): no mount to look at; the state knows its databases.
    const known = core.state.databases.filter(n => n !== db && core.state.position(n) > 0n)
    const what = core.options.databases.named.length === 0 ? 'any database' : `"${db}"`
    return known.length === 0
      ? `the node's state has no position for ${what} (it has no database yet)${so}: create it, and its schema, on the primary`
      : `the node's state has no position for "${db}"${so}: is "db" the database your app writes? The state has ${known.map(n => `"${n}"`).join(', ')}`
  }
  const others = mountFiles(mount).databases()
  return others.length === 0
    ? `the database ${mount}/${db} does not exist yet (LiteFS has no database)${so}: create it, and its schema, on the primary (see "Your database handle" in litefs-proxy's README)`
    : `${mount}/${db}-pos does not exist${so}: is "db" the file name your app opens under the mount? LiteFS has ${others.map(n => `"${n}"`).join(', ')}`
}

/**
 * Several databases: a database `db` names, with no position after a write
 * while others have one — not created yet, or a wrong name. Said once per
 * database (the mount check says the same on a live mount, under the same key);
 * tokens leave it out meanwhile.
 */
export function sayNamedMissing<C> (core: CoreContext<C>, db: string, have: readonly string[]): void {
  const { mount } = core.options
  core.warn.say('LITEFS_DB', `${mount}/${db}`, `"db" names "${db}", which has no position (no ${db}-pos), unlike ${have.map(n => `"${n}"`).join(', ')}: not created yet, or a wrong name? Tokens leave it out until it has a position`, { db, databases: have })
}

/**
 * LITEFS_DB said about one database (the mount check at start, a write's
 * missing position, a token leaving it out) clears once its `-pos` appears —
 * the state has a position for it — whether or not a write follows. Looked at
 * on each change of the state while such a warning stands; none stands, the
 * look is one pass over an empty set. Returns the unsubscribe.
 */
export function clearDbOnPosition<C> (core: CoreContext<C>): () => void {
  const prefix = `${core.options.mount}/`
  const { state, warn } = core
  return state.onChange(() => {
    for (const scope of warn.saying('LITEFS_DB')) {
      const db = scope.slice(prefix.length)
      if (!scope.startsWith(prefix) || !state.databases.includes(db)) continue
      if (db === core.options.db) core.dbMissing = false // a write's warning (sayDbMissing), said under the same key
      warn.clear('LITEFS_DB', scope, `${db}-pos exists now: ${several(core.options.databases) ? 'tokens include it' : 'writes are cookied'}`)
    }
  })
}
