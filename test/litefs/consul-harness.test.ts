// The failover harness itself on real LiteFS v0.5.14 and Consul v1.14.11
// (lib/testing/consul-cluster.ts): a Consul lease written by `litefs-proxy
// config`, nodes in network namespaces, and each fault doing what it says —
// checked against LiteFS's /info, Consul's lease and the kernel (processes,
// mounts, namespaces), not against timings. Run by `npm run test:litefs`.
import t from 'tap'
import Database from 'better-sqlite3'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startConsulCluster, type ConsulCluster, type ConsulNode } from '../../lib/testing/litefs-cluster.js'
import { leavesNothingBehind } from './leftovers.js'

const DB = 'app.db'

async function until (what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await Promise.resolve().then(cond).catch(() => false))) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const mounted = (dir: string): boolean => readFileSync('/proc/self/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === dir)
const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(l => l.split(' ')[0])
/** A process that exists and is not a zombie (a SIGKILLed orphan waits for init to reap it). */
const alive = (pid: number | undefined): boolean => {
  if (pid === undefined) return false
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z' } catch { return false }
}

/** From inside `node`'s namespace: can it open a TCP connection to ip:port within 2 s? */
function canReach (node: ConsulNode, ip: string, port: number): boolean {
  const code = `const s=require('net').connect(${port},'${ip}');s.setTimeout(2000);s.on('connect',()=>process.exit(0));s.on('timeout',()=>process.exit(2));s.on('error',()=>process.exit(3))`
  try { execFileSync(node.wrap[0], [...node.wrap.slice(1), process.execPath, '-e', code], { stdio: 'ignore', timeout: 10_000 }); return true } catch { return false }
}

t.test('a Consul lease in network namespaces: config from litefs-proxy config, a lease holder, every fault, a clean close', async t => {
  const cluster: ConsulCluster = await startConsulCluster({ nodes: 3, netns: true })
  let closed = false
  t.teardown(async () => { if (!closed) await cluster.close() })
  const [a, b, c] = cluster.nodes

  const yml = readFileSync(a.configPath, 'utf8')
  t.match(yml, /written by `litefs-proxy config`/, 'the node config is the one litefs-proxy config writes')
  t.match(yml, /type: "?consul"?/)
  t.match(yml, /ttl: "10s"/)
  t.match(yml, /lock-delay: "1s"/)

  t.equal((await cluster.leaseHolder()).hostname, 'node-1', 'node 0 started first and holds the lease in Consul')
  t.equal((await a.info()).isPrimary, true)
  for (const n of [b, c]) t.equal((await n.info()).primary.hostname, 'node-1', `${n.hostname} follows node-1`)
  t.not(a.ip, b.ip, 'each node has its own address')
  t.ok(a.netns !== undefined && namespaces().includes(a.netns), 'in its own namespace')

  // Replication through the private bridge.
  const db = new Database(join(a.mount, DB))
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE t (x TEXT)')
  db.prepare('INSERT INTO t VALUES (?)').run('one')
  db.close()
  const pos = await cluster.waitReplicated(DB, a)
  t.ok(pos > 0n)

  // The gateway reaches every node's API from the test process; the balancer goes round the nodes.
  const apps = cluster.nodes.map(n => n.spawnApp(process.execPath, ['-e', `require('http').createServer((q,r)=>r.end(${JSON.stringify(n.hostname)})).listen(8080,'${n.ip}')`]))
  const balancer = await cluster.startBalancer(8080)
  const seen: string[] = []
  await until('the apps answer through the balancer', async () => {
    const res = await request(balancer.url, { reset: true })
    seen.push(await res.body.text())
    return new Set(seen).size === 3
  })
  t.same(new Set(seen), new Set(['node-1', 'node-2', 'node-3']), 'round robin reaches every node')

  // partition from Consul and from peers, then heal.
  t.ok(canReach(b, cluster.consul.ip, Number(new URL(cluster.consul.url).port)), 'node-2 reaches Consul')
  b.partition({ consul: true, peers: [0] })
  t.notOk(canReach(b, cluster.consul.ip, Number(new URL(cluster.consul.url).port)), 'partitioned: node-2 no longer reaches Consul')
  t.notOk(canReach(b, a.ip, 20202), 'nor node-1')
  t.ok(canReach(b, c.ip, 20202), 'but still node-3, which it was not cut from')
  b.heal()
  t.ok(canReach(b, a.ip, 20202), 'healed')

  // pause: nothing answers; resume: it does again.
  await c.pause()
  // Say what came back if it does answer: the last CI failure here could not be explained.
  const paused = await c.info().then((info) => ({ answered: info }), (err: Error) => ({ error: err.message }))
  t.ok('error' in paused, 'a paused node does not answer', { found: paused, state: readFileSync(`/proc/${c.pid as number}/stat`, 'utf8') })
  c.resume()
  t.equal((await c.info()).primary.hostname, 'node-1', 'resumed, it answers again')

  // kill LiteFS only: its app is orphaned, still running.
  const cApp = apps[2]
  await c.kill()
  t.notOk(c.running)
  t.ok(cApp.running && alive(cApp.pid), 'kill() leaves the app running')
  await c.start()
  t.ok(c.running)

  // SIGTERM on the primary: it gives the lease up, another node takes it.
  await a.stop()
  t.notOk(mounted(a.mount), 'a stopped node leaves no mount')
  const next = await cluster.waitForPrimary({ not: a })
  t.not(next, a, `${next.hostname} took the lease after node-1's SIGTERM`)
  t.equal((await cluster.leaseHolder()).hostname, next.hostname)
  await a.start()
  t.equal((await a.info()).primary.hostname, next.hostname, 'node-1 restarted as a replica of the new primary')

  // crash: LiteFS and its app together.
  const aApp = apps[0]
  await a.crash()
  t.notOk(a.running)
  t.notOk(aApp.running, 'crash() kills the app too')

  const pids = [cluster.consul.pid, ...cluster.nodes.map(n => n.pid), ...apps.map(x => x.pid)]
  const spaces = [cluster.network?.hub, ...cluster.nodes.map(n => n.netns)]
  await cluster.close()
  closed = true
  for (const pid of pids) t.notOk(alive(pid), `process ${pid} ended`)
  for (const n of cluster.nodes) t.notOk(mounted(n.mount), `${n.hostname}'s mount is gone`)
  for (const ns of spaces) t.notOk(namespaces().includes(ns as string), `namespace ${ns} deleted`)
  t.notOk(existsSync(cluster.dir), 'the directory is removed')
})

t.test('on loopback (no namespaces): Consul on 127.0.0.1, the configured TTL and lock delay in LiteFS\'s session, a SIGTERM failover; partition() says it needs namespaces', async t => {
  const cluster = await startConsulCluster({ nodes: 2, promote: true, ttl: '12s', lockDelay: '2s' })
  t.teardown(() => cluster.close())
  const [a, b] = cluster.nodes
  t.equal(a.ip, '127.0.0.1')
  t.match(readFileSync(a.configPath, 'utf8'), /promote: true/)
  // What litefs-proxy config wrote reached Consul: the lease's session has that TTL and lock delay.
  const holder = await cluster.leaseHolder()
  const [session] = await (await request(`${cluster.consul.url}/v1/session/info/${holder.session as string}`)).body.json() as Array<{ TTL: string, LockDelay: number }>
  t.same([session.TTL, session.LockDelay], ['12s', 2_000_000_000], 'LiteFS created its Consul session with the configured ttl and lock-delay')
  t.throws(() => a.partition(), /needs the netns option/)
  await a.stop()
  t.equal(await cluster.waitForPrimary({ not: a }), b)
})

t.test('a test process that dies without close() leaves no process, mount, namespace or directory (the exit hook)', async t => {
  // The harness as a user imports it (dist), in a process that throws once its cluster runs.
  const script = `
    import { startConsulCluster } from ${JSON.stringify(new URL('../../dist/esm/testing/litefs-cluster.js', import.meta.url).href)}
    const cluster = await startConsulCluster({ nodes: 2, netns: true })
    const app = cluster.nodes[1].spawnApp(process.execPath, ['-e', 'setInterval(() => {}, 1000)'])
    console.log(JSON.stringify({ dir: cluster.dir, mounts: cluster.nodes.map(n => n.mount), spaces: [cluster.network.hub, ...cluster.nodes.map(n => n.netns)],
      pids: [cluster.consul.pid, app.pid, ...cluster.nodes.map(n => n.pid)] }))
    throw new Error('the test crashed')`
  let out = ''
  const code = await new Promise<number | null>(resolve => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] })
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.on('exit', resolve)
  })
  t.not(code, 0, 'the process died of its error')
  const left = JSON.parse(out) as { dir: string, mounts: string[], spaces: string[], pids: number[] }
  // SIGKILL takes effect asynchronously: give the kernel a moment.
  await until('every process ended', () => left.pids.every(pid => !alive(pid)), 5_000).catch(() => {})
  for (const pid of left.pids) t.notOk(alive(pid), `process ${pid} ended`)
  for (const m of left.mounts) t.notOk(mounted(m), `${m} unmounted`)
  for (const ns of left.spaces) t.notOk(namespaces().includes(ns), `namespace ${ns} deleted`)
  t.notOk(existsSync(left.dir), 'its directory removed')
})

leavesNothingBehind(t)
