import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'

/**
 * Add a header just before the response head goes out, whoever sends it: the
 * framework's send path, `writeHead` called by the app (any of its forms), a
 * hijacked or raw reply, or the implicit head of a first `write`/`end`/
 * `flushHeaders` (Node sends those through `writeHead` too). `value` is called
 * once, at that moment — for the TXID cookie, after the handler committed, so
 * the position read then includes its write; undefined adds nothing. The value
 * is appended to what the app gives for the same name (its own cookies stay).
 */
export function appendOnHead (res: ServerResponse, name: string, value: () => string | undefined): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    res.writeHead = writeHead
    const v = value()
    if (v !== undefined) {
      // Headers passed to writeHead replace those set before: put ours where they will survive.
      const given = [args[1], args[2]].find(a => typeof a === 'object' && a !== null) as OutgoingHttpHeaders | string[] | undefined
      const key = given === undefined || Array.isArray(given) ? undefined : Object.keys(given).find(k => k.toLowerCase() === name)
      if (Array.isArray(given)) {
        // A raw [name, value, …] list: with headers set before (Express's
        // X-Powered-By), Node applies it with setHeader, so a repeated name keeps
        // only its last value. Join ours to the app's own entry.
        let at = -1
        for (let i = 0; i < given.length; i += 2) if (given[i].toLowerCase() === name) at = i
        if (at === -1) given.push(name, v)
        else (given as unknown[])[at + 1] = ([] as string[]).concat(given[at + 1], v)
      } else if (given !== undefined && key !== undefined) {
        given[key] = ([] as string[]).concat(given[key] as string | string[], v)
      } else {
        res.appendHeader(name, v)
      }
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}

/** The TXID cookie on the head (see appendOnHead). */
export function cookieOnHead (res: ServerResponse, cookie: () => string | undefined): void {
  appendOnHead(res, 'set-cookie', cookie)
}
