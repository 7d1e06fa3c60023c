import t from 'tap'
import { parseTxid, formatTxid, parsePos } from '../lib/core/txid.js'
import { parseDuration } from '../lib/core/duration.js'
import { compilePatterns, DECODED, normalizePath, originForm, pathOf, PathPatterns } from '../lib/core/path-match.js'
import { readTxidCookie, txidSetCookie, txidToken, type CookieSettings } from '../lib/core/cookie.js'

t.test('TXID codec', async t => {
  t.equal(parseTxid('0000000000000005'), 5n)
  t.equal(parseTxid('FFFFFFFFFFFFFFFF'), 0xffffffffffffffffn, 'the full unsigned 64-bit range, beyond 2^53')
  for (const bad of ['', '5', '000000000000005', '00000000000000005', 'ffffffffffffffff0', '000000000000000g', ' 000000000000005', '0x00000000000005']) {
    t.equal(parseTxid(bad), undefined, `rejects ${JSON.stringify(bad)}`)
  }
  // Every character beside the hex ranges, in each position (the two halves are read apart).
  for (const c of ['/', ':', '@', 'G', '`', 'g', ' ', '\u00e9', '\u0130', '\u0000']) {
    for (const at of [0, 7, 8, 15]) t.equal(parseTxid('0'.repeat(at) + c + '0'.repeat(15 - at)), undefined, `rejects ${JSON.stringify(c)} at ${at}`)
  }
  // The same value as BigInt's own hex parsing, across the range and in either case.
  let x = 0x9e3779b97f4a7c15n
  const differ: string[] = []
  for (let i = 0; i < 200; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn
    const v = i < 64 ? x >> BigInt(i) : x
    const hex = v.toString(16).padStart(16, '0')
    const text = i % 2 === 0 ? hex : hex.toUpperCase()
    if (parseTxid(text) !== BigInt('0x' + hex)) differ.push(text)
  }
  t.same(differ, [], '200 values, either case: as BigInt parses them')
  t.equal(parseTxid('00000000ffffffff'), 0xffffffffn)
  t.equal(parseTxid('0000000100000000'), 0x100000000n)
  t.equal(formatTxid(5n), '0000000000000005')
  t.equal(formatTxid(0xabcdef0123456789n), 'abcdef0123456789')
  for (const [v, hex] of [[0n, '0000000000000000'], [0x1fffffffffffffn, '001fffffffffffff'], [0x20000000000000n, '0020000000000000'], [0xffffffffffffffffn, 'ffffffffffffffff']] as const) t.equal(formatTxid(v), hex, `either side of 2^53: ${hex}`)
  t.equal(formatTxid(parseTxid('9007199254740993') as bigint), '9007199254740993', 'round trip past Number precision')
  t.equal(parsePos('0000000000000005/92605ba1fc098252\n'), 5n, 'the recorded -pos bytes')
  t.equal(parsePos('0000000000000005'), undefined)
  t.equal(parsePos('0000000000000005-92605ba1fc098252\n'), undefined)
  t.equal(parsePos('zzzzzzzzzzzzzzzz/92605ba1fc098252\n'), undefined)
})

t.test('durations', async t => {
  t.equal(parseDuration(250), 250)
  t.equal(parseDuration('5s'), 5000)
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('1.5s'), 1500)
  t.equal(parseDuration('2m'), 120_000)
  t.equal(parseDuration('1h'), 3_600_000)
  t.equal(parseDuration('40'), 40)
  t.equal(parseDuration('1m30s'), 90_000, "Go's compound form, as litefs.yml has it")
  t.equal(parseDuration('1h2m3.5s'), 3_723_500)
  t.equal(parseDuration('1500us'), 1.5)
  t.equal(parseDuration('2000000ns'), 2)
  for (const bad of [-1, Infinity, NaN, 'abc', '5 seconds', '', null, {}, '-5s']) {
    t.equal(parseDuration(bad), undefined, `rejects ${String(bad)}`)
  }
})

