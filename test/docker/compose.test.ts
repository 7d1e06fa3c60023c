// `npm run test:deploy`: examples/docker-compose run for real, with Docker, as its
// README says, and driven only through the load balancer's port published on
// 127.0.0.1. Three variants, one after the other:
//   compose.yaml          the Python app behind `litefs-proxy serve`, static lease
//   compose.fastify.yaml  the Fastify example with the in-process plugin, static lease
//   compose.consul.yaml   the Python app behind `serve`, a Consul lease (automatic failover)
// For each: build and start (`up --build --detach --wait`); the health endpoint;
// 200 write→read pairs with the cookie (0 stale, 0 lost, 0 doubled) and writes
// landing on replicas; `docker compose stop` of the primary under load (static:
// writes held, then 503 with Retry-After; Consul: delivered once to the new
// primary); `docker compose start` (it rejoins, and consistency holds); `down
// --volumes` leaves no container, network, volume or mount. Figures are printed
// with t.comment. Every project is taken down when the test ends, however it
// ends (test/docker/docker.ts).
//
// Needs a Docker host (scripts/install-docker-host.sh); scripts/test-deploy.mjs
// checks that first, starts dockerd if needed, and runs this file.
// DEPLOY_VARIANTS=sidecar,fastify,consul picks variants (default: all).
import t, { type Test } from 'tap'
import { createServer } from 'node:net'
import { containerIds, docker, hostMounts, Project, removeBuildLeftovers, takeDown, tail, track } from './docker.js'
import { closeAgent, figures, finalNotes, load, pairs, send, show, sleep, type Answer, type User, type Write } from './history.js'

interface Variant { key: string, file: string, lease: 'static' | 'consul', app: string }
const VARIANTS: Variant[] = [
  { key: 'sidecar', file: 'examples/docker-compose/compose.yaml', lease: 'static', app: 'Python behind litefs-proxy serve' },
  { key: 'fastify', file: 'examples/docker-compose/compose.fastify.yaml', lease: 'static', app: 'Fastify with the plugin' },
  { key: 'consul', file: 'examples/docker-compose/compose.consul.yaml', lease: 'consul', app: 'Python behind litefs-proxy serve, Consul lease' }
]
const chosen = (process.env.DEPLOY_VARIANTS ?? '').split(',').filter(Boolean)
const NODES = ['node-1', 'node-2', 'node-3']

t.teardown(closeAgent)

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
    s.once('error', reject)
  })
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/** What the health endpoint said, through nginx, from which node. */
interface Health { at: number, status: number, node: string, role?: string, primary?: string | null, state?: string }

/**
 * Ask the health endpoint through nginx until every node in `want` has answered
 * 200 (nginx picks the node), or `timeoutMs` passes. Returns each node's last answer.
 */
async function healthOfAll (base: string, nodeOf: Map<string, string>, want: string[], timeoutMs: number): Promise<Map<string, Health>> {
  const seen = new Map<string, Health>()
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const h = await health(base, nodeOf)
    if (h.node !== '') seen.set(h.node, h)
    if (want.every(n => seen.get(n)?.status === 200)) break
    await sleep(100)
  }
  return seen
}

async function health (base: string, nodeOf: Map<string, string>): Promise<Health> {
  const a: Answer = await send(`${base}/litefs/health`)
  const body = typeof a.body === 'object' && a.body !== null ? a.body : {}
  return { at: a.ended, status: a.status, node: nodeOf.get(a.upstream.replace(/:\d+$/, '')) ?? '', role: body.role, primary: body.primary, state: body.status }
}

/** Address -> service, from Docker's view of the running containers. */
async function nodeMap (p: Project): Promise<Map<string, string>> {
  const m = new Map<string, string>()
  for (const [service, ip] of await p.addresses()) m.set(ip, service)
  return m
}

const ok = (s: number): boolean => s >= 200 && s <= 299

