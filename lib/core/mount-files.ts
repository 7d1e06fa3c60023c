import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parsePos } from './txid.js'

// The files LiteFS's FUSE mount keeps beside each database. fs.watch sees nothing
// on them (LiteFS changes them without inotify events), so they are read on demand.

/** `.primary`: the primary's hostname on a connected replica; absent on the primary and on a disconnected replica. */
export interface MountFiles {
  readPosition: (db: string) => bigint | undefined
  readPositionAsync: (db: string) => Promise<bigint | undefined>
  /** The hostname in `.primary`, or undefined when the file is absent. */
  readPrimary: () => string | undefined
  readPrimaryAsync: () => Promise<string | undefined>
  /** `.lag` (`%+010d\n`, milliseconds), or undefined when absent or malformed. */
  readLag: () => number | undefined
}

function read (path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1')
  } catch {
    return undefined // absent (no database yet, mount gone): "unknown", never an error
  }
}

async function readAsync (path: string): Promise<string | undefined> {
  return await readFile(path, 'latin1').catch(() => undefined)
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
  const pos = (content: string | undefined): bigint | undefined =>
    content === undefined ? undefined : parsePos(content)
  return {
    readPosition: db => pos(read(posPath(db))),
    readPositionAsync: async db => pos(await readAsync(posPath(db))),
    readPrimary: () => hostname(read(primaryPath)),
    readPrimaryAsync: async () => hostname(await readAsync(primaryPath)),
    readLag: () => {
      const m = LAG.exec(read(lagPath) ?? '')
      return m === null ? undefined : Math.max(0, Number(m[1]))
    }
  }
}