t.test('path patterns: LiteFS globs and RegExps', async t => {
  const m = compilePatterns(['/static/*', '/health', '/a*b', '/x.y(z)'])
  t.ok(m('/static/js/app.js'), '* spans slashes')
  t.ok(m('/static/'))
  t.ok(m('/health'))
  t.notOk(m('/healthz'), 'anchored on the whole path')
  t.notOk(m('/api/health'), 'anchored at the start')
  t.ok(m('/a/any/b'))
  t.ok(m('/x.y(z)'), 'regex characters in globs are literal')
  t.notOk(m('/xzy(z)'))
  const r = compilePatterns([/^\/oauth\//, /^\/CASE$/i, '/plain'])
  t.ok(r('/oauth/callback'))
  t.ok(r('/case'), 'a RegExp keeps its flags')
  t.ok(r('/plain'))
  t.notOk(r('/other'))
  const g = compilePatterns([/^\/g$/g])
  t.ok(g('/g'))
  t.ok(g('/g'), 'a global RegExp does not alternate through lastIndex')
  t.notOk(compilePatterns([])('/anything'))
  t.equal(pathOf('/a/b?x=1'), '/a/b')
  t.equal(pathOf('/a/b'), '/a/b')
  t.equal(pathOf('http://h:80/a/b?x=1'), '/a/b', 'absolute form: its path, as routers route it')
  t.equal(originForm('HTTP://h/a?x=1'), '/a?x=1')
  t.equal(originForm('http://h'), '/', 'no path: the root')
  t.equal(originForm('http://h?x=1'), '/?x=1')
  t.equal(originForm('*'), '*', 'the asterisk form is no path')
  t.equal(originForm('//h/a'), '//h/a', 'origin form that looks like an authority stays a path')
})

t.test('cookie codec', async t => {
  const plain: CookieSettings = { name: 'litefs-txid', maxAge: 300, secrets: [] }
  t.equal(readTxidCookie(plain, undefined), undefined)
  t.equal(readTxidCookie(plain, 'litefs-txid=0000000000000007'), 7n)
  t.equal(readTxidCookie(plain, 'a=1; litefs-txid=0000000000000007; b=2'), 7n)
  t.equal(readTxidCookie(plain, 'a=1;litefs-txid=0000000000000007'), 7n)
  t.equal(readTxidCookie(plain, 'xlitefs-txid=0000000000000007'), undefined, 'a longer name is another cookie')
  t.equal(readTxidCookie(plain, 'litefs-txidx=0000000000000007'), undefined)
  t.equal(readTxidCookie(plain, 'a=litefs-txid=0000000000000007'), undefined, 'inside another value')
  t.equal(readTxidCookie(plain, 'litefs-txid=0000000000000003; litefs-txid=0000000000000009; litefs-txid=zz'), 9n, 'duplicates: the highest valid wins')
  t.equal(readTxidCookie(plain, 'litefs-txid=0000000000000009; litefs-txid=0000000000000003'), 9n)
  for (const bad of ['litefs-txid=', 'litefs-txid=000000000000007', 'litefs-txid=00000000000000070', 'litefs-txid=ffffffffffffffff0', 'litefs-txid=nothexnothexnoth', 'litefs-txid']) {
    t.equal(readTxidCookie(plain, bad), undefined, `ignores ${bad}`)
  }
  t.equal(readTxidCookie(plain, 'x=' + 'a'.repeat(8192) + '; litefs-txid=0000000000000002'), 2n, '8 KB header')
  // As cookie parsers (the cookie package, Django's) read a value: spaces around "=" dropped, double quotes removed.
  t.equal(readTxidCookie(plain, 'litefs-txid = 0000000000000007'), 7n, 'spaces around =')
  t.equal(readTxidCookie(plain, 'a=1; litefs-txid\t=\t0000000000000007 ;b=2'), 7n, 'tabs')
  t.equal(readTxidCookie(plain, 'litefs-txid="0000000000000007"'), 7n, 'quoted')
  t.equal(readTxidCookie(plain, 'litefs-txid = "0000000000000007" ; x=1'), 7n, 'quoted, with spaces')
  for (const bad of ['litefs-txid="0000000000000007', 'litefs-txid=0000000000000007"', 'litefs-txid=""', 'litefs-txid="', 'litefs-txid x=0000000000000007', 'litefs-txid ', 'litefs-txid==0000000000000007']) {
    t.equal(readTxidCookie(plain, bad), undefined, `ignores ${bad}`)
  }
  t.equal(txidSetCookie(plain, 7n, false), 'litefs-txid=0000000000000007; Path=/; HttpOnly; SameSite=Lax; Max-Age=300')
  t.equal(txidSetCookie(plain, 7n, true), 'litefs-txid=0000000000000007; Path=/; HttpOnly; SameSite=Lax; Max-Age=300; Secure')

  const signed: CookieSettings = { name: 't', maxAge: 60, secrets: ['new-secret-0123456789', 'old-secret-0123456789'] }
  const set = txidSetCookie(signed, 7n, false)
  const value = set.slice(2, set.indexOf(';'))
  t.match(value, /^0000000000000007\.[A-Za-z0-9_-]{43}$/)
  t.equal(readTxidCookie(signed, `t=${value}`), 7n, 'a signed value verifies')
  const old = txidSetCookie({ ...signed, secrets: ['old-secret-0123456789'] }, 8n, false)
  t.equal(readTxidCookie(signed, old.slice(0, old.indexOf(';'))), 8n, 'a value signed with an older secret still verifies')
  t.equal(readTxidCookie(signed, `t=ffffffffffffffff${value.slice(16)}`), undefined, 'a forged TXID fails')
  t.equal(readTxidCookie(signed, 't=0000000000000007'), undefined, 'an unsigned value is refused')
  t.equal(readTxidCookie(signed, `t=${value}x`), undefined)
  t.equal(readTxidCookie(signed, 't=00000000000000007.abc'), undefined)
  // One token per TXID is made and reused (answers of one shared read): never another TXID's, nor another setting's.
  t.equal(txidToken(signed, 7n), value, 'the same TXID again: the same token')
  t.match(txidToken(signed, 9n), /^0000000000000009\./, 'a new TXID: its own token')
  t.equal(readTxidCookie(signed, `t=${txidToken(signed, 9n)}`), 9n)
  t.equal(txidToken(signed, 7n), value, 'back to 7')
  t.equal(txidToken({ ...signed, secrets: [] }, 7n), '0000000000000007', 'other settings: their own token')
  t.equal(txidToken(signed, 7n), value)
})

t.test('paths as routers compare them', async t => {
  const fastify = { decode: 'uri' as const, caseSensitive: true, strictTrailingSlash: true, collapseSlashes: false }
  t.equal(normalizePath('/oauth/%63allback', fastify), '/oauth/callback', 'find-my-way decodes with decodeURI')
  t.equal(normalizePath('/a%2Fb/%25x', fastify), '/a%2Fb/%25x', 'reserved characters and %25 stay encoded')
  t.equal(normalizePath('/bad/%E0%A4%A', fastify), '/bad/%E0%A4%A', 'malformed: left as sent (the router answers 400)')
  t.equal(normalizePath('/oauth%2Fcallback', DECODED), '/oauth/callback', 'node:http and serve: %2F too, as Go and WSGI decode it')
  t.equal(normalizePath('/caf%C3%A9/%zz/%', DECODED), '/café/%zz/%', 'an invalid escape stays as sent, the rest decoded (Python\'s unquote)')
  t.equal(normalizePath('/%ff%41', DECODED), '/\uFFFDA', 'bytes that are not UTF-8: U+FFFD')
  t.equal(normalizePath('/plain', DECODED), '/plain')
  const loose = { decode: 'none' as const, caseSensitive: false, strictTrailingSlash: false, collapseSlashes: true }
  t.equal(normalizePath('//OAuth//Callback/', loose), '/oauth/callback')
  t.equal(normalizePath('/', loose), '/', 'the root keeps its slash')
  const p = new PathPatterns(['/OAuth/Callback/', /^\/Exact$/, /^\/any$/i])
  t.ok(p.matches('/oauth/callback', loose), 'a glob is spelled as paths are compared')
  t.notOk(p.matches('/oauth/callback'), 'exact by default')
  t.ok(p.matches('/Exact', loose), 'a RegExp sees the path as sent…')
  t.ok(p.matches('/EXACT/', { ...loose, caseSensitive: true }) === false)
  t.ok(p.matches('/ANY/', loose), '…and as the router compares it')
  t.notOk(new PathPatterns([]).matches('/x', loose))
})

t.test('the exported readers never throw on what JavaScript callers pass: not a string is nothing read', async t => {
  const { readToken } = await import('../lib/core/cookie.js')
  const settings: CookieSettings = { name: 'litefs-txid', maxAge: 300, secrets: [] }
  for (const v of [null, undefined, 42, 9n, {}, ['0000000000000001']]) {
    t.equal(parseTxid(v as never), undefined, `parseTxid(${String(v)})`)
    t.equal(parsePos(v as never), undefined, `parsePos(${String(v)})`)
    t.equal(readToken(settings, v as never), undefined, `readToken(${String(v)})`)
    t.equal(readTxidCookie(settings, v as never), undefined, `readTxidCookie(${String(v)})`)
  }
  t.equal(readToken(settings, ' 0000000000000002 '), 2n, 'a string is still read')
})
