import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'

/**
 * Add a header just before the response head goes out, whoever sends it: the
 * framework's send path, `writeHead` called by the app (any of its forms), a
 * hijacked or raw reply, or the implicit head of a first `write`/`end`/
 * `flushHeaders` (Node sends those through `writeHead` too). `value` is called
 * once, at that moment (Server-Timing: the time measured by then); undefined
 * adds nothing. The value is appended to what the app gives for the same name.
 * The app's own header object or list is copied, never changed: it may be a
 * constant reused for every answer.
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
      const at = args.indexOf(given)
      if (Array.isArray(given)) {
        // A raw [name, value, …] list: with headers set before (Express's
        // X-Powered-By), Node applies it with setHeader, so a repeated name keeps
        // only its last value. Join ours to the app's own entry.
        const list: unknown[] = [...given]
        let i = -1
        for (let n = 0; n < list.length; n += 2) if ((list[n] as string).toLowerCase() === name) i = n
        if (i === -1) list.push(name, v)
        else list[i + 1] = ([] as unknown[]).concat(list[i + 1], v)
        args[at] = list
      } else if (given !== undefined && key !== undefined) {
        args[at] = { ...given, [key]: ([] as string[]).concat(given[key] as string | string[], v) }
      } else {
        res.appendHeader(name, v)
      }
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['writeHead']
}
