// `litefs-proxy config` (lib/cli/config.ts, lib/cli/litefs-yml.ts): every rule,
// in-process through runConfig, the output read back with the yaml package.
// test/litefs/config.test.ts starts real LiteFS on what it writes.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { runConfig, CONFIG_FLAGS } from '../lib/cli/config.js'

interface Result { code: number, out: string, err: string }

function config (argv: string[], env: NodeJS.ProcessEnv = {}): Result {
  let out = ''
  let err = ''
  const code = runConfig(argv, { out: s => { out += s }, err: s => { err += s }, env })
  return { code, out, err }
}

/** Runs and parses the YAML; fails the test on a non-zero exit. */
function yml (t: Test, argv: string[], env?: NodeJS.ProcessEnv): any {
  const r = config(argv, env)
  t.equal(r.code, 0, `exit 0 (${r.err.trim()})`)
  return parse(r.out)
}

/** Bad usage: exit 2, nothing on stdout, ONE line on stderr matching `pattern`. */
function fails (t: Test, argv: string[], pattern: RegExp, env?: NodeJS.ProcessEnv): string {
  const r = config(argv, env)
  t.equal(r.code, 2, `exit 2 for ${argv.join(' ')}`)
  t.equal(r.out, '')
  t.match(r.err, /^litefs-proxy config: [^\n]+\n$/, 'one line on stderr')
  t.match(r.err, pattern)
  return r.err
}

const dir = mkdtempSync(join(tmpdir(), 'litefs-proxy-config-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
function file (name: string, text: string): string {
  const path = join(dir, `${files++}-${name}`)
  writeFileSync(path, text)
  return path
}

const STATIC = ['--primary', 'node-1', '--nodes', 'node-1,node-2,node-3']

t.test('usage: no arguments (exit 2, stderr), --help (exit 0, stdout), both with an example', async t => {
  const none = config([])
  t.equal(none.code, 2)
  t.equal(none.out, '')
  t.match(none.err, /^Usage: litefs-proxy config/)
  t.match(none.err, /Examples.*\n\s+litefs-proxy config --node node-2 --primary node-1/s)
  const help = config(['--help'])
  t.equal(help.code, 0)
  t.equal(help.err, '')
  t.equal(help.out, none.err)
  for (const name of Object.keys(CONFIG_FLAGS)) t.match(help.out, `--${name}`, `--help lists --${name}`)
  t.match(help.out, /MOUNT_PATH, DATA_PATH, DATABASE_NAME, LEADER_ELECTION/)
  t.equal(config(['--node', 'x', '--help']).code, 0, '--help among other flags')
})

t.test('bad flags: one line each', async t => {
  fails(t, ['--colour', 'red'], /unknown flag --colour/)
  fails(t, ['node-1'], /unexpected argument "node-1"/)
  fails(t, ['--node'], /--node needs a value/)
  fails(t, ['--node', '--primary', 'x'], /--node needs a value/)
  fails(t, ['--node', 'a', '--node', 'b'], /--node is given twice/)
  fails(t, ['--promote=yes'], /--promote takes true, false or no value; got "yes"/)
})

t.test('static lease: every node names the primary; only the primary is a candidate', async t => {
  for (const node of ['node-1', 'node-2', 'node-3']) {
    const doc = yml(t, ['--node', node, ...STATIC])
    t.same(doc.lease, { type: 'static', hostname: 'node-1', 'advertise-url': 'http://node-1:20202', candidate: node === 'node-1' }, node)
    t.same(doc.fuse, { dir: '/litefs' }, 'fuse.dir default')
    t.same(doc.data, { dir: '/var/lib/litefs' }, 'data.dir default')
    t.same(doc.http, { addr: ':20202' }, 'http.addr default')
    t.notOk('promote' in doc.lease, 'no promote on a static lease')
    t.same(Object.keys(doc), ['fuse', 'data', 'http', 'lease'], 'no proxy:, exec: or exit-on-error unless asked')
  }
  const text = config(['--node', 'node-2', ...STATIC]).out
  t.match(text, /^# litefs\.yml for node-2, written by `litefs-proxy config`\.\n# Static lease: node-1 is the primary\./)
  t.match(text, /No proxy: section: litefs-proxy/)
  t.notMatch(text, /environment variables/)
})

t.test("run.ts's example works as printed", async t => {
  const doc = yml(t, ['--node', 'node-2', '--primary', 'node-1', '--nodes', 'node-1,node-2,node-3', '--exec', 'gunicorn app:app'])
  t.same(doc.exec, [{ cmd: 'gunicorn app:app' }])
  t.equal(doc.lease.candidate, false)
})

t.test('static lease: the mistakes people make', async t => {
  fails(t, ['--node', 'node-2'], /a static lease needs --primary: the primary's name, the same on every node/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--promote'], /--promote: a static lease has a fixed primary and nothing to promote; promote is for consul leases/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--candidate'], /--candidate: with a static lease the primary is the only candidate; name it with --primary/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--candidate=false'], /only candidate/)
  for (const flag of ['--consul-url', '--consul-key', '--consul-ttl', '--consul-lock-delay']) {
    fails(t, ['--node', 'node-2', '--primary', 'node-1', flag, 'x'], new RegExp(`${flag} is for a consul lease; this one is static`))
  }
  fails(t, ['--node', 'node-4', ...STATIC], /--node: node-4 is not one of --nodes \(node-1, node-2, node-3\)/)
  fails(t, ['--node', 'node-2', '--primary', 'node-9', '--nodes', 'node-1,node-2'], /--primary: node-9 is not one of --nodes/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--nodes', 'node-1,node-2,node-1'], /--nodes: node-1 is listed twice/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--nodes', 'node-1,node 2'], /--nodes: "node 2" is not a node name/)
  fails(t, ['--node', 'node 2', '--primary', 'node-1'], /--node: "node 2" is not a node name/)
  fails(t, ['--node', 'node-2', '--primary', 'http://node-1'], /--primary: "http:\/\/node-1" is not a node name/)
  t.same(yml(t, ['--node', 'node-2', '--primary', 'node-1', '--nodes', 'node-1', '--nodes', 'node-2']).lease.candidate, false, '--nodes repeatable')
  t.same(yml(t, ['--node=node-1', '--primary=node-1', '--nodes=node-1, node-2']).lease.candidate, true, '--flag=value')
})

