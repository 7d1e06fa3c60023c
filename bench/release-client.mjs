// Wait-release and scale measurements (forked by bench/index.mjs with IPC).
// This one process owns both ends of what is timed: it is LiteFS (the fake's
// mount files and /events stream, so it makes the position change) and it is
// the client (it sends the held reads and sees the answers arrive). Both
// instants come from process.hrtime.bigint() in this process; the app under
// test runs in another process.
import { FakeLitefs, hex16 } from './fake-litefs.mjs'
import { Conn, percentiles, requestBytes } from './raw-client.mjs'

let fake
let conns = []
let control
let txid = 1000n

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const us = (a, b) => Number(b - a) / 1000

async function setup ({ mode }) {
  fake = await FakeLitefs.start({ role: 'replica', txid, api: mode !== 'polling' })
  return { mount: fake.mount, api: mode === 'events' ? fake.apiUrl : false }
}

async function subscribed () {
  for (let i = 0; fake.subscribers === 0; i++) {
    if (i > 5000) throw new Error('the app never subscribed to /events')
    await sleep(1)
  }
  return { subscribers: fake.subscribers }
}

const WAITERS = requestBytes({ path: '/__waiters' })
const RELEASE = requestBytes({ method: 'POST', path: '/__release', headers: { 'content-type': 'application/json' }, body: '{}' })
async function heldCount () {
  return JSON.parse((await control.request(WAITERS)).body).n
}

/**
 * The change a LiteFS replica makes when it applies a transaction, and the
 * instant it happened: the `-pos` file is replaced (visible once the rename
 * returns), then, with the events feed, the `tx` line goes out. The time is
 * taken between the two, so it excludes the fake's own file write (real LiteFS
 * has no file to write) and includes the whole event path.
 */
function change (next, mode) {
  fake.advance(next, { event: false })
  const at = process.hrtime.bigint()
  if (mode === 'events') fake.advance(next, { file: false })
  return at
}

/**
 * One held read at a time: send it, see it held, wait a random 0–2 ms (so a
 * poller's phase is uniform), change the position, time the answer's arrival.
 */
async function samples ({ port, n, mode, cookieName = 'litefs-txid', warmup = 50 }) {
  const conn = await Conn.open(port)
  control = await Conn.open(port)
  const latencies = []
  const statuses = {}
  for (let i = 0; i < warmup + n; i++) {
    const next = txid + 1n
    const pending = conn.request(requestBytes({ headers: { cookie: `${cookieName}=${hex16(next)}` } }))
    for (let j = 0; await heldCount() < 1; j++) {
      if (j > 10_000) throw new Error('the read was never held')
    }
    await sleep(Math.random() * 2)
    let t0
    let released
    if (mode === 'bare') {
      // The floor: a bare app answering its own held request when told to by one
      // request on another connection (one message in, one response out, no LiteFS).
      t0 = process.hrtime.bigint()
      released = control.request(RELEASE)
    } else {
      t0 = change(next, mode)
    }
    txid = next
    const res = await pending
    await released
    if (i >= warmup) {
      latencies.push(us(t0, res.at))
      statuses[res.status] = (statuses[res.status] ?? 0) + 1
    }
  }
  conn.close()
  control.close()
  return { latencyUs: percentiles(latencies.slice()), raw: latencies, statuses }
}

/** Open `n` real connections, each sending one GET (with a cookie one TXID ahead, when `cookie`). */
async function open ({ port, n, cookie, batch = 250 }) {
  const bytes = requestBytes({ headers: cookie ? { cookie: `litefs-txid=${hex16(txid + 1n)}` } : {} })
  control = await Conn.open(port)
  conns = []
  for (let i = 0; i < n; i += batch) {
    conns.push(...await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => await Conn.open(port))))
  }
  const answers = conns.map(c => c.request(bytes))
  for (const a of answers) a.catch(() => {})
  return { opened: conns.length, answers }
}

let answers = []

/** Release every held read at once: a LiteFS tx (`event`) or the app's own release (`http`). */
async function release ({ how }) {
  let t0
  if (how === 'event') {
    txid += 1n
    t0 = change(txid, 'events')
  } else {
    t0 = process.hrtime.bigint()
    void control.request(RELEASE)
  }
  const results = await Promise.allSettled(answers)
  const times = []
  const statuses = {}
  for (const r of results) {
    if (r.status === 'fulfilled') {
      times.push(us(t0, r.value.at))
      statuses[r.value.status] = (statuses[r.value.status] ?? 0) + 1
    } else {
      statuses.error = (statuses.error ?? 0) + 1
    }
  }
  const p = percentiles(times)
  return { allMs: p.max / 1000, firstMs: p.min / 1000, p50Ms: p.p50 / 1000, p99Ms: p.p99 / 1000, statuses }
}

async function closeConns () {
  for (const c of conns) c.close()
  control?.close()
  conns = []
  answers = []
  return {}
}

async function teardown () {
  await closeConns()
  await fake?.close()
  fake = undefined
  return {}
}

const commands = {
  cpu: async () => { const c = process.cpuUsage(); return { cpuUs: c.user + c.system } },
  setup,
  subscribed,
  samples,
  open: async opts => { const r = await open(opts); answers = r.answers; return { opened: r.opened } },
  release,
  closeConns,
  teardown
}

process.on('message', async msg => {
  try {
    process.send({ id: msg.id, result: await commands[msg.cmd](msg.opts ?? {}) })
  } catch (err) {
    process.send({ id: msg.id, error: err.stack ?? String(err) })
  }
})
process.send({ ready: true, pid: process.pid })
