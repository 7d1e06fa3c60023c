import t from 'tap'
import { resolveOptions, LitefsOptionsError } from '../lib/core/options.js'
import { NodeState } from '../lib/core/node-state.js'
import { OWN_HEADERS } from '../lib/core/own-headers.js'

t.test('defaults follow LiteFS and DESIGN §3', async t => {
  const o = resolveOptions({ db: 'app.db' })
  t.equal(o.mount, '/litefs')
  t.equal(o.api, 'http://localhost:20202')
  t.equal(o.role, undefined)
  t.equal(o.readTimeout, 5000)
  t.equal(o.primaryRedirectTimeout, 5000)
  t.equal(o.maxLag, 10_000)
  t.equal(o.healthPath, '/litefs/health')
  t.same(o.cookie, { name: 'litefs-txid', maxAge: 300, secrets: [] })
  t.equal(o.pollInterval, 1)
  t.equal(o.passthrough.matches('/x'), false)
})

t.test('every option is read', async t => {
  const state = new NodeState({ readPosition: () => undefined, readLag: () => undefined })
  const o = resolveOptions({
    db: 'data.db',
    mount: '/mnt/litefs',
    api: false,
    role: 'primary',
    state,
    passthrough: ['/static/*', /^\/assets\//],
    alwaysForward: ['/oauth/*'],
    readTimeout: '2s',
    primaryRedirectTimeout: 1500,
    maxLag: '0',
    healthPath: false,
    cookieName: '__txid',
    cookieMaxAge: '1m',
    secret: 'a-secret-of-16-chars',
    pollInterval: '5ms'
  })
  t.equal(o.db, 'data.db')
  t.equal(o.api, false)
  t.equal(o.role, 'primary')
  t.equal(o.state, state)
  t.ok(o.passthrough.matches('/assets/x.css'))
  t.ok(o.alwaysForward.matches('/oauth/cb'))
  t.equal(o.forwardBodyLimit, Infinity, 'no forwarding limit unless asked')
  t.equal(o.readTimeout, 2000)
  t.equal(o.primaryRedirectTimeout, 1500)
  t.equal(o.maxLag, 0)
  t.equal(o.healthPath, false)
  t.same(o.cookie, { name: '__txid', maxAge: 60, secrets: ['a-secret-of-16-chars'] })
  t.equal(o.pollInterval, 5)
  t.same(resolveOptions({ db: 'a', secret: ['0123456789abcdef', 'fedcba9876543210'] }).cookie.secrets, ['0123456789abcdef', 'fedcba9876543210'])
  t.equal(resolveOptions({ db: 'a', api: 'https://litefs.internal:20202' }).api, 'https://litefs.internal:20202')
  const d = resolveOptions({ db: 'a' })
  t.equal(d.primaryOrigin('node-a', 8080), 'http://node-a:8080', 'default: the hostname and this server\'s port')
  t.equal(d.primaryOrigin('node-a', 8080), 'http://node-a:8080', 'cached')
  t.equal(d.forward, 'http')
  t.equal(d.forwardTimeout, 30_000)
  t.equal(d.readTimeoutAction, 'error')
  t.equal(d.tokenHeader, 'litefs-txid', 'the token header, on by default')
  t.equal(resolveOptions({ db: 'a', tokenHeader: 'X-Token' }).tokenHeader, 'x-token', 'lowercase, as Node keys headers')
  t.equal(resolveOptions({ db: 'a', tokenHeader: false }).tokenHeader, false)
  const k8s = resolveOptions({ db: 'a', primaryUrl: 'https://{hostname}.app.default.svc:{port}/ignored/path' })
  t.equal(k8s.primaryOrigin('app-0', 3000), 'https://app-0.app.default.svc:3000')
  const fn = resolveOptions({ db: 'a', primaryUrl: (h: string) => `http://10.0.0.${h.slice(-1)}:80/x` })
  t.equal(fn.primaryOrigin('node-3', 1), 'http://10.0.0.3', 'a function; the origin is kept')
  // The README's map, `host => ({ 'node-1': … })[host]`, for a node it does not name: the error says so.
  const map = resolveOptions({ db: 'a', primaryUrl: (h: string) => ({ 'node-1': 'http://10.0.0.1:8080' } as Record<string, string>)[h] })
  t.throws(() => map.primaryOrigin('node-9', 1), /^primaryUrl returned undefined for the primary "node-9", not its app URL \(http or https\)$/)
  t.throws(() => resolveOptions({ db: 'a', primaryUrl: () => 'ftp://x' }).primaryOrigin('node-9', 1), /primaryUrl returned "ftp:\/\/x" for the primary "node-9"/)
  // A static primary's own URL, the first thing a user with one fixed primary writes (issue 23).
  const fixed = resolveOptions({ db: 'a', primaryUrl: 'http://127.0.0.1:8081' })
  t.equal(fixed.primaryOrigin('node-a', 8080), 'http://127.0.0.1:8081', 'a plain URL: the primary is there, whatever its hostname')
  t.equal(fixed.primaryOrigin('node-b', 9090), 'http://127.0.0.1:8081')
  const samePort = resolveOptions({ db: 'a', primaryUrl: 'http://10.0.0.1:{port}' })
  t.equal(samePort.primaryOrigin('node-b', 9090), 'http://10.0.0.1:9090', '{port} without {hostname}')
  process.env.FLY_APP_NAME = 'my-app'
  t.equal(resolveOptions({ db: 'a' }).forward, 'fly-replay', 'on Fly.io, replay by default')
  t.equal(resolveOptions({ db: 'a', forward: 'http' }).forward, 'http')
  delete process.env.FLY_APP_NAME
})

t.test('bad options throw, naming the option and what it expected', async t => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /"options" must be an object, got null/],
    ['app.db', /"options" must be an object, got "app.db"/],
    [['app.db'], /"options" must be an object, got \["app.db"\]/],
    [{}, /"db" is missing: the database file name/],
    [{ db: '' }, /"db" must be a database file name inside the mount \(e\.g\. "app\.db"\), a list of up to 16 of them, or "\*" for every database in the mount.*got ""/],
    [{ db: 'dir/app.db' }, /"db"/],
    [{ db: 'a', mount: '' }, /"mount" must be a directory path, got ""/],
    [{ db: 'a', api: 'localhost:20202' }, /"api" must be an http\(s\) URL/],
    [{ db: 'a', api: true }, /"api"/],
    [{ db: 'a', api: false, role: 'leader' }, /"role" must be "primary" or "replica", got "leader"/],
    [{ db: 'a', role: 'primary' }, /"role" applies only with api: false/],
    [{ db: 'a', state: {} }, /"state" must be a NodeState/],
    [{ db: 'a', state: 'x' }, /"state"/],
    [{ db: 'a', passthrough: '/static/*' }, /"passthrough" must be an array of path globs/],
    [{ db: 'a', alwaysForward: ['oauth'] }, /"alwaysForward"/],
    [{ db: 'a', alwaysForward: ['/a?b'] }, /"alwaysForward" must be an array of path globs starting with "\/" \(without "\?" or "#": the query is not compared\) or RegExps, got \["\/a\?b"\]/],
    [{ db: 'a', passthrough: ['/x#frag'] }, /"passthrough"/],
    [{ db: 'a', readTimeout: 0 }, /"readTimeout" must be a positive duration/],
    [{ db: 'a', readTimeout: 'soon' }, /got "soon"/],
    // A timer past 2^31 − 1 ms fires after 1 ms, warning each time: refused, each option that becomes one.
    [{ db: 'a', readTimeout: '720h' }, /^litefs-proxy: option "readTimeout" must be a duration at most 24\.8 days \(2147483647 ms, the longest timer Node keeps\), got "720h"$/],
    [{ db: 'a', readTimeout: 3e9 }, /"readTimeout" must be a duration at most 24\.8 days .*, got 3000000000$/],
    [{ db: 'a', primaryRedirectTimeout: '600h' }, /"primaryRedirectTimeout" must be a duration at most 24\.8 days/],
    [{ db: 'a', forwardTimeout: 2 ** 31 }, /"forwardTimeout" must be a duration at most 24\.8 days/],
    [{ db: 'a', pollInterval: '1000h' }, /"pollInterval" must be a duration at most 24\.8 days/],
    [{ db: 'a', durabilityTimeout: '720h' }, /"durabilityTimeout" must be a duration at most 24\.8 days/],
    [{ db: 'a', consul: { url: 'http://c:1', key: 'k', lockDelay: '720h' } }, /"consul\.lockDelay" must be a duration at most 24\.8 days/],
    [{ db: 'a', maxLag: -1 }, /"maxLag" must be a duration.*got -1/],
    [{ db: 'a', primaryRedirectTimeout: {} }, /got \{\}/],
    [{ db: 'a', healthPath: 'health' }, /"healthPath"/],
    [{ db: 'a', healthPath: '/litefs/health?x' }, /"healthPath" must be a path starting with "\/" \(no query, fragment or space\) or false, got "\/litefs\/health\?x"/],
    [{ db: 'a', healthPath: '/health#top' }, /"healthPath"/],
    [{ db: 'a', healthPath: '/health check' }, /"healthPath"/],
    [{ db: 'a', cookieName: 'bad name' }, /"cookieName"/],
    [{ db: 'a', tokenHeader: 'bad header' }, /"tokenHeader" must be a header name .* or false, got "bad header"/],
    [{ db: 'a', tokenHeader: true }, /"tokenHeader"/],
    [{ db: 'a', tokenHeader: 'Content-Type' }, /"tokenHeader" must be a header name of its own .*, got "Content-Type"/],
    [{ db: 'a', tokenHeader: 'set-cookie' }, /"tokenHeader" must be a header name of its own/],
    [{ db: 'a', tokenHeader: 'content-length' }, /"tokenHeader" must be a header name of its own/],
    [{ db: 'a', tokenHeader: 'cookie' }, /"tokenHeader" must be a header name of its own/],
    [{ db: 'a', tokenHeader: 'Access-Control-Expose-Headers' }, /"tokenHeader" must be a header name of its own/],
    [{ db: 'a', tokenHeader: 'litefs-forwarded' }, /"tokenHeader" must be a header name of its own/],
    [{ db: 'a', tokenHeader: 'LiteFS-Stale' }, /"tokenHeader" must be a header name of its own .*, got "LiteFS-Stale"/], // litefs-proxy's own (own-headers.ts)
    [{ db: 'a', tokenHeader: 'litefs-peer' }, /"tokenHeader" must be a header name of its own .*, got "litefs-peer"/], // litefs-proxy's own (own-headers.ts)
    [{ db: 'a', tokenHeader: 'litefs-proxy-reach' }, /"tokenHeader" must be a header name of its own .*, got "litefs-proxy-reach"/], // litefs-proxy's own (own-headers.ts)
    [{ db: 'a', tokenHeader: 'litefs-proxy-probe' }, /"tokenHeader" must be a header name of its own .*, got "litefs-proxy-probe"/], // litefs-proxy's own (own-headers.ts)
    [{ db: 'a', tokenHeader: 'litefs-forward-budget' }, /"tokenHeader" must be a header name of its own .*, got "litefs-forward-budget"/], // litefs-proxy's own (own-headers.ts)
    [{ db: 'a', tokenHeader: 'litefs-proxy-closing' }, /"tokenHeader" must be a header name of its own .*, got "litefs-proxy-closing"/], // litefs-proxy's own (own-headers.ts)
    [{ db: 'a', secret: 'short' }, /"secret" must be a string of at least 16 characters, or an array of them, got a string of 5 characters$/],
    [{ db: 'a', secret: ['0123456789abcdef', 'hunter2'] }, /got \[a string of 16 characters, a string of 7 characters\]$/],
    [{ db: 'a', secret: 5 }, /"secret"/],
    [{ db: 'a', secret: [] }, /"secret" must be a string of at least 16 characters, or an array of them, got \[\]$/], // signed nothing, silently
    [{ db: 'a', peerSecret: [] }, /"peerSecret" must be a string of at least 16 characters, or an array of them, got "an array of 0"$/], // no reports, silently
    [{ db: 'a', pollInterval: 0 }, /"pollInterval"/],
    [{ db: 'a', dbName: 'x' }, /unknown option "dbName"/],
    [{ db: 'a', forward: 'proxy' }, /"forward" must be "http" or "fly-replay", got "proxy"/],
    [{ db: 'a', readTimeoutAction: 'retry' }, /"readTimeoutAction" must be "error" or "primary" or "stale"/],
    [{ db: 'a', primaryUrl: 'ftp://{hostname}' }, /"primaryUrl" must be an http\(s\) URL: a template with "\{hostname\}" \(and "\{port\}"\), the primary's own URL, or a function/],
    [{ db: 'a', primaryUrl: '{hostname}' }, /"primaryUrl"/],
    [{ db: 'a', primaryUrl: 'http://{host}:{port}' }, /"primaryUrl" must be a URL whose placeholders are "\{hostname\}" and "\{port\}" \(not "\{host\}"\), got "http:\/\/\{host\}:\{port\}"/],
    [{ db: 'a', primaryUrl: 'http://{HOSTNAME}:8080' }, /\(not "\{HOSTNAME\}"\)/],
    [{ db: 'a', primaryUrl: 'http://{hostname}:{port}/{path}' }, /\(not "\{path\}"\)/],
    [{ db: 'a', primaryUrl: 8080 }, /"primaryUrl".*got 8080/],
    [{ db: 'a', forwardTimeout: 0 }, /"forwardTimeout"/]
  ]
  for (const [input, message] of cases) {
    t.throws(() => resolveOptions(input), message, `${JSON.stringify(input)}`)
  }
  const err = (() => { try { resolveOptions({}) } catch (e) { return e } })()
  t.type(err, LitefsOptionsError)
  t.equal((err as LitefsOptionsError).code, 'LITEFS_BAD_OPTION')
  t.throws(() => resolveOptions({ db: 'a', state: { waitForPosition: 1 } }), /"state"/)
  t.throws(() => resolveOptions({ db: 'a', readTimeout: () => 1 }), /got \(\) => 1/)
  const circular: Record<string, unknown> = {}
  circular.self = circular
  t.throws(() => resolveOptions({ db: 'a', maxLag: circular }), /got \[object Object\]/)
  // Never timers: past 24.8 days is fine (a lag compared, a cookie's Max-Age sent).
  const long = resolveOptions({ db: 'a', maxLag: '720h', cookieMaxAge: '9000h', readTimeout: 2 ** 31 - 1 })
  t.equal(long.maxLag, 720 * 3_600_000)
  t.equal(long.cookie.maxAge, 9000 * 3600)
  t.equal(long.readTimeout, 2 ** 31 - 1, 'the longest timer itself is taken')
  // A Max-Age under a second is Max-Age=0: the cookie deleted as it arrives (300 meant as LiteFS's seconds is 300 ms).
  for (const short of [300, 1, 999, '100ms', '0.5s']) {
    t.throws(() => resolveOptions({ db: 'a', cookieMaxAge: short }), { code: 'LITEFS_BAD_OPTION', message: /option "cookieMaxAge" must be a duration of at least 1 s \(a Max-Age of 0 deletes the cookie; a number is milliseconds: 300000 or "5m" for five minutes\), got/ }, `refused: ${String(short)}`)
  }
  t.equal(resolveOptions({ db: 'a', cookieMaxAge: 1000 }).cookie.maxAge, 1, 'one second is the shortest')
  t.equal(resolveOptions({ db: 'a', cookieMaxAge: '1500ms' }).cookie.maxAge, 2, 'rounded to whole seconds')
})

t.test('every header litefs-proxy gives a meaning is refused as tokenHeader (own-headers.ts: one list, so a new one is refused too)', async t => {
  t.ok(OWN_HEADERS.length >= 7)
  for (const name of OWN_HEADERS) {
    t.throws(() => resolveOptions({ db: 'a', tokenHeader: name }), /"tokenHeader" must be a header name of its own .*litefs-proxy give a meaning/, name)
  }
})
