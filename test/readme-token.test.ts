// README.md's "The token without cookies" runs as written: its API
// (`cors-api.mjs`, the built package, on a stand-in LiteFS) and its page script
// (`browser.mjs`) under a fetch that applies a browser's CORS rules — a
// request with a header of its own is preflighted, the preflight's answer must
// allow the origin, method and header, and a response header is readable only
// when the answer exposes it — so a missing CORS header in the README fails here.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { request } from 'undici'
import { FakeLitefs } from './helpers/fake-litefs.js'
import { builtPackageEnv } from './helpers/child-env.js'
import { root, snippet } from './helpers/readme-snippet.js'

type Test = typeof t


// A browser's fetch, as far as CORS goes (Fetch standard, "CORS-preflight fetch" and
// "CORS-safelisted response-header name"), over Node's own fetch. Each exchange is recorded.
const browserFetch = `
const PAGE = process.env.PAGE_ORIGIN
globalThis.API_ORIGIN = process.env.API_ORIGIN // where the page's script finds the API
const seen = []
const realFetch = globalThis.fetch
const SAFE_REQUEST = new Set(['accept', 'accept-language', 'content-language'])
const SAFE_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']
const SAFE_RESPONSE = new Set(['cache-control', 'content-language', 'content-length', 'content-type', 'expires', 'last-modified', 'pragma'])
const list = v => (v ?? '').split(',').map(s => s.trim().toLowerCase()).filter(Boolean)
function allowsOrigin (res) { return res.headers.get('access-control-allow-origin') === PAGE || res.headers.get('access-control-allow-origin') === '*' }
globalThis.fetch = async (url, init = {}) => {
  const method = (init.method ?? 'GET').toUpperCase()
  const headers = new Headers(init.headers)
  const own = [...headers.keys()].filter(k => !SAFE_REQUEST.has(k) && !(k === 'content-type' && SAFE_TYPES.includes(headers.get(k).split(';')[0].trim())))
  if (own.length > 0 || !['GET', 'HEAD', 'POST'].includes(method)) {
    const pre = await realFetch(url, { method: 'OPTIONS', headers: { origin: PAGE, 'access-control-request-method': method, 'access-control-request-headers': own.sort().join(',') } })
    seen.push({ preflight: true, status: pre.status, allowHeaders: pre.headers.get('access-control-allow-headers') })
    if (!pre.ok || !allowsOrigin(pre)) throw new TypeError('Failed to fetch (preflight refused)')
    const methods = list(pre.headers.get('access-control-allow-methods'))
    if (!['GET', 'HEAD', 'POST'].includes(method) && !methods.includes(method.toLowerCase())) throw new TypeError('Failed to fetch (method not allowed)')
    const allowed = list(pre.headers.get('access-control-allow-headers'))
    for (const h of own) if (!allowed.includes(h)) throw new TypeError('Failed to fetch (header ' + h + ' not allowed)')
  }
  headers.set('origin', PAGE)
  const res = await realFetch(url, { ...init, method, headers })
  if (!allowsOrigin(res)) throw new TypeError('Failed to fetch (origin not allowed)')
  const exposed = new Set([...SAFE_RESPONSE, ...list(res.headers.get('access-control-expose-headers'))])
  const visible = new Headers()
  for (const [k, v] of res.headers) if (exposed.has(k)) visible.append(k, v)
  seen.push({ method, sent: headers.get('litefs-txid'), status: res.status, token: res.headers.get('litefs-txid'), visibleToken: visible.get('litefs-txid') })
  const body = await res.arrayBuffer()
  return new Response(body, { status: res.status, headers: visible })
}
process.on('exit', () => { process.stderr.write('SEEN ' + JSON.stringify(seen) + '\\n') })
`

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)) })
  })
}

async function run (file: string, env: Record<string, string>, args: string[] = []): Promise<{ out: string, err: string, code: number | null }> {
  const child = spawn(process.execPath, [...args, file], { cwd: dir, env: { ...builtPackageEnv(), ...env } })
  let out = ''
  let err = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { err += b })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  return { out, err, code }
}

