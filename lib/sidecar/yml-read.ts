import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'

// Reading an existing litefs.yml for `serve --config` (settings.ts): its
// proxy: section under the flags' names, fuse.dir, http.addr, a consul lease.
// LiteFS v0.5.14's reading (cmd/litefs/config.go): environment variables
// expanded in the text first.

/** A bad flag or config value: one line, exit code 2. */
export class UsageError extends Error {}

export type Kind = 'string' | 'list' | 'duration' | 'bool' | 'bytes'
/** A flag's kind and its key in litefs.yml's `proxy:` section, if it has one. */
export interface FlagKind { kind: Kind, yaml?: string }

/** Flags as given: a string, a repeated flag's strings, a bare flag. */
export interface Raw { [name: string]: string | string[] | boolean | undefined }

/** `${NAME}` and `$NAME` from the environment, as LiteFS expands its config. */
function expand (text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => env[a ?? b as string] ?? '')
}

/** A consul lease in a litefs.yml, as the fence needs it (hostname: lease.hostname). */
export interface YmlConsul { url?: string, key?: string, lockDelay?: string, hostname?: string }

/** What litefs-proxy takes from a litefs.yml: the proxy: section, fuse.dir, http.addr, a consul lease. */
export function readLitefsYml (path: string, env: NodeJS.ProcessEnv, flags: Readonly<Record<string, FlagKind>>): { proxy: Raw, mount?: string, api?: string, consul?: YmlConsul } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`)
  }
  let doc: any
  try {
    doc = parseYaml(expand(text, env))
  } catch (err) {
    throw new UsageError(`--config ${path}: not valid YAML (${(err as Error).message.split('\n')[0]})`)
  }
  if (typeof doc !== 'object' || doc === null) throw new UsageError(`--config ${path}: not a litefs.yml (no mapping at the top)`)
  const section: unknown = doc.proxy ?? {}
  if (typeof section !== 'object' || section === null || Array.isArray(section)) throw new UsageError(`--config ${path}: proxy: must be a mapping`)
  const proxy: Raw = {}
  const byYaml = new Map(Object.entries(flags).filter(([, f]) => f.yaml !== undefined).map(([name, f]) => [f.yaml as string, [name, f] as const]))
  for (const [key, value] of Object.entries(section)) {
    const known = byYaml.get(key)
    if (known === undefined) throw new UsageError(`--config ${path}: unknown key proxy.${key}`)
    const [name, flag] = known
    if (flag.kind === 'list') {
      if (!Array.isArray(value) || !value.every(v => typeof v === 'string')) throw new UsageError(`--config ${path}: proxy.${key} must be a list of strings`)
      proxy[name] = value
    } else if (flag.kind === 'bool') {
      if (typeof value !== 'boolean') throw new UsageError(`--config ${path}: proxy.${key} must be true or false`)
      proxy[name] = value
    } else {
      proxy[name] = String(value)
    }
  }
  const mount = typeof doc.fuse?.dir === 'string' ? doc.fuse.dir : undefined
  const addr = typeof doc.http?.addr === 'string' ? doc.http.addr : undefined
  let api: string | undefined
  if (addr !== undefined) {
    const m = /^(.*):(\d+)$/.exec(addr)
    if (m === null) throw new UsageError(`--config ${path}: http.addr ${JSON.stringify(addr)} is not host:port`)
    const host = m[1] === '' || m[1] === '0.0.0.0' || m[1] === '[::]' ? 'localhost' : m[1]
    api = `http://${host}:${m[2]}`
  }
  const lease = doc.lease
  let consul: YmlConsul | undefined
  if (typeof lease === 'object' && lease !== null && lease.type === 'consul') {
    const c = typeof lease.consul === 'object' && lease.consul !== null ? lease.consul : {}
    const text = (v: unknown): string | undefined => v === undefined || v === null ? undefined : String(v)
    consul = { url: text(c.url), key: text(c.key), lockDelay: text(c['lock-delay']), hostname: text(lease.hostname) }
  }
  return { proxy, mount, api, consul }
}
