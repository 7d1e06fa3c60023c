// Where a replica sends a write: the primary's app, from the lease hostname
// LiteFS names it by (DESIGN §2: LiteFS never says the primary's app URL).
// `primaryUrl` is a template (`{hostname}`, `{port}` = this server's port), a
// plain URL (a static primary: that URL whatever its hostname), or a function
// of the hostname. Only the origin counts: a forwarded request keeps its own
// path. Checking the option's type is options.ts's.

export type PrimaryOrigin = (hostname: string, port: number) => string

const fill = (template: string, hostname: string, port: number): string =>
  template.replaceAll('{hostname}', hostname).replaceAll('{port}', String(port))

const isHttp = (url: string): boolean => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)

/** A `primaryUrl` that has no URL for a primary: its message names the primary and why. */
export class NoPrimaryUrl extends Error {}

/** Why `primaryUrl` gave no URL for `primary`, in words: ours (NoPrimaryUrl), or what the app's function threw. */
export function noUrlReason (err: unknown, primary: string): string {
  if (err instanceof NoPrimaryUrl) return err.message
  return `primaryUrl threw for the primary "${primary}": ${err instanceof Error ? err.message : String(err)}`
}

/** What a primaryUrl function returned, in words. */
function returned (url: unknown): string {
  if (typeof url === 'string') return JSON.stringify(url)
  if (url instanceof Promise) return 'a promise'
  return String(url)
}

/** The primary's origin for a hostname and this server's port; undefined when `raw` is none of the three forms. */
export function primaryOriginOf (raw: unknown): PrimaryOrigin | undefined {
  if (typeof raw === 'function') {
    return (hostname: string) => {
      // A map lookup (`host => urls[host]`) misses for a node nobody added: say that, not "Invalid URL".
      const url: unknown = raw(hostname)
      // Parsed once: this runs for every forwarded write.
      const parsed = typeof url === 'string' && URL.canParse(url) ? new URL(url) : undefined
      if (parsed === undefined || !/^https?:$/.test(parsed.protocol)) throw new NoPrimaryUrl(`primaryUrl returned ${returned(url)} for the primary "${hostname}", not its app URL (http or https)${url instanceof Promise ? ' itself' : ''}`)
      return parsed.origin
    }
  }
  const template = raw ?? 'http://{hostname}:{port}'
  if (typeof template !== 'string' || !isHttp(fill(template, 'node-a', 8080))) return undefined
  // One origin per primary and port: computed once, not once per forwarded request.
  const cache = new Map<string, string>()
  return (hostname: string, port: number) => {
    const key = `${hostname}:${port}`
    let origin = cache.get(key)
    if (origin === undefined) {
      origin = new URL(fill(template, hostname, port)).origin
      cache.set(key, origin)
    }
    return origin
  }
}
