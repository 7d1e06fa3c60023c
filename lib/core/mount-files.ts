import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { parsePos } from './txid.js'

// The files LiteFS's FUSE mount keeps beside each database. fs.watch sees nothing
// on them (LiteFS changes them without inotify events), so they are read on demand.
// Reads are synchronous into one reused buffer: open, read, close — three system
// calls and no allocation, where readFileSync makes four and the promise API four
// thread-pool round trips. The files are tens of bytes that LiteFS answers from
// memory; they are read only on writes, health checks, and while requests wait.

/** `.primary`: the primary's hostname on a connected replica; absent on the primary and on a disconnected replica. */
export interface MountFiles {
  readPosition: (db: string) => bigint | undefined
  /** The hostname in `.primary`, or undefined when the file is absent. */
  readPrimary: () => string | undefined
  /** `.lag` (`%+010d\n`, milliseconds), or undefined when absent or malformed. */
  readLag: () => number | undefined
}

const buffer = Buffer.allocUnsafe(4096) // a hostname is at most 253 bytes; -pos is 34, .lag 12

function read (path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined // absent (no database yet, mount gone): "unknown", never an error
  }
  try {
    return buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0))
  } finally {
    closeSync(fd)
  }
}

function hostname (content: string | undefined): string | undefined {
  const h = content?.trim()
  return h === undefined || h === '' ? undefined : h
}

const LAG = /^([+-]\d+)\n?$/

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
  return {
    readPosition: db => {
      const content = read(posPath(db))
      return content === undefined ? undefined : parsePos(content)
    },
    readPrimary: () => hostname(read(primaryPath)),
    readLag: () => {
      const m = LAG.exec(read(lagPath) ?? '')
      return m === null ? undefined : Math.max(0, Number(m[1]))
    }
  }
}
