import { close, openSync, readdirSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parsePos } from './txid.js'

// The files LiteFS's FUSE mount keeps beside each database. fs.watch sees nothing
// on them (LiteFS changes them without inotify events), so they are read on demand.
//
// Two ways to read `<db>-pos`, both measured on LiteFS v0.5.14:
// - fresh: open, read, close into one reused buffer — three system calls, about
//   130–150 µs through FUSE. Always the truth, including after LiteFS restarted.
// - kept: one fd held open and read with pread — about 1 µs. LiteFS invalidates
//   the kernel's cached page on every position change before it sends the `tx`
//   event, so it is never behind a fresh read; but after LiteFS exits the old fd
//   keeps returning the old position, and an fd held open while LiteFS stops
//   makes its unmount fail ("Device or resource busy"), leaving a dead mount
//   that a restarted LiteFS cannot mount over. LiteFS v0.5.14 unmounts before
//   its event stream is cut (the socket goes with the process): an app that
//   closed its fd the instant the stream dropped still blocked the unmount 4
//   times in 5. So fds are kept only while the event stream proves LiteFS is up,
//   and only while in use: an fd idle for IDLE_MS is closed, so an idle app
//   never blocks an unmount (a busy one has its own SQLite files open anyway).

/** `.primary`, `.lag`, `<db>-pos`: read on demand, never watched. */
export interface MountFiles {
  /** The TXID in `<db>-pos` (kept fd while `keep(true)`, else a fresh read); undefined when absent or unreadable. */
  readPosition: (db: string) => bigint | undefined
  /** The hostname in `.primary`: present on a replica connected to (or connecting to) a primary; absent otherwise. */
  readPrimary: () => string | undefined
  /** `.lag` (`%+010d\n`, milliseconds), or undefined when absent or malformed. */
  readLag: () => number | undefined
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

const buffer = Buffer.allocUnsafe(4096) // a hostname is at most 253 bytes; -pos is 34, .lag 11

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

function hostname (content: string | undefined): string | undefined {
  const h = content?.trim()
  return h === undefined || h === '' ? undefined : h
}

const LAG = /^([+-]\d+)\n?$/
/** A kept `-pos` fd unread this long is closed (ms): below ten reads a second a fresh open costs nothing worth keeping. */
export const IDLE_MS = 100

export function mountFiles (mount: string): MountFiles {
  const primaryPath = join(mount, '.primary')
  const lagPath = join(mount, '.lag')
  // Paths are joined once per database, not once per request.
  const posPaths = new Map<string, string>()
  const posPath = (db: string): string => {
    let p = posPaths.get(db)
    if (p === undefined) { p = join(mount, `${db}-pos`); posPaths.set(db, p) }
    return p
  }
  let keeping = false
  const fds = new Map<string, number>()
  let lastUse = 0
  let idle: NodeJS.Timeout | undefined
  const drop = (db: string, fd: number): void => {
    fds.delete(db)
    close(fd, ignore) // on a dead mount close itself fails (ENOTCONN): nothing is left to release then
  }
  const dropAll = (): void => {
    clearTimeout(idle)
    idle = undefined
    for (const [db, fd] of fds) drop(db, fd)
  }
  // One timer for all kept fds, re-armed for what remains of the idle time:
  // a read costs a clock read, not a timer.
  const checkIdle = (): void => {
    const unused = performance.now() - lastUse
    if (unused >= IDLE_MS) return dropAll()
    idle = setTimeout(checkIdle, IDLE_MS - unused)
    idle.unref()
  }
  const readKept = (db: string): string | undefined => {
    lastUse = performance.now()
    let fd = fds.get(db)
    if (fd === undefined) {
      try {
        fd = openSync(posPath(db), 'r')
      } catch {
        return undefined // no database yet: tried again on the next read
      }
      fds.set(db, fd)
      if (idle === undefined) {
        idle = setTimeout(checkIdle, IDLE_MS)
        idle.unref()
      }
    }
    try {
      return buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0))
    } catch {
      // ENOTCONN, EBADF, EIO: this fd belongs to a mount that is gone. The truth,
      // if there is one, is a fresh open away.
      drop(db, fd)
      return readFresh(posPath(db))
    }
  }
  const parseLag = (content: string | undefined): number | undefined => {
    const m = LAG.exec(content ?? '')
    return m === null ? undefined : Math.max(0, Number(m[1]))
  }
  return {
    readPosition: db => {
      const content = keeping ? readKept(db) : readFresh(posPath(db))
      return content === undefined ? undefined : parsePos(content)
    },
    readPrimary: () => hostname(readFresh(primaryPath)),
    readLag: () => parseLag(readFresh(lagPath)),
    live: () => readFresh(lagPath) !== undefined,
    databases: () => {
      let names: string[] = []
      try {
        names = readdirSync(mount)
      } catch {} // gone, or not a directory: no database to name
      return names.filter(n => n.endsWith('-pos')).map(n => n.slice(0, -4))
    },
    keep: on => {
      keeping = on
      if (!on) dropAll()
    }
  }
}