async function variant (t: Test, v: Variant): Promise<void> {
  const p = new Project(v.file, await freePort())
  const base = `http://127.0.0.1:${p.port}`
  const prefix = `${v.key}-${Date.now().toString(36)}`
  let downDone = false
  const showLogs = async (): Promise<void> => { t.comment(`last log lines of ${p.name}:\n${tail(await p.logs(), 80)}`) }
  t.teardown(async () => {
    if (!downDone && !t.passing()) await showLogs()
    await takeDown(p)
  })

  // A project left by a run that was killed: ours by its name; taken down first.
  const before = await p.leftovers()
  if (before.containers.length + before.networks.length + before.volumes.length > 0) {
    t.comment(`${p.name}: taking down what an earlier run left: ${JSON.stringify(before)}`)
    await takeDown(p)
  }
  const mountsBefore = hostMounts()
  track(p)

  // --- up, as the README says --------------------------------------------------------------
  const containersBefore = await containerIds()
  const build = await p.compose(['build'], 900_000)
  const builderLeft = await removeBuildLeftovers(containersBefore)
  if (builderLeft > 0) t.comment(`${v.key}: removed ${builderLeft} container(s) the failed build left`)
  if (build.code !== 0) throw new Error(`docker compose -f ${p.file} build exited ${build.code}:\n${tail(build.stderr + build.stdout, 40)}`)
  const cached = /CACHED|Using cache/.test(build.stdout + build.stderr)
  const upRun = await p.must(['up', '--build', '--detach', '--wait'], 300_000)
  t.comment(`${v.key}: build ${secs(build.ms)}${cached ? ' (layers from the cache)' : ''}, then up --build --detach --wait ${secs(upRun.ms)}`)

  let nodeOf = await nodeMap(p)
  t.same([...nodeOf.values()].filter(s => s.startsWith('node-')).sort(), NODES, 'three nodes running, each with an address on the nodes network')

  // --- the health endpoint ----------------------------------------------------------------
  let roles = await healthOfAll(base, nodeOf, NODES, 60_000)
  for (const n of NODES) {
    const h = roles.get(n)
    t.ok(h?.status === 200 && h.state === 'ok', `${n}: GET /litefs/health through nginx answers 200 ok`, { found: h })
  }
  const primaries = NODES.filter(n => roles.get(n)?.role === 'primary')
  t.ok(primaries.length === 1, 'exactly one node says it is the primary', { roles: Object.fromEntries(roles) })
  const primary = primaries[0]
  if (v.lease === 'static') t.equal(primary, 'node-1', 'static lease: node-1 is the primary')
  for (const n of NODES.filter(n => n !== primary)) t.equal(roles.get(n)?.primary, primary, `${n}: a replica naming ${primary} as its primary`)
  const replicaAt = (w: Write): boolean => { const n = nodeOf.get(w.answer.upstream.replace(/:\d+$/, '')); return n !== undefined && n !== primary }

  // --- 200 write→read pairs through nginx, with the cookie --------------------------------------
  const users = await pairs(base, `${prefix}-pairs`, 10, 20)
  const f = figures(users, await finalNotes(users), replicaAt)
  t.comment(`${v.key}: ${show(f)}`)
  t.ok(f.acknowledged === 200 && f.pairs === 200, '200 writes acknowledged, each read back (200 pairs)', f)
  t.equal(f.stale, 0, 'no stale read')
  t.equal(f.lost, 0, 'no acknowledged write lost')
  t.equal(f.doubled, 0, 'no write applied twice')
  t.ok(f.onReplica > 0, 'writes landing on a replica were acknowledged (sent on to the primary)')
  const relayed = users.flatMap(u => u.writes).filter(w => ok(w.answer.status) && replicaAt(w))
  t.ok(relayed.every(w => w.cookie !== undefined), "a write answered through a replica carries the primary's cookie")

  // --- stop the primary under load ----------------------------------------------------------
  let running = true
  const samples: Health[] = []
  const poller = (async () => { while (running) { samples.push(await health(base, nodeOf)); await sleep(200) } })()
  const loadUsers = load(base, `${prefix}-load`, 6, () => running)
  await sleep(1_500)
  const t0 = performance.now()
  const stop = await p.must(['stop', primary], 60_000)
  const stopped = performance.now()
  let newPrimary: Health | undefined
  if (v.lease === 'static') {
    await sleep(8_000) // a held write waits 5 s for a primary, then 503
  } else {
    // Until a write sent after the stop has been acknowledged, then 3 s more; 40 s at most.
    const end = Date.now() + 40_000
    for (;;) {
      newPrimary = samples.find(s => s.at > t0 && s.role === 'primary' && s.node !== primary && s.node !== '')
      if (newPrimary !== undefined || Date.now() > end) break
      await sleep(100)
    }
    await sleep(3_000)
  }
  running = false
  const loaders = await loadUsers
  await poller
  const writes = loaders.flatMap(u => u.writes)
  const during = writes.filter(w => w.answer.began >= stopped)
  t.comment(`${v.key}: docker compose stop ${primary}: ${secs(stop.ms)}; ${writes.length} writes under load, ${during.length} sent after the stop returned`)
  if (v.lease === 'static') {
    const held = during.filter(w => w.answer.status === 503)
    t.ok(held.length > 0, 'static lease, primary stopped: writes are held, then answered 503', { statuses: count(during.map(w => w.answer.status)) })
    t.ok(held.every(w => w.retryAfter !== undefined && w.code !== undefined), 'each 503 has Retry-After and a code', { codes: count(held.map(w => `${w.code ?? ''} retry-after=${w.retryAfter ?? ''}`)) })
    t.equal(during.filter(w => ok(w.answer.status)).length, 0, 'no write acknowledged while the only candidate is stopped')
    const waits = held.map(w => w.answer.ended - w.answer.began)
    if (waits.length > 0) t.comment(`${v.key}: held before the 503: ${secs(Math.min(...waits))} to ${secs(Math.max(...waits))}`)
  } else {
    t.ok(newPrimary !== undefined, `Consul lease: another node took the lease after ${primary} stopped`, { last: samples.slice(-5) })
    if (newPrimary !== undefined) t.comment(`${v.key}: failover: ${newPrimary.node} primary ${secs(newPrimary.at - t0)} after docker compose stop ${primary} began`)
    const firstAck = during.filter(w => ok(w.answer.status)).sort((a, b) => a.answer.ended - b.answer.ended)[0]
    if (firstAck !== undefined) t.comment(`${v.key}: first write acknowledged after the stop: ${secs(firstAck.answer.ended - t0)} after it began`)
    t.ok(during.length > 0 && during.every(w => ok(w.answer.status)), 'every write sent during the failover was delivered (held, then acknowledged by the new primary)', { statuses: count(during.map(w => w.answer.status)) })
  }

  // --- start it again: it rejoins ---------------------------------------------------------
  const start = await p.must(['start', primary], 60_000)
  nodeOf = await nodeMap(p) // a restarted container may have a new address
  roles = await healthOfAll(base, nodeOf, NODES, 90_000)
  t.comment(`${v.key}: docker compose start ${primary}: ${secs(start.ms)}`)
  t.ok(NODES.every(n => roles.get(n)?.status === 200), `${primary} rejoins: every node answers 200 through nginx`, { roles: Object.fromEntries(roles) })
  const nowPrimary = NODES.filter(n => roles.get(n)?.role === 'primary')
  if (v.lease === 'static') t.same(nowPrimary, [primary], `static lease: ${primary} is the primary again`)
  else t.same(nowPrimary, [newPrimary?.node], `Consul lease: ${newPrimary?.node ?? 'the new primary'} keeps the lease, ${primary} follows it`)

  const afterFailover = figures(loaders, await finalNotes(loaders), () => false)
  const lostOld = loaders.flatMap(u => u.writes).filter(w => ok(w.answer.status) && w.answer.began < stopped)
  const finalOf = await finalNotes(loaders)
  const missingOld = lostOld.filter(w => !(finalOf.get(loaders.find(u => u.name === w.user) as User) ?? []).includes(w.text)).length
  t.comment(`${v.key}: under load, after the rejoin: ${show(afterFailover)}; acknowledged before the stop returned (by ${primary}) and missing afterwards: ${missingOld}`)
  t.equal(afterFailover.doubled, 0, 'no write applied twice through the failover')
  t.equal(afterFailover.stale, 0, 'no stale read through the failover (of writes that survived)')
  const refused = loaders.flatMap(u => u.writes).filter(w => w.answer.status === 503)
  t.equal(refused.filter(w => (finalOf.get(loaders.find(u => u.name === w.user) as User) ?? []).includes(w.text)).length, 0, 'no write answered 503 was applied')

  const again = await pairs(base, `${prefix}-again`, 3, 10)
  const g = figures(again, await finalNotes(again), replicaAt)
  t.comment(`${v.key}: after the rejoin: ${show(g)}`)
  t.ok(g.pairs === 30 && g.stale === 0 && g.lost === 0 && g.doubled === 0, 'after the rejoin: 30 pairs, none stale, lost or doubled', g)

  // --- down --volumes leaves nothing -------------------------------------------------------
  if (!t.passing()) await showLogs()
  downDone = true
  const down = await p.must(['down', '--volumes'], 120_000)
  t.comment(`${v.key}: down --volumes ${secs(down.ms)}`)
  t.same(await p.leftovers(), { containers: [], networks: [], volumes: [] }, 'down --volumes: no container, network or volume left')
  t.same(hostMounts(), mountsBefore, 'no mount left (overlay, FUSE)')
  await takeDown(p) // forgets it; nothing left to remove
}

function count (xs: Array<string | number>): Record<string, number> {
  const o: Record<string, number> = {}
  for (const x of xs) o[String(x)] = (o[String(x)] ?? 0) + 1
  return o
}

for (const v of VARIANTS) {
  if (chosen.length > 0 && !chosen.includes(v.key)) continue
  t.test(`${v.key}: ${v.app} (${v.file})`, async t => { await variant(t, v) })
}

// docker is used by the imports above only through child processes; name it so a
// missing CLI fails here with one line rather than in the middle of a variant.
t.before(async () => {
  const r = await docker(['compose', 'version'])
  if (r.code !== 0) throw new Error(`docker compose not usable: ${r.stderr.trim()}`)
})
