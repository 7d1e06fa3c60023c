/**
 * Is the LiteFS mount live, and is it the one the options name? Said once,
 * with its real cause (a wrong `mount`, a LiteFS not running yet, a LiteFS
 * that ran here and stopped, a `db` LiteFS does not have), and cleared when it
 * comes right. What to do with the answer (the state's LiteFS status, polling,
 * the stream) is litefs-node.ts's.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { MountFiles } from './mount-files.js'
import type { Warnings } from './warnings.js'

export class MountCheck {
  /** LiteFS answered here once, on its stream and its mount: the settings are right. */
  proven = false
  private warned = false

  /**
   * @param filesOnly `api: false`: the mount is all there is to go by
   * @param streaming whether LiteFS's event stream flows now
   */
  constructor (
    private readonly mount: string,
    private readonly filesOnly: boolean,
    private readonly files: MountFiles,
    private readonly warn: Warnings,
    private readonly streaming: () => boolean
  ) {}

  /**
   * Whether the mount is a live LiteFS mount; if not, say so, and why if it
   * can tell. `apiUp`: LiteFS's API answers, so the mount option itself is wrong.
   */
  live (apiUp: boolean): boolean {
    const mount = this.mount
    if (this.files.live()) {
      if (this.warned) this.warn.clear('LITEFS_MOUNT', mount, `${mount} is a live LiteFS mount again`)
      this.warned = false
      if (this.filesOnly) this.proven = true
      if (this.filesOnly || this.streaming()) this.warn.clear('LITEFS_STOPPED', mount, 'LiteFS on this node is back')
      return true
    }
    // Once LiteFS ran here with these settings, a dead mount is LiteFS stopping, not a wrong "mount".
    if (this.proven) {
      this.stopped(`its mount ${mount} does not answer`)
      return false
    }
    if (this.warned) return false
    this.warned = true
    const exists = existsSync(mount)
    this.warn.say('LITEFS_MOUNT', mount, !exists
      ? `the mount ${mount} does not exist: is "mount" LiteFS's fuse.dir? Writes wait and reads are held until it answers`
      : apiUp
        ? `LiteFS's API answers but ${mount} is not its mount (no .lag in it): set "mount" to LiteFS's fuse.dir. Writes wait and reads are held until it answers`
        : `${mount} is not a live LiteFS mount (no .lag in it): LiteFS is not running there (yet), or "mount" is not its fuse.dir; writes wait and reads are held until it answers`,
    { mount })
    return false
  }

  /**
   * LiteFS ran here with these settings and is gone now: said once, as what it
   * is (LiteFS stopping or restarting), never as a configuration hint.
   */
  stopped (how: string): void {
    this.warn.say('LITEFS_STOPPED', this.mount, `LiteFS on this node stopped or is restarting (${how}); writes wait until it is back`, { mount: this.mount })
  }

  /** A tracked database named like none LiteFS has, while it has others: a wrong `db` option, most likely. */
  databases (tracked: Iterable<string>): void {
    const names = this.files.databases()
    for (const db of tracked) {
      if (names.length === 0 || names.includes(db)) continue
      this.warn.say('LITEFS_DB', `${this.mount}/${db}`, `no database "${db}" under ${this.mount}, where LiteFS has ${names.map(n => `"${n}"`).join(', ')}: is "db" the file name your app opens?`, { db, databases: names })
    }
  }

  /**
   * A stat of `.lag` (an open file, even to look, can make an unmount under
   * way fail): whether the mount answers; a dead one is LiteFS gone, said once.
   */
  answers (when: string): boolean {
    if (existsSync(join(this.mount, '.lag'))) return true
    this.stopped(`its mount did not answer ${when}`)
    return false
  }
}
