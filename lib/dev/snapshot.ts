import Database from 'better-sqlite3'

// How the dev cluster moves a database from the primary to a replica: the
// primary's whole image at a commit, written into the replica's file by SQLite
// itself (the backup API), as one transaction: the replica's open read-only
// handle sees the new data from its next read on, and never a torn copy. The
// replica's file is in WAL mode, so the copy, which takes several event-loop
// turns, never locks the app's reads out, and an open read keeps its snapshot.

/**
 * The committed content of `db` at this instant, as the bytes of a database
 * file, ready for `copySnapshot`. One snapshot serves every replica.
 */
export function takeSnapshot (db: Database.Database): Buffer {
  const image = db.serialize()
  // SQLite cannot open an in-memory image whose header says WAL (bytes 18-19 = 2):
  // it would look for a -wal file that an image has not got. The backup keeps
  // the destination's own journal mode: the replica stays WAL.
  if (image[18] === 2) image[18] = image[19] = 1
  return image
}

/**
 * Overwrite the database in `file` with `snapshot`, in one SQLite transaction.
 * Resolves true once the data is committed and readable there; false when
 * nothing was copied because another connection was writing to `file` (a tool,
 * another process): better-sqlite3 reports that as a finished backup of 0
 * pages, so the page count is checked. The caller tries again later.
 */
export async function copySnapshot (snapshot: Buffer, file: string): Promise<boolean> {
  const source = new Database(snapshot)
  try {
    const pages = source.pragma('page_count', { simple: true }) as number
    const { totalPages } = await source.backup(file)
    return totalPages === pages
  } finally {
    source.close()
  }
}