t.test('advertise-url: {hostname} is the lease holder; the default port is http-addr\'s', async t => {
  t.equal(yml(t, ['--node', 'node-2', '--primary', 'node-1', '--http-addr', '10.0.0.2:20300']).lease['advertise-url'], 'http://node-1:20300')
  // Nodes sharing a host (issue 23): the guess would be the primary's name with this replica's port.
  for (const addr of ['127.0.0.1:20203', 'localhost:20203', '[::1]:20203']) {
    fails(t, ['--node', 'node-2', '--primary', 'node-1', '--http-addr', addr], /--http-addr .* is a loopback address, so the nodes share this host and the primary's LiteFS API has a port of its own: give its URL with --advertise-url/)
  }
  fails(t, ['--node', '${NODE}', '--primary', 'node-1', '--http-addr', '127.0.0.1:20203'], /--advertise-url/, { NODE: 'node-2' })
  t.equal(yml(t, ['--node', 'node-2', '--primary', 'node-1', '--http-addr', '127.0.0.1:20203', '--advertise-url', 'http://127.0.0.1:20202']).lease['advertise-url'], 'http://127.0.0.1:20202', 'given: taken')
  // The primary itself: its own API on this host, the URL the replicas are told to give (walk 6: it wrote http://node-1:20202, which does not resolve here).
  t.equal(yml(t, ['--node', 'node-1', '--primary', 'node-1', '--http-addr', '127.0.0.1:20202']).lease['advertise-url'], 'http://127.0.0.1:20202', 'the primary itself: its own address')
  t.equal(yml(t, ['--node', 'node-1', '--primary', 'node-1', '--http-addr', '[::1]:20202']).lease['advertise-url'], 'http://[::1]:20202')
  t.equal(yml(t, ['--node', 'node-2', '--primary', 'node-1', '--advertise-url', 'http://{hostname}.internal:20202']).lease['advertise-url'], 'http://node-1.internal:20202')
  t.equal(yml(t, ['--node', 'node-2', '--primary', 'node-1', '--advertise-url', 'http://127.0.0.1:4000']).lease['advertise-url'], 'http://127.0.0.1:4000')
  t.equal(yml(t, ['--node', 'node-2', '--primary', 'node-1', '--advertise-url', '${PRIMARY_API}']).lease['advertise-url'], '${PRIMARY_API}')
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--advertise-url', 'http://{host}:20202'], /--advertise-url: unknown placeholder \{host\} \(only \{hostname\}\)/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--advertise-url', 'node-1:20202'], /--advertise-url: expected an http:\/\/ URL, got "node-1:20202"/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--advertise-url', 'ftp://node-1'], /expected an http:\/\/ URL/)
  fails(t, ['--node', 'node-2', '--primary', 'node-1', '--advertise-url', 'http://'], /expected an http:\/\/ URL/)
})

t.test('${VAR} names: one file for every node, the candidate decided by LiteFS', async t => {
  const r = config(['--node', '${POD_NAME}', '--primary', 'app-0', '--advertise-url', 'http://{hostname}.app.default.svc.cluster.local:20202'])
  t.equal(r.code, 0)
  t.match(r.out, /\n {2}candidate: \$\{POD_NAME == "app-0"\}\n/, 'written bare: LiteFS turns it into true/false before parsing')
  t.match(r.out, /LiteFS fills in the environment variables/)
  t.same(parse(r.out).lease, { type: 'static', hostname: 'app-0', 'advertise-url': 'http://app-0.app.default.svc.cluster.local:20202', candidate: '${POD_NAME == "app-0"}' })
  t.match(config(['--node', '$POD_NAME', '--primary', 'app-0']).out, /candidate: \$\{POD_NAME == "app-0"\}/, '$VAR too')
  t.match(config(['--node', 'node-2', '--primary', '${PRIMARY}']).out, /candidate: \$\{PRIMARY == "node-2"\}/)
  t.match(config(['--node', '${NODE}', '--primary', '${PRIMARY}']).out, /candidate: \$\{NODE == PRIMARY\}/)
  t.equal(yml(t, ['--node', '${NODE}', ...STATIC]).lease.hostname, 'node-1', '--nodes does not judge a ${VAR}')
  fails(t, ['--node', '${REGION}-1', '--primary', 'node-1'], /--node: "\$\{REGION\}-1" mixes text and \$\{VAR\}/)
  fails(t, ['--node', 'node-1', '--primary', 'db-${REGION}'], /--primary: .* mixes text/)
})

t.test('--node from LITEFS_NODE_ID (the guide\'s compose file sets it)', async t => {
  t.equal(yml(t, ['--primary', 'node-1'], { LITEFS_NODE_ID: 'node-1' }).lease.candidate, true)
  t.equal(yml(t, ['--primary', 'node-1', '--node', 'node-3'], { LITEFS_NODE_ID: 'node-1' }).lease.candidate, false, 'the flag wins')
  fails(t, ['--primary', 'node-1'], /--node is required: this node's name/)
  fails(t, ['--primary', 'node-1'], /--node is required/, { LITEFS_NODE_ID: '' })
  fails(t, ['--primary', 'node-1', '--nodes', 'node-1'], /LITEFS_NODE_ID: node-7 is not one of --nodes/, { LITEFS_NODE_ID: 'node-7' })
})

t.test('consul lease: each node names itself, candidate by default, consul.url and .key', async t => {
  const base = ['--lease', 'consul', '--consul-url', 'http://consul:8500', '--consul-key', 'litefs/app']
  const doc = yml(t, ['--node', 'node-2', ...base])
  t.same(doc.lease, { type: 'consul', hostname: 'node-2', 'advertise-url': 'http://node-2:20202', candidate: true, consul: { url: 'http://consul:8500', key: 'litefs/app' } })
  t.match(config(['--node', 'node-2', ...base]).out, /# Consul lease: each node names itself/)
  // Nodes sharing one host: each advertises the address its API listens on (walk 5: a
  // replica told http://node-1:20202 never found its primary), and a named host likewise.
  t.equal(yml(t, ['--node', 'node-2', ...base, '--http-addr', '127.0.0.1:20203']).lease['advertise-url'], 'http://127.0.0.1:20203', 'loopback: this node\'s own address')
  t.equal(yml(t, ['--node', 'node-2', ...base, '--http-addr', '10.0.0.2:20202']).lease['advertise-url'], 'http://10.0.0.2:20202', 'a named host')
  t.equal(yml(t, ['--node', 'node-2', ...base, '--http-addr', '[::1]:20203']).lease['advertise-url'], 'http://[::1]:20203', 'IPv6')
  for (const addr of [':20300', '0.0.0.0:20300', '[::]:20300']) t.equal(yml(t, ['--node', 'node-2', ...base, '--http-addr', addr]).lease['advertise-url'], 'http://node-2:20300', `${addr}: every interface, so by name`)
  t.equal(yml(t, ['--node', 'node-2', ...base, '--http-addr', '127.0.0.1:20203', '--advertise-url', 'http://{hostname}:20203']).lease['advertise-url'], 'http://node-2:20203', 'given: taken')
  const full = yml(t, ['--node', 'node-3', ...base, '--promote', '--consul-ttl', '15s', '--consul-lock-delay', '1s', '--advertise-url', 'http://{hostname}.internal:20202'])
  t.same(full.lease, { type: 'consul', hostname: 'node-3', 'advertise-url': 'http://node-3.internal:20202', candidate: true, promote: true, consul: { url: 'http://consul:8500', key: 'litefs/app', ttl: '15s', 'lock-delay': '1s' } })
  t.equal(yml(t, ['--node', 'node-3', ...base, '--promote=false']).lease.promote, false)
  t.equal(yml(t, ['--node', 'node-3', ...base, '--candidate=false']).lease.candidate, false)
  fails(t, ['--node', 'node-3', ...base, '--candidate', 'no'], /--candidate takes true, false, a LiteFS expression such as \$\{FLY_REGION == PRIMARY_REGION\} or no value; got "no"/)
  fails(t, ['--node', 'node-3', ...base, '--promote', 'yes'], /--promote takes true, false or no value; got "yes"/)
  t.equal(yml(t, ['--node', 'node-3', ...base, '--candidate=true']).lease.candidate, true)
  t.equal(yml(t, ['--node', 'node-3', '--candidate', 'false', ...base]).lease.candidate, false, '--candidate false')
  t.match(config(['--node', 'node-3', ...base, '--candidate', '${A == B}']).out, /candidate: \$\{A == B\}/, "--candidate '${A == B}'")
  const fly = config(['--node', '${FLY_MACHINE_ID}', '--lease', 'consul', '--consul-url', '${FLY_CONSUL_URL}', '--consul-key', 'litefs/${FLY_APP_NAME}', "--candidate=${FLY_REGION == PRIMARY_REGION}"])
  t.equal(fly.code, 0)
  t.match(fly.out, /\n {2}candidate: \$\{FLY_REGION == PRIMARY_REGION\}\n/)
  t.match(fly.out, /\n {4}url: "\$\{FLY_CONSUL_URL\}"\n/)
  t.match(config(['--node', 'n', ...base, "--candidate=${REGION == 'ams'}"]).out, /candidate: \$\{REGION == 'ams'\}/)
  fails(t, ['--node', 'node-2', ...base, '--candidate=maybe'], /--candidate: expected true, false or a LiteFS expression such as \$\{FLY_REGION == PRIMARY_REGION\}, got "maybe"/)
  fails(t, ['--node', 'node-2', ...base, '--primary', 'node-1'], /--primary: with a consul lease the primary is whichever candidate holds the lease/)
  fails(t, ['--node', 'node-2', '--lease', 'consul', '--consul-key', 'k'], /a consul lease needs --consul-url/)
  fails(t, ['--node', 'node-2', '--lease', 'consul', '--consul-url', 'http://consul:8500'], /a consul lease needs --consul-key/)
  fails(t, ['--node', 'node-2', '--lease', 'consul', '--consul-url', 'http://consul:8500', '--consul-key', ''], /needs --consul-key/)
  fails(t, ['--node', 'node-2', '--lease', 'consul', '--consul-url', 'consul:8500', '--consul-key', 'k'], /--consul-url: expected an http:\/\/ URL/)
  fails(t, ['--node', 'node-2', ...base, '--consul-ttl', '5s'], /--consul-ttl: Consul refuses a TTL under 10s, got 5s/)
  fails(t, ['--node', 'node-2', ...base, '--consul-ttl', '10'], /--consul-ttl: expected a Go duration/)
  fails(t, ['--node', 'node-2', ...base, '--consul-lock-delay', 'soon'], /--consul-lock-delay: expected a Go duration/)
})

t.test('raft: LiteFS has none; the error says what to use instead', async t => {
  const err = fails(t, ['--node', 'node-2', '--lease', 'raft'], /--lease: LiteFS has no Raft lease \(only static and consul\): use consul for automatic failover, static for a fixed primary/)
  t.notMatch(err, /unknown/)
  fails(t, ['--node', 'node-2', '--lease', 'etcd'], /--lease: expected static or consul, got "etcd"/)
})

t.test('durations: Go syntax, as LiteFS reads them, written as strings', async t => {
  for (const d of ['5s', '1m30s', '1h', '1.5h', '250ms', '0', '10m0s', '1h2m3.5s']) {
    const r = config(['--node', 'node-2', '--primary', 'node-1', '--retention', d])
    t.equal(parse(r.out).data.retention, d, d)
    t.match(r.out, `retention: "${d}"`, 'quoted: a bare 0 would be a number, which LiteFS refuses for a duration')
  }
  for (const d of ['10', '5 s', '-5s', '1d', 'soon', '', '.5s', '5S']) {
    fails(t, ['--node', 'node-2', '--primary', 'node-1', '--retention', d], new RegExp(`--retention: expected a Go duration such as 5s, 1m30s or 1h \\(LiteFS reads it with time.ParseDuration\\), got ${JSON.stringify(d).replace(/\./g, '\\.')}`))
  }
})

t.test('fuse.dir, data.dir, http.addr', async t => {
  const doc = yml(t, ['--node', 'node-2', '--primary', 'node-1', '--fuse-dir', '/mnt/litefs/', '--data-dir', '/data/litefs', '--http-addr', '127.0.0.1:20300', '--advertise-url', 'http://127.0.0.1:20202'])
  t.same([doc.fuse.dir, doc.data.dir, doc.http.addr], ['/mnt/litefs', '/data/litefs', '127.0.0.1:20300'], 'trailing slash dropped')
  t.equal(yml(t, ['--node', 'n', '--primary', 'n', '--fuse-dir', '/', '--data-dir', '/data']).fuse.dir, '/')
  t.equal(yml(t, ['--node', 'n', '--primary', 'n', '--fuse-dir', '${MNT}', '--http-addr', ':${API_PORT}']).lease['advertise-url'], 'http://n:${API_PORT}')
  t.equal(yml(t, ['--node', 'n', '--primary', 'n', '--http-addr', '[::1]:20202']).http.addr, '[::1]:20202')
  fails(t, ['--node', 'n', '--primary', 'n', '--fuse-dir', 'litefs'], /--fuse-dir: expected an absolute path, got "litefs"/)
  fails(t, ['--node', 'n', '--primary', 'n', '--data-dir', 'data'], /--data-dir: expected an absolute path/)
  fails(t, ['--node', 'n', '--primary', 'n', '--data-dir', '/litefs/'], /the FUSE mount and the data directory must differ \(both \/litefs\); LiteFS refuses that/)
  fails(t, ['--node', 'n', '--primary', 'n', '--data-dir', '/litefs/data'], /the data directory \/litefs\/data must not be inside the FUSE mount \/litefs/)
  for (const addr of ['20202', 'localhost', ':0', ':65536', 'a b:1', 'http://x:1']) {
    fails(t, ['--node', 'n', '--primary', 'n', '--http-addr', addr], /--http-addr: expected an address such as :20202 or 127\.0\.0\.1:20202/)
  }
})

t.test('exec: optional, repeatable, in order', async t => {
  t.same(yml(t, ['--node', 'n', '--primary', 'n', '--exec', 'python manage.py migrate', '--exec', 'gunicorn app:app']).exec,
    [{ cmd: 'python manage.py migrate' }, { cmd: 'gunicorn app:app' }])
  fails(t, ['--node', 'n', '--primary', 'n', '--exec', ' '], /--exec: a command is empty/)
  const long = 'x'.repeat(200) + ' --flag "a b"'
  t.match(config(['--node', 'n', '--primary', 'n', '--exec', long]).out, `  - cmd: "${'x'.repeat(200)} --flag \\"a b\\""\n`, 'never folded: LiteFS expands ${VAR} on the raw text')
})

t.test('exit-on-error only when asked', async t => {
  t.equal(yml(t, ['--node', 'n', '--primary', 'n', '--exit-on-error=false'])['exit-on-error'], false)
  t.match(config(['--node', 'n', '--primary', 'n', '--exit-on-error=false']).out, /# Stay up after a startup error/)
  t.equal(yml(t, ['--node', 'n', '--primary', 'n', '--exit-on-error'])['exit-on-error'], true)
  t.equal(yml(t, ['--node', 'n', '--primary', 'n', '--exit-on-error=true'])['exit-on-error'], true)
  t.equal(yml(t, ['--node', 'n', '--exit-on-error', 'false', '--primary', 'n'])['exit-on-error'], false, '--flag false')
  t.equal(yml(t, ['--node', 'n', '--primary', 'n', '--exit-on-error', 'true'])['exit-on-error'], true)
  fails(t, ['--node', 'n', '--primary', 'n', '--exit-on-error', 'no'], /--exit-on-error takes true, false or no value; got "no"/)
})

t.test("proxy: LiteFS's own, with LiteFS's names, only when asked", async t => {
  const doc = yml(t, ['--node', 'n', '--primary', 'n', '--proxy-addr', ':8080', '--proxy-target', 'localhost:8000', '--proxy-db', 'db.sqlite3',
    '--proxy-passthrough', '/health', '--proxy-passthrough', '/static/*', '--proxy-always-forward', '/oauth/*',
    '--proxy-primary-redirect-timeout', '10s', '--proxy-max-lag', '30s'])
  t.same(doc.proxy, { addr: ':8080', target: 'localhost:8000', db: 'db.sqlite3', passthrough: ['/health', '/static/*'], 'always-forward': ['/oauth/*'], 'primary-redirect-timeout': '10s', 'max-lag': '30s' })
  t.same(Object.keys(doc), ['fuse', 'data', 'http', 'lease', 'proxy'])
  const text = config(['--node', 'n', '--primary', 'n', '--proxy-addr', ':8080', '--proxy-target', 'localhost:8000', '--proxy-db', 'db'])
  t.notMatch(text.out, /No proxy: section/)
  t.match(text.out, /litefs-proxy serve --config` reads this section too: run one or the other/)
  const p = ['--node', 'n', '--primary', 'n']
  fails(t, [...p, '--proxy-target', 'localhost:8000', '--proxy-db', 'db'], /a proxy: section needs --proxy-addr \(where LiteFS's proxy listens, e\.g\. :8080\); or leave every proxy setting out/)
  fails(t, [...p, '--proxy-addr', ':8080', '--proxy-db', 'db'], /needs --proxy-target/)
  fails(t, [...p, '--proxy-max-lag', '1s', '--proxy-addr', ':8080', '--proxy-target', 'localhost:8000'], /needs --proxy-db/)
  fails(t, [...p, '--proxy-addr', ':8080', '--proxy-target', ':8000', '--proxy-db', 'db'], /--proxy-target: expected host:port, e\.g\. localhost:8000/)
  fails(t, [...p, '--proxy-addr', '8080', '--proxy-target', 'localhost:8000', '--proxy-db', 'db'], /--proxy-addr: expected an address/)
  fails(t, [...p, '--proxy-addr', ':20202', '--proxy-target', 'localhost:8000', '--proxy-db', 'db'], /--proxy-addr: port 20202 is LiteFS's API port too \(http-addr :20202\)/)
  fails(t, [...p, '--proxy-addr', ':8080', '--proxy-target', 'localhost:8000', '--proxy-db', 'db', '--proxy-passthrough', ''], /--proxy-passthrough: a pattern is empty/)
  fails(t, [...p, '--proxy-addr', ':8080', '--proxy-target', 'localhost:8000', '--proxy-db', 'db', '--proxy-max-lag', '10'], /--proxy-max-lag: expected a Go duration/)
})

t.test('settings file: the flags\' names, JSON or YAML, nested sections; flags win', async t => {
  const json = file('settings.json', JSON.stringify({
    primary: 'node-1',
    nodes: ['node-1', 'node-2'],
    'http-addr': ':20202',
    exec: 'gunicorn app:app',
    retention: '1h',
    proxy: { addr: ':8080', target: 'localhost:8000', db: 'db.sqlite3', passthrough: '/health', 'max-lag': '5s' },
    consul: {}
  }))
  const fromFile = config(['--settings', json, '--node', 'node-2'])
  const fromFlags = config(['--node', 'node-2', '--primary', 'node-1', '--nodes', 'node-1,node-2', '--exec', 'gunicorn app:app', '--retention', '1h',
    '--proxy-addr', ':8080', '--proxy-target', 'localhost:8000', '--proxy-db', 'db.sqlite3', '--proxy-passthrough', '/health', '--proxy-max-lag', '5s'])
  t.equal(fromFile.code, 0, fromFile.err)
  t.equal(fromFile.out, fromFlags.out, 'the same bytes as the flags')
  const yaml = file('settings.yml', 'node: node-3\nprimary: node-1\nnodes: node-1, node-2, node-3\nexit-on-error: false\nlease: static\n')
  t.same(yml(t, ['--settings', yaml]).lease.candidate, false)
  t.equal(yml(t, ['--settings', yaml, '--node', 'node-1']).lease.candidate, true, 'a flag overrides the file')
  t.equal(yml(t, ['--settings', yaml])['exit-on-error'], false)
  const consul = file('consul.yaml', 'lease: consul\nnode: node-2\ncandidate: false\npromote: true\nconsul:\n  url: http://consul:8500\n  key: litefs/app\n  ttl: 10s\n')
  t.same(yml(t, ['--settings', consul]).lease, { type: 'consul', hostname: 'node-2', 'advertise-url': 'http://node-2:20202', candidate: false, promote: true, consul: { url: 'http://consul:8500', key: 'litefs/app', ttl: '10s' } })
  const expr = file('expr.yml', 'lease: consul\nnode: n\ncandidate: "${A == B}"\nconsul-url: http://c:8500\nconsul-key: k\n')
  t.match(config(['--settings', expr]).out, /candidate: \$\{A == B\}/)
})

// The guide's own LITEFS dict, minus its Raft lines (which get their own error).
const GUIDE = {
  MOUNT_PATH: '/litefs',
  DATA_PATH: '/var/lib/litefs',
  DATABASE_NAME: 'db.sqlite3',
  LEADER_ELECTION: 'static',
  PROXY_ADDR: ':8080',
  ENABLED: true,
  RETENTION: '1h',
  PROXY: {
    ADDR: ':8080',
    TARGET: 'localhost:8000',
    DB: 'db.sqlite3',
    PASSTHROUGH: ['/health', '/static/*'],
    PRIMARY_REDIRECT_TIMEOUT: '10s'
  }
}

t.test("settings file: the Django LITEFS dict's names from the guide", async t => {
  const path = file('django.json', JSON.stringify(GUIDE))
  const doc = yml(t, ['--settings', path, '--node', 'node-2', '--primary', 'node-1'])
  t.same(doc, {
    fuse: { dir: '/litefs' },
    data: { dir: '/var/lib/litefs', retention: '1h' },
    http: { addr: ':20202' },
    lease: { type: 'static', hostname: 'node-1', 'advertise-url': 'http://node-1:20202', candidate: false },
    proxy: { addr: ':8080', target: 'localhost:8000', db: 'db.sqlite3', passthrough: ['/health', '/static/*'], 'primary-redirect-timeout': '10s' }
  }, 'the guide\'s example, fixed: the primary named, no promote on a static lease')
  const wrapped = file('wrapped.yml', 'LITEFS:\n  MOUNT_PATH: /mnt/x\n  PROXY:\n    ALWAYS_FORWARD: [/login]\n    MAX_LAG: 3s\n    ADDR: ":8080"\n    TARGET: "app:8000"\n  DATABASE_NAME: app.db\n')
  t.same(yml(t, ['--settings', wrapped, '--node', 'n', '--primary', 'n']).proxy, { addr: ':8080', target: 'app:8000', db: 'app.db', 'always-forward': ['/login'], 'max-lag': '3s' }, 'LITEFS = {...} dumped whole; DATABASE_NAME is proxy.db')
  t.equal(yml(t, ['--settings', wrapped, '--node', 'n', '--primary', 'n']).fuse.dir, '/mnt/x')
  const dotted = file('dotted.json', JSON.stringify({ 'PROXY.ADDR': ':9000', 'PROXY.TARGET': 'localhost:1', 'PROXY.DB': 'd', LEADER_ELECTION: 'consul', 'consul-url': 'http://c:8500', 'consul-key': 'k' }))
  t.equal(yml(t, ['--settings', dotted, '--node', 'n']).proxy.addr, ':9000', 'dotted names too')
})

t.test('settings file: raft, unknown keys, disagreements, wrong types: one line naming the key', async t => {
  const guideRaft = file('guide.json', JSON.stringify({ ...GUIDE, LEADER_ELECTION: 'raft', RAFT_SELF_ADDR: 'node-1:4321', RAFT_PEERS: ['node-1:4321'] }))
  fails(t, ['--settings', guideRaft, '--node', 'node-2', '--primary', 'node-1'], /guide\.json: (LEADER_ELECTION|RAFT_SELF_ADDR): LiteFS has no Raft lease \(only static and consul\): use consul for automatic failover, static for a fixed primary/)
  for (const key of ['RAFT_SELF_ADDR', 'RAFT_PEERS']) {
    const f = file('raft.json', JSON.stringify({ [key]: key === 'RAFT_PEERS' ? ['a:1'] : 'a:1' }))
    fails(t, ['--settings', f, '--node', 'n', '--primary', 'n'], new RegExp(`: ${key}: LiteFS has no Raft lease`))
  }
  const leaderRaft = file('leader.yml', 'LEADER_ELECTION: raft\n')
  fails(t, ['--settings', leaderRaft, '--node', 'n'], /leader\.yml: LEADER_ELECTION: LiteFS has no Raft lease/)
  const cases: Array<[string, RegExp]> = [
    ['colour: red\n', /: colour: unknown key \(litefs-proxy config --help lists the names\)/],
    ['PROXY:\n  FOO: 1\n', /: PROXY\.FOO: unknown key/],
    ['out: /tmp/x\n', /: out: unknown key/],
    ['settings: other.yml\n', /: settings: unknown key/],
    ['help: true\n', /: help: unknown key/],
    ['ENABLED: false\n', /: ENABLED: only ENABLED: true makes sense here/],
    ['PROXY_ADDR: ":8080"\nPROXY:\n  ADDR: ":9090"\n', /: PROXY_ADDR and PROXY\.ADDR disagree \(":8080" and ":9090"\)/],
    ['RETENTION: 3600\n', /: RETENTION: expected a string such as "10s" \(a Go duration, as a string\), got 3600/],
    ['RETENTION: 1 hour\n', /--settings|: RETENTION: expected a Go duration/],
    ['MOUNT_PATH: 7\n', /: MOUNT_PATH: expected a string, got 7/],
    ['exec: [1, 2]\n', /: exec: expected a list of strings, got \[1,2\]/],
    ['promote: "yes"\n', /: promote: expected true or false, got "yes"/],
    ['candidate: 1\n', /: candidate: expected a string, got 1/]
  ]
  for (const [text, pattern] of cases) fails(t, ['--settings', file('bad.yml', text), '--node', 'n', '--primary', 'n'], pattern)
  const dbs = file('dbs.json', JSON.stringify({ DATABASE_NAME: 'a.db', PROXY: { DB: 'b.db', ADDR: ':8080', TARGET: 'x:1' } }))
  fails(t, ['--settings', dbs, '--node', 'n', '--primary', 'n'], /dbs\.json: DATABASE_NAME and .*PROXY\.DB disagree \("a\.db" and "b\.db"\)/)
  fails(t, ['--settings', join(dir, 'missing.json'), '--node', 'n'], /--settings .*missing\.json: ENOENT/)
  fails(t, ['--settings', file('broken.json', '{"a": '), '--node', 'n'], /broken\.json: not valid JSON/)
  fails(t, ['--settings', file('broken.yml', 'a: [\n'), '--node', 'n'], /broken\.yml: not valid YAML/)
  fails(t, ['--settings', file('list.yml', '- a\n- b\n'), '--node', 'n'], /list\.yml: expected a mapping of settings at the top/)
  fails(t, ['--settings', file('empty.yml', ''), '--node', 'n'], /expected a mapping/)
})

t.test('DATABASE_NAME with no proxy: section: a note, not an error', async t => {
  const r = config(['--settings', file('db-only.json', JSON.stringify({ DATABASE_NAME: 'db.sqlite3' })), '--node', 'n', '--primary', 'n'])
  t.equal(r.code, 0)
  t.notOk('proxy' in parse(r.out))
  t.match(r.err, /^litefs-proxy config: note: .*DATABASE_NAME \(db\.sqlite3\) is only used by a proxy: section, and there is none; litefs-proxy takes it as --db \/ db\n$/)
})

t.test('--out FILE writes the file; stdout stays empty', async t => {
  const out = join(dir, 'litefs.yml')
  const r = config(['--node', 'node-2', ...STATIC, '--out', out])
  t.same(r, { code: 0, out: '', err: '' })
  t.equal(readFileSync(out, 'utf8'), config(['--node', 'node-2', ...STATIC]).out)
  const bad = config(['--node', 'node-2', ...STATIC, '--out', join(dir, 'no-such-dir', 'litefs.yml')])
  t.equal(bad.code, 1, 'a write failure is not bad usage')
  t.match(bad.err, /^litefs-proxy config: cannot write .*no-such-dir\/litefs\.yml: ENOENT\n$/)
})

t.test('a failure that is not bad usage is thrown, not reported as exit 2', async t => {
  const env = new Proxy({}, { get () { throw new Error('boom') } })
  t.throws(() => runConfig(['--primary', 'n'], { out: () => {}, err: () => {}, env }), /boom/)
})

t.test('the installed command: litefs-proxy config dispatches here', async t => {
  const root = new URL('..', import.meta.url).pathname
  // The built bin (dist) is not the source under coverage.
  const { stdout } = await promisify(execFile)(process.execPath, ['dist/esm/cli/main.js', 'config', '--node', 'node-2', ...STATIC], { cwd: root, env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' } })
  t.equal(stdout, config(['--node', 'node-2', ...STATIC]).out)
})
