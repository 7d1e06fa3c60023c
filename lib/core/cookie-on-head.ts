import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'

/**
 * Add the TXID cookie just before the response head goes out, whoever sends it:
 * the framework's send path, `writeHead` called by the app (any of its forms),
 * a hijacked or raw reply, or the implicit head of a first `write`/`end`/
 * `flushHeaders` (Node sends those through `writeHead` too). The handler has
 * committed by then, so the position read then includes its write. `cookie` is
 * called once, at that moment; undefined adds nothing.
 */
export function cookieOnHead (res: ServerResponse, cookie: () => string | undefined): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    res.writeHead = writeHead
    const value = cookie()
    if (value !== undefined) {
      // Headers passed to writeHead replace those set before: put ours where they will survive.
      const given = [args[1], args[2]].find(a => typeof a === 'object' && a !== null) as OutgoingHttpHeaders | string[] | undefined
      const key = given === undefined || Array.isArray(given) ? undefined : Object.keys(given).find(k => k.toLowerCase() === 'set-cookie')
      if (Array.isArray(given)) {
        // A raw [name, value, …] list: with headers set before (Express's
        // X-Powered-By), Node applies it with setHeader, so a repeated name keeps
        // only its last value. Join ours to the app's own cookie entry.
        let at = -1
        for (let i = 0; i < given.length; i += 2) if (given[i].toLowerCase() === 'set-cookie') at = i
        if (at === -1) given.push('set-cookie', value)
        else (given as unknown[])[at + 1] = ([] as string[]).concat(given[at + 1], value)
      } else if (given !== undefined && key !== undefined) {
        given[key] = ([] as string[]).concat(given[key] as string | string[], value)
      } else {
        res.appendHeader('set-cookie', value)
      }
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}
