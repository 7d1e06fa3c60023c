// Nodes that do not all sign tokens alike (token-refused.ts): a token one node
// wrote is refused by the next, so the read there is served without waiting —
// read-your-writes lost, silently until now. Said once per reason, in every
// adapter and behind serve, through real sockets; garbage is not said; and
// outside HTTP (waitForToken) the same.
import t from 'tap'
import { request } from 'undici'
import { FLAVOURS, pair, type Flavour, type PairNode } from './helpers/pairs.js'
import { FakeLitefs, until } from './helpers/fake-litefs.js'
import { signToken } from '../lib/core/cookie.js'
import { refusal } from '../lib/core/token-refused.js'
import { createNodeCore } from '../lib/core/node-adapter.js'

const B = 'replica-secret-0123456789'
const C = 'someone-elses-secret-0123'

const routes = (fake: FakeLitefs): Record<string, (req: any, res: any) => void> => ({
  'POST /items': (req, res) => { req.resume(); fake.advance(10n); res.writeHead(201).end('{}') },
  'GET /page': (_req, res) => { res.writeHead(200).end('page') }
})

type Said = Array<{ reason: string, message: string }>

/** LITEFS_TOKEN_SECRET as said on a node: serve's log lines, else the adapters' logger or process warnings. */
function secretWarnings (flavour: Flavour, node: PairNode, logged: Said, warned: Said): Said {
  if (flavour === 'serve') {
    return node.lines.map(l => JSON.parse(l) as { code?: string, reason?: string, msg: string })
      .filter(l => l.code === 'LITEFS_TOKEN_SECRET').map(l => ({ reason: l.reason as string, message: l.msg }))
  }
  return [...logged, ...warned]
}

for (const flavour of FLAVOURS) {
  t.test(`${flavour}: a token from a node that signs otherwise is refused and said once per reason; garbage is not said`, async t => {
    const logged: Said = []
    const warned: Said = []
    const onWarning = (w: Error & { code?: string }): void => { if (w.code === 'LITEFS_TOKEN_SECRET') warned.push({ reason: /not signed/.test(w.message) ? 'unsigned' : /no "secret"/.test(w.message) ? 'signed' : 'other-secret', message: w.message }) }
    process.on('warning', onWarning)
    t.teardown(() => { process.off('warning', onWarning) })
    const warn = (o: { code?: string, reason?: string }, msg: string): void => { if (o?.code === 'LITEFS_TOKEN_SECRET') logged.push({ reason: o.reason as string, message: msg }) }
    const logger = { debug () {}, info () {}, warn, error () {} }
    // The primary has no secret (its tokens are unsigned); the replica has one.
    const { primary, replica } = await pair(t, flavour, {
      routes,
      replica: { secret: B, readTimeout: 60_000 },
      framework: { logger: logger as any }
    })
    const said = (node: PairNode): Said => secretWarnings(flavour, node, logged, warned)
    // A write on the primary: its token, unsigned.
    const write = await request(`${primary.url}/items`, { method: 'POST', body: '{}' })
    await write.body.dump()
    const token = write.headers['litefs-txid'] as string
    t.match(token, /^[0-9a-f]{16}$/, 'the primary signs nothing')
    // Read on the replica (at 5, the token at 10): refused, so served at once, not held.
    for (let i = 0; i < 2; i++) {
      const read = await request(`${replica.url}/page`, { headers: { 'litefs-txid': token } })
      t.equal(read.statusCode, 200, `read ${i + 1} served`)
      t.equal(await read.body.text(), 'page')
    }
    t.equal(replica.stats().waits, 0, 'never held: the token is no token here')
    await until(() => said(replica).length > 0, 'said on the replica')
    t.equal(said(replica).length, 1, 'once for two reads')
    t.match(said(replica)[0], { reason: 'unsigned', message: /not signed, but this node has a .{0,2}secret.*Give every node the same .{0,2}secret/ })
    // Signed with a secret the replica does not have.
    const other = signToken({ name: 'x', maxAge: 1, secrets: [C] }, '000000000000000a')
    for (let i = 0; i < 2; i++) await (await request(`${replica.url}/page`, { headers: { 'litefs-txid': other } })).body.dump()
    await until(() => said(replica).length > 1, 'the second reason said')
    t.equal(said(replica).length, 2, 'once more: another reason')
    t.match(said(replica)[1], { reason: 'other-secret', message: /signed with a secret this node does not have: nodes whose .{0,2}secret.? differs/ })
    if (flavour === 'serve') t.notMatch(said(replica)[1].message, /--secrets/, 'serve names its flag, --secret (it said "--secrets")')
    // Garbage names no misconfiguration.
    for (const junk of ['zzz', 'a.b', `${'0'.repeat(16)}.short`, '']) {
      await (await request(`${replica.url}/page`, { headers: { 'litefs-txid': junk } })).body.dump()
    }
    t.equal(said(replica).length, 2, 'garbage is not said')
    // A token the replica signed, read where no secret is: said there.
    const signed = signToken({ name: 'x', maxAge: 1, secrets: [B] }, '0000000000000003')
    const onPrimary = await request(`${primary.url}/page`, { headers: { 'litefs-txid': signed } })
    t.equal(onPrimary.statusCode, 200)
    await onPrimary.body.dump()
    await until(() => said(primary).some(s => s.reason === 'signed'), 'said on the primary')
    t.match(said(primary).find(s => s.reason === 'signed'), { message: /signed, but this node has no .{0,2}secret/ })
  })
}

