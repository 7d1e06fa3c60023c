/**
 * Finding the litefs binary and checking that this host can mount FUSE: what a
 * test asks before it starts a cluster (`findLitefs()`, `fuseProblem()`), and the
 * file lookups (`isExecutable`, `whichSync`, `packageRoot`) other binaries'
 * finders reuse. Starting LiteFS is `litefs-node.ts`'s job.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'


/**
 * The litefs binary to use, as an absolute path, or undefined when none is found.
 * In order: env `LITEFS_BIN` (returned as given, even if it is not there, so a wrong
 * setting fails loudly instead of silently using another binary); `.cache/litefs/bin/litefs`
 * in the package root (where `scripts/install-litefs.sh` puts it), looked up from the
 * current directory and from this module's location; `litefs` on PATH; `~/go/bin/litefs`.
 */
export function findLitefs (): string | undefined {
  const fromEnv = process.env.LITEFS_BIN
  if (fromEnv) return resolve(fromEnv)
  // The package root is the nearest ancestor with a package.json. Under CommonJS
  // `__dirname` also finds the copy next to this module (ESM has no __dirname and
  // `import.meta` does not compile for the CJS build, so ESM relies on the cwd).
  const starts = [process.cwd()]
  if (typeof __dirname === 'string') starts.push(__dirname)
  for (const start of starts) {
    const root = packageRoot(start)
    const candidate = root && join(root, '.cache', 'litefs', 'bin', 'litefs')
    if (candidate && isExecutable(candidate)) return candidate
  }
  const onPath = whichSync('litefs')
  if (onPath) return onPath
  const goBin = join(homedir(), 'go', 'bin', 'litefs')
  return isExecutable(goBin) ? goBin : undefined
}

/**
 * Undefined when LiteFS can mount here; otherwise one line naming everything
 * missing, e.g. `/dev/fuse absent; fusermount3 missing (apt-get install fuse3)`.
 * Checks: Linux, /dev/fuse present and readable+writable, fusermount3 on PATH, root.
 */
export function fuseProblem (): string | undefined {
  if (process.platform !== 'linux') return `LiteFS needs Linux FUSE (this is ${process.platform})`
  const problems: string[] = []
  if (!existsSync('/dev/fuse')) problems.push('/dev/fuse absent')
  else {
    try { accessSync('/dev/fuse', constants.R_OK | constants.W_OK) } catch { problems.push('/dev/fuse not accessible (needs read+write)') }
  }
  if (!whichSync('fusermount3')) problems.push('fusermount3 missing (apt-get install fuse3)')
  // Root: LiteFS's mount and the harness's `umount -l` fallback for dead mounts need it.
  if (process.getuid?.() !== 0) problems.push('not root')
  return problems.length > 0 ? problems.join('; ') : undefined
}

export function packageRoot (from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return undefined
  }
}

export function isExecutable (file: string): boolean {
  try {
    return statSync(file).isFile() && (accessSync(file, constants.X_OK), true)
  } catch {
    return false
  }
}

export function whichSync (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return resolve(dir, name)
  }
  return undefined
}
