/**
 * FUSE mounts: whether something (live or dead) is mounted at a directory, and
 * removing it, gentlest way first, asynchronously (`unmountAll`) or, for the exit
 * hook, synchronously (`unmountAllSync`). Which mounts to remove, and when, is
 * decided by the node (`litefs-node.ts`) and the safety net (`safety-net.ts`).
 */
import { execFile, execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** /proc/self/mounts escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountField (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/** Whether something (live or dead) is mounted at `dir`; `dir` must be a realpath. */
export function isMounted (dir: string): boolean {
  let table: string
  try { table = readFileSync('/proc/self/mounts', 'utf8') } catch { return false }
  for (const line of table.split('\n')) {
    const mountPoint = line.split(' ')[1]
    if (mountPoint !== undefined && unescapeMountField(mountPoint) === dir) return true
  }
  return false
}

/**
 * The ways to remove a FUSE mount whose LiteFS has exited, gentlest first:
 * `-u` fails with "Device or resource busy" while an fd is open in it; lazy `-uz`
 * detaches it anyway (the open fds keep failing with ENOTCONN until closed);
 * `umount -l` is the root-only fallback when fusermount3 refuses.
 */
const UNMOUNTS: ReadonlyArray<readonly [string, (dir: string) => string[]]> = [
  ['fusermount3', (dir) => ['-u', dir]],
  ['fusermount3', (dir) => ['-uz', dir]],
  ['umount', (dir) => ['-l', dir]],
]

export function run (cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`))
      else resolvePromise()
    })
  })
}

/**
 * Unmounts `dir` until nothing is mounted there (mounts can stack). `note` hears
 * each command that worked and each that failed. Returns what failed, or
 * undefined when the mount is gone.
 */
export async function unmountAll (dir: string, note: (line: string) => void = () => {}): Promise<string | undefined> {
  const failures: string[] = []
  for (let round = 0; round < 4 && isMounted(dir); round++) {
    for (const [cmd, args] of UNMOUNTS) {
      try {
        await run(cmd, args(dir), 5_000)
        note(`[litefs-cluster] unmounted with ${cmd} ${args(dir).join(' ')}`)
        break
      } catch (err) {
        failures.push((err as Error).message)
        note(`[litefs-cluster] ${(err as Error).message}`)
      }
    }
  }
  return isMounted(dir) ? `could not unmount ${dir}: ${failures.join('; ') || 'still mounted'}` : undefined
}

export function unmountAllSync (dir: string): void {
  for (let round = 0; round < 4 && isMounted(dir); round++) {
    // Lazy first: in the exit hook the LiteFS may still be dying, and a lazy
    // unmount detaches even a live or busy mount.
    for (const [cmd, args] of [['fusermount3', ['-uz', dir]], ['umount', ['-l', dir]]] as const) {
      try {
        execFileSync(cmd, [...args], { stdio: 'ignore', timeout: 5_000 })
        break
      } catch {}
    }
  }
}
