// A primaryUrl function that has no URL for the primary LiteFS names — the
// README's map form `host => ({ … })[host]` missing a node, a typo returning
// '', a non-http URL, an async function, one that throws — in every flavour:
// a write on the replica is answered at once 503 LITEFS_NO_PRIMARY (one-line
// JSON, nothing applied), the misconfiguration is said once
// (LITEFS_PRIMARY_UNRESOLVED, naming what the function returned), a held read
// is still answered (its question to the primary has nobody to ask), and
// nothing crashes. Was: an unlogged 500 LITEFS_INTERNAL, and a crash when a
// held read's probe asked for the URL.
import t from 'tap'
import { request } from 'undici'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'

const routes = (): Record<string, Handler> => ({
  'GET /items': (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{}') },
  'POST /items': (req, res) => {
    const done = (): void => { res.writeHead(201).end('{}') }
    if (req.readableEnded) done() // a framework read it already
    else req.resume().on('end', done)
  }
})

const CASES: Array<[string, (host: string) => unknown, RegExp]> = [
  ['a map missing the node', host => ({ 'node-z': 'http://127.0.0.1:1' } as Record<string, string>)[host], /^primaryUrl returned undefined for the primary "node-a", not its app URL \(http or https\)/],
  ['an empty string', () => '', /^primaryUrl returned "" for the primary "node-a", not its app URL/],
  ['a URL that is not http(s)', () => 'ftp://node-a:21', /^primaryUrl returned "ftp:\/\/node-a:21" for the primary "node-a"/],
  ['an async function', async () => 'http://127.0.0.1:1', /^primaryUrl returned a promise for the primary "node-a", not its app URL \(http or https\) itself/],
  ['a function that throws', host => { throw new Error(`no entry for ${host}`) }, /^primaryUrl threw for the primary "node-a": no entry for node-a/],
  ['a function that throws a string', () => { throw 'nope' }, /^primaryUrl threw for the primary "node-a": nope/] // eslint-disable-line no-throw-literal
]

for (const flavour of FLAVOURS) {
  for (const [what, primaryUrl, said] of CASES) {
    t.test(`${flavour}: primaryUrl as ${what}`, async t => {
      const warned: string[] = []
      const onWarning = (w: Error & { code?: string }): void => { if (w.name === 'LitefsProxyWarning') warned.push(`${w.code as string} ${w.message}`) }
      process.on('warning', onWarning)
      t.teardown(() => { process.off('warning', onWarning) })
      // Fixed at the end (the map gets its node): the first forward that gets through clears the warning.
      let fixed: string | undefined
      // Express and node:http: the app's logger shows warn lines (said there); Fastify's is silent here (a process warning).
      const logger = { debug () {}, info () {}, warn (o: { code?: string }, m: string) { warned.push(`${o.code as string} ${m}`) }, error () {} }
      const { primary, replica } = await pair(t, flavour, { routes, replica: { primaryUrl: (host: string) => fixed ?? primaryUrl(host), readTimeout: 300 }, framework: flavour === 'fastify' ? {} : { logger } })
      await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
      for (let i = 0; i < 2; i++) {
        const res = await request(`${replica.url}/items`, { method: 'POST', body: '{}' })
        const text = await res.body.text()
        t.equal(res.statusCode, 503)
        t.equal(text.split('\n').length, 1, 'one line')
        const body = JSON.parse(text) as { code: string, error: string }
        t.equal(body.code, 'LITEFS_NO_PRIMARY')
        t.match(body.error, said)
        t.match(body.error, /nothing was applied$/)
      }
      t.same(primary.hits, [], 'nothing reached the primary')
      const saidLines = flavour === 'serve'
        ? replica.lines.filter(l => l.includes('LITEFS_PRIMARY_UNRESOLVED')).map(l => (JSON.parse(l) as { msg: string }).msg)
        : warned.filter(w => w.startsWith('LITEFS_PRIMARY_UNRESOLVED ')).map(w => w.slice('LITEFS_PRIMARY_UNRESOLVED '.length))
      t.equal(saidLines.length, 1, 'said once')
      t.match(saidLines[0]?.replace(/^litefs-proxy: /, ''), said)
      t.match(saidLines[0], /: writes on this replica are answered 503 LITEFS_NO_PRIMARY until it gives one$/)
      // A read held for a token ahead: the probe has no primary to ask; the read times out as any would.
      const held = await request(`${replica.url}/items`, { headers: { 'litefs-txid': '00000000000000ff' } })
      await held.body.dump()
      t.equal(held.statusCode, 504, 'answered, nothing crashed')
      fixed = primary.url
      const through = await request(`${replica.url}/items`, { method: 'POST', body: '{}' })
      await through.body.dump()
      t.equal(through.statusCode, 201, 'fixed: forwarded')
      t.same(primary.hits, ['POST /items'])
    })
  }
}
