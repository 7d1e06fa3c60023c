import { readdir } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { fail, LitefsOptionsError } from './option-checks.js'
import type { NodeState } from './node-state.js'
import type { Warnings } from './warnings.js'

// Which databases of the mount a core tracks (option `db`): one name (LiteFS's
// proxy.db), a list, or `'*'` for every database in the mount, alone or after
// the names that come first (`['app.db', '*']`). The first name is the main
// database: a single-database token (16 hex digits, as every token was before
// several databases, and LiteFS's and litefs-js's cookies) means it; the primary
// probe, `durability` and replica reports follow it alone. With `'*'` the list
// is found in the mount: every file with a `-pos` companion, plus every
// database LiteFS's event stream has reported. The mount is listed on the
// thread pool, never on the event loop: beside each batch of a write's `-pos`
// reads (a database the handler has just created must be in its token, and
// the stream may not have reported it yet), and for health at most once every
// RESCAN_MS. At most MAX_DATABASES are tracked, so a token stays small (token
// format: positions-token.ts).

/** Most databases one core tracks, and one token names. */
export const MAX_DATABASES = 16
/** Longest database name in a token, percent-encoded: a token of MAX_DATABASES names stays under 2 KB. */
export const MAX_NAME = 100
/** `'*'`: the mount is listed again at most this often (ms). */
export const RESCAN_MS = 1000

export interface DatabaseSettings {
  /** The main database (the first named), or undefined for `'*'` alone. */
  main: string | undefined
  /** The databases named, main first. */
  named: readonly string[]
  /** `'*'`: also every other database in the mount. */
  all: boolean
}

const NAME = /^[^/\0]+$/

/** A name a token can carry: a file name, not too long once encoded. */
export function validName (name: string): boolean {
  return NAME.test(name) && name !== '*' && encodeURIComponent(name).length <= MAX_NAME
}

/** What `db` must be; fail() adds why a given list is not (serve says it in flag terms: sidecar/flag-errors.ts). */
export const EXPECTED = `a database file name inside the mount (e.g. "app.db"), a list of up to ${MAX_DATABASES} of them, or "*" for every database in the mount (alone or last: ["app.db", "*"])`

/** Option `db`, checked. */
export function resolveDatabases (raw: unknown): DatabaseSettings {
  if (raw === undefined) {
    throw new LitefsOptionsError('litefs-proxy: option "db" is missing: the database file name inside the mount (e.g. "app.db"), as LiteFS\'s proxy.db; a list of names, or "*" for every database in the mount')
  }
  const list = typeof raw === 'string' ? [raw] : raw
  if (!Array.isArray(list) || list.length === 0 || !list.every(n => typeof n === 'string')) fail('db', EXPECTED, raw)
  const names = list as string[]
  const all = names[names.length - 1] === '*'
  const named = all ? names.slice(0, -1) : names
  for (const name of named) {
    if (name === '*') fail('db', `${EXPECTED}; "*" may only come last`, raw)
    // serve's --db list, copied into the options: a list is an array there.
    if (name.includes(',')) fail('db', `${EXPECTED}; a list is an array (["app.db", "cache.db"]), not one name with commas`, raw)
    if (name.trim() !== name) fail('db', `${EXPECTED}; a name has no spaces around it`, raw)
    if (!validName(name)) fail('db', `${EXPECTED}; each a file name of at most ${MAX_NAME} characters percent-encoded`, raw)
  }
  if (new Set(named).size !== named.length) fail('db', `${EXPECTED}, each named once`, raw)
  if (named.length > MAX_DATABASES) fail('db', `${EXPECTED} (a token names at most ${MAX_DATABASES})`, raw)
  return { main: named[0], named, all }
}

/** Several databases are tracked (a list of more than one, or `'*'`): tokens may name several. */
export function several (settings: DatabaseSettings): boolean {
  return settings.all || settings.named.length > 1
}

/**
 * The databases tracked now. For `'*'`, `list` lists the mount (undefined: a
 * given `state` has no mount; what it reports is all there is).
 */
export class TrackedDatabases {
  private found: readonly string[] = []
  private scannedAt = -Infinity

  constructor (
    readonly settings: DatabaseSettings,
    private readonly state: NodeState,
    private readonly mount: string | undefined,
    private readonly warn: Warnings,
    private readonly rescanMs = RESCAN_MS
  ) {
    if (settings.all) this.rescan()
  }

  /** Whether `db` is one of the tracked databases, or could be (any valid name with `'*'`). */
  accepts (db: string): boolean {
    return this.settings.all ? validName(db) : this.settings.named.includes(db)
  }

  /** The tracked databases, main first, at most MAX_DATABASES. */
  now (): readonly string[] {
    const { named, all } = this.settings
    if (!all) return named
    if (performance.now() - this.scannedAt >= this.rescanMs) this.rescan()
    const seen = new Set(named)
    const others = [...this.found, ...this.state.databases].filter(n => !seen.has(n) && validName(n) && (seen.add(n), true)).sort()
    const tracked = [...named, ...others]
    if (tracked.length <= MAX_DATABASES) return tracked
    const left = tracked.slice(MAX_DATABASES)
    // Said once per set left out (warnings.ts keeps what was said).
    this.warn.say('LITEFS_TOO_MANY_DBS', `${this.mount ?? 'state'}:${left.join(',')}`, `"db: '*'" found ${tracked.length} databases; a token names at most ${MAX_DATABASES}, so writes to ${left.map(n => `"${n}"`).join(', ')} are not tracked: name the ones that matter in "db" (they come first)`, { untracked: left })
    return tracked.slice(0, MAX_DATABASES)
  }

  /** `'*'`: list the mount now, on the thread pool; what it finds counts from then on. Resolves at once otherwise. */
  async listNow (): Promise<void> {
    this.scannedAt = performance.now()
    const mount = this.mount
    if (!this.settings.all || mount === undefined) return
    await new Promise<void>(resolve => readdir(mount, (err, names) => {
      // Gone, or not a directory: nothing found this time (the next listing tries again).
      this.found = err === null ? names.filter(n => n.endsWith('-pos')).map(n => n.slice(0, -4)) : []
      resolve()
    }))
  }

  /** A listing in the background (at most one a RESCAN_MS: listNow() marks the time when it starts). */
  private rescan (): void {
    void this.listNow()
  }
}