// Inside the package, so `litefs-proxy/http` resolves to the built package (self-reference).
const dir = join(root, '.cache', `readme-token-${process.pid}`)
mkdirSync(dir, { recursive: true })
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('the API and the page script, as the README has them', async t => {
  writeFileSync(join(dir, 'cors-api.mjs'), snippet('cors-api.mjs'))
  writeFileSync(join(dir, 'browser.mjs'), snippet('browser.mjs'))
  writeFileSync(join(dir, 'browser-fetch.mjs'), browserFetch)
  const page = async (api: string, site: string, role: 'primary' | 'replica' = 'primary'): Promise<{ out: string, err: string, code: number | null, seen: any[] }> => {
    const origin = await startApi(t, api, role)
    const r = await run('browser.mjs', { API_ORIGIN: origin, PAGE_ORIGIN: site }, ['--import', './browser-fetch.mjs'])
    return { ...r, seen: JSON.parse(/SEEN (.*)/.exec(r.err)?.[1] ?? '[]') }
  }

  const ok = await page('cors-api.mjs', 'https://app.example.com')
  t.equal(ok.code, 0, `the page's script ran: ${ok.err}`)
  t.match(ok.out, /\[ \{ id: 1, text: 'from the page' \} \]/, 'the page reads its own write')
  t.match(ok.seen, [
    { preflight: true, status: 204 }, // POST with content-type: application/json
    { method: 'POST', sent: null, status: 201, token: '0000000000000007', visibleToken: '0000000000000007' },
    { preflight: true, status: 204 }, // GET with litefs-txid
    { method: 'GET', sent: '0000000000000007', status: 200 }
  ], 'preflighted, the token read from the write and sent back with the read')

  const evil = await page('cors-api.mjs', 'https://evil.example')
  t.not(evil.code, 0, 'a page on an origin the API does not allow cannot call it: the rules are applied')
  t.match(evil.err, /Failed to fetch \(preflight refused\)/)

  // A write the API refuses: the page's script says so, and does not go on to read as if it had written.
  const post = "if (req.method === 'POST' && req.url === '/notes') {"
  t.ok(snippet('cors-api.mjs').includes(post), 'the API snippet has its POST route')
  writeFileSync(join(dir, 'refusing.mjs'), snippet('cors-api.mjs').replace(post, `${post} return res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"no primary","code":"LITEFS_NO_PRIMARY"}')`))
  const refused = await page('refusing.mjs', 'https://app.example.com')
  t.not(refused.code, 0, 'a failed write stops the page script')
  t.match(refused.err, /POST \/notes: 503 \{"error":"no primary","code":"LITEFS_NO_PRIMARY"\}/)
  t.notMatch(refused.out, /\[/, 'and it printed no notes')

  // litefs-proxy's own answer — a write on a replica whose primary cannot be reached, 503 after
  // primaryRedirectTimeout — carries the CORS headers set before the listener: the page reads it.
  const own = await page('cors-api.mjs', 'https://app.example.com', 'replica')
  t.not(own.code, 0)
  t.match(own.err, /POST \/notes: 503 \{"error":"the primary at http:\/\/node-a:\d+ could not be reached \(ENOTFOUND\)","code":"LITEFS_NO_PRIMARY"\}/, 'litefs-proxy\'s own 503, readable: not "Failed to fetch"')

  writeFileSync(join(dir, 'no-expose.mjs'), snippet('cors-api.mjs').replace(/^.*access-control-expose-headers.*\n/m, ''))
  const hidden = await page('no-expose.mjs', 'https://app.example.com')
  t.match(hidden.seen, [{ preflight: true }, { method: 'POST', token: '0000000000000007', visibleToken: null }, { method: 'GET', sent: null }],
    'without Access-Control-Expose-Headers the page cannot read the token, so it never sends it back')
})

async function startApi (t: Test, file: string, role: 'primary' | 'replica'): Promise<string> {
  const fake = await FakeLitefs.start({ role, primary: 'node-a', txid: 7n })
  t.teardown(async () => { await fake.close() })
  const db = new Database(join(fake.mount, 'app.db'))
  db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)')
  db.close()
  const port = await freePort()
  const api = spawn(process.execPath, [file], { cwd: dir, env: { ...builtPackageEnv(), LITEFS_MOUNT: fake.mount, LITEFS_API: fake.apiUrl, PORT: String(port), SITE_ORIGIN: 'https://app.example.com' } })
  let output = ''
  api.stderr.on('data', b => { output += b })
  t.teardown(async () => { if (api.exitCode === null) { api.kill('SIGTERM'); await new Promise(resolve => api.once('exit', resolve)) } })
  const origin = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (i > 400 || api.exitCode !== null) throw new Error(`the API never listened: ${output}`)
    try { await (await request(`${origin}/notes`)).body.dump(); return origin } catch { await new Promise(resolve => setTimeout(resolve, 25)) }
  }
}