t.test('refusal: why a refused token names a misconfiguration, or does not', async t => {
  const none = { name: 'litefs-txid', maxAge: 300, secrets: [] }
  const withB = { ...none, secrets: [B] }
  const hex = '00000000000000ff'
  t.equal(refusal(withB, signToken({ ...none, secrets: [C] }, hex), 'app.db'), 'other-secret')
  t.equal(refusal(withB, ` ${hex} `, 'app.db'), 'unsigned', 'as the token header carries it, spaces and all')
  t.equal(refusal(withB, `app.db:${hex}|cache.db:${hex}`, 'app.db'), 'unsigned', 'several databases, names with dots')
  t.equal(refusal(none, signToken(withB, hex), 'app.db'), 'signed')
  t.equal(refusal(none, signToken(withB, `app.db:${hex}`), undefined), 'signed', 'a named token without a main database')
  t.equal(refusal(withB, 'zzz', 'app.db'), undefined)
  t.equal(refusal(withB, `${hex}.${'A'.repeat(42)}`, 'app.db'), undefined, 'no MAC of the right length: not a token')
  t.equal(refusal(withB, hex, undefined), undefined, "a bare TXID where only '*' is tracked names no database")
  t.equal(refusal(none, 'zzz', 'app.db'), undefined)
})

t.test('waitForToken: a token from a node that signs otherwise resolves at once and is said', async t => {
  const fake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  const warned: string[] = []
  const logger = { debug () {}, info () {}, warn: (o: { code?: string }, msg: string) => { if (o?.code === 'LITEFS_TOKEN_SECRET') warned.push(msg) }, error () {} }
  const core = createNodeCore({ db: 'app.db', mount: fake.mount, api: fake.apiUrl, secret: B, pollInterval: 1, logger } as any)
  t.teardown(async () => { await core.close(); await fake.close() })
  await until(() => core.state.primaryHostname === 'node-a')
  const wait = await core.waitForToken(signToken({ name: 'x', maxAge: 1, secrets: [C] }, '00000000000000ff'))
  t.same(wait, { waitedMs: 0 }, 'no token: nothing to wait for')
  t.match(warned, [/signed with a secret this node does not have/])
})

t.test('requestPositions hands each refused token to its caller once, decoded where the cookie was percent-encoded', async t => {
  const { requestPositions } = await import('../lib/core/token.js')
  const { resolveOptions } = await import('../lib/core/options.js')
  const options = resolveOptions({ db: 'app.db', secret: B })
  const refused: string[] = []
  const good = signToken(options.cookie, '0000000000000007')
  const found = requestPositions(options, {
    cookie: `litefs-txid=app.db%3A00000000000000ff; litefs-txid=%zz; litefs-txid=${good}`,
    'litefs-txid': ' 0000000000000009 , , '
  }, value => refused.push(value))
  t.same([...(found ?? [])], [['app.db', 7n]], 'the valid token counts')
  t.same(refused, ['app.db:00000000000000ff', '%zz', ' 0000000000000009 '], 'each refused value once; empty header entries are none')
})
