import { close, openSync, readdirSync, readSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { PosFiles } from './pos-file.js'

export { IDLE_MS, POS_SIZE } from './pos-file.js'

// The files LiteFS's FUSE mount keeps beside each database. fs.watch sees nothing
// on them (LiteFS changes them without inotify events), so they are read on
// demand. `.primary` and `.lag` are read fresh (open, read, close); `<db>-pos`,
// read for every write's answer, through kept fds (pos-file.ts).

/** `.primary`, `.lag`, `<db>-pos`: read on demand, never watched. */
export interface MountFiles {
  /** The TXID in `<db>-pos` (kept fd while `keep(true)`, else a fresh read); undefined when absent or unreadable. */
  readPosition: (db: string) => bigint | undefined
  /** The same, read on the thread pool by a read that starts after the call: the event loop never waits on FUSE. Never rejects. */
  readPositionAsync: (db: string) => Promise<bigint | undefined>
  /** The same for several databases at once (in the order given), one promise for all. Never rejects. */
  readPositionsAsync: (dbs: readonly string[]) => Promise<Array<bigint | undefined>>
  /** The hostname in `.primary`: present on a replica connected to (or connecting to) a primary; absent otherwise. */
  readPrimary: () => string | undefined
  /** `.lag` (`%+010d\n`, milliseconds), or undefined when absent or malformed. */
  readLag: () => number | undefined
  /** The same, read on the thread pool (open, read, close). Never rejects. */
  readLagAsync: () => Promise<number | undefined>
  /**
   * Whether LiteFS answers on the mount now: `.lag` exists on every live LiteFS
   * mount, primary or replica. A dead mount answers ENOTCONN, an unmounted one
   * (a plain directory, where SQLite would create a new database) ENOENT.
   */
  live: () => boolean
  /** The databases LiteFS has in the mount (from their `-pos` files); none when it cannot be listed. */
  databases: () => string[]
  /** Keep `-pos` fds open while in use (true), or close them all now and read fresh (false). */
  keep: (on: boolean) => void
}

// Closing is asynchronous so a close that fails (ENOTCONN on a dead mount) never throws.
const ignore = (): void => {}

const buffer = Buffer.allocUnsafe(4096) // a hostname is at most 253 bytes; .lag 11

/** The file's content, or undefined when it cannot be opened or read (absent, mount dead or gone). */
function readFresh (path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  let content: string | undefined
  try {
    content = buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0))
  } catch {
    content = undefined // EIO, ENOTCONN: LiteFS went away between open and read
  }
  close(fd, ignore)
  return content
}

/** readFresh on the thread pool: undefined when the file cannot be opened or read. */
async function readFreshAsync (path: string): Promise<string | undefined> {
  let file: FileHandle
  try {
    file = await open(path, 'r')
  } catch {
    return undefined
  }
  let content: string | undefined
  try {
    const { bytesRead, buffer } = await file.read(Buffer.alloc(64), 0, 64, 0) // .lag is 11 bytes
    content = buffer.toString('latin1', 0, bytesRead)
  } catch {
    content = undefined // EIO, ENOTCONN: LiteFS went away between open and read
  }
  file.close().catch(ignore)
  return content
}

function hostname (content: string | undefined): string | undefined {
  const h = content?.trim()
  return h === undefined || h === '' ? undefined : h
}

const LAG = /^([+-]\d+)\n?$/

export function mountFiles (mount: string): MountFiles {
  const primaryPath = join(mount, '.primary')
  const lagPath = join(mount, '.lag')
  const pos = new PosFiles(mount)
  const parseLag = (content: string | undefined): number | undefined => {
    const m = LAG.exec(content ?? '')
    return m === null ? undefined : Math.max(0, Number(m[1]))
  }
  return {
    readPosition: db => pos.readSync(db),
    readPositionAsync: db => pos.read(db),
    readPositionsAsync: dbs => pos.readMany(dbs),
    readPrimary: () => hostname(readFresh(primaryPath)),
    readLag: () => parseLag(readFresh(lagPath)),
    readLagAsync: async () => parseLag(await readFreshAsync(lagPath)),
    live: () => readFresh(lagPath) !== undefined,
    databases: () => {
      let names: string[] = []
      try {
        names = readdirSync(mount)
      } catch {} // gone, or not a directory: no database to name
      return names.filter(n => n.endsWith('-pos')).map(n => n.slice(0, -4))
    },
    keep: on => { pos.keep(on) }
  }
}
