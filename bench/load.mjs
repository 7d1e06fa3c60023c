// The load generator, always in a process of its own (never the server's).
//   node bench/load.mjs '{"url":"http://127.0.0.1:3000/items","connections":50,"duration":5}'
// prints one JSON result (autocannon). Forked by bench/index.mjs, it takes
// commands over IPC instead, so one warm process serves the whole run:
//   { id, cmd: 'autocannon', opts }  → throughput and latency (autocannon 8)
//   { id, cmd: 'probe', opts }       → microsecond latencies from bench/raw-client.mjs
import autocannon from 'autocannon'
import { Conn, percentiles, requestBytes } from './raw-client.mjs'

async function runAutocannon (opts) {
  const result = await autocannon({
    url: opts.url,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
    connections: opts.connections ?? 50,
    pipelining: 1,
    duration: opts.duration ?? 2
  })
  return {
    rps: result.requests.total / result.duration, // (autocannon's average is per whole second)
    requests: result.requests.total,
    seconds: result.duration,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, mean: result.latency.average, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx
  }
}

/**
 * `connections` keep-alive connections, each sending one request at a time:
 * back to back, or paced so that all together offer `rate` requests/s.
 * Latency of every request in microseconds.
 */
async function probe (opts) {
  const { port, connections = 1, durationMs = 1000, warmupMs = 200, rate } = opts
  const bytes = requestBytes(opts)
  const conns = await Promise.all(Array.from({ length: connections }, async () => await Conn.open(port)))
  const latencies = []
  const statuses = {}
  const start = performance.now()
  const warmEnd = start + warmupMs
  const end = warmEnd + durationMs
  const interval = rate === undefined ? 0 : 1000 * connections / rate
  await Promise.all(conns.map(async (conn, i) => {
    let next = start + interval * i / connections
    while (performance.now() < end) {
      if (interval > 0) {
        const wait = next - performance.now()
        if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
        next += interval
      }
      const t0 = process.hrtime.bigint()
      const res = await conn.request(bytes)
      if (performance.now() >= warmEnd) {
        latencies.push(Number(res.at - t0) / 1000)
        statuses[res.status] = (statuses[res.status] ?? 0) + 1
      }
    }
  }))
  for (const c of conns) c.close()
  return { latencyUs: percentiles(latencies), statuses, rps: latencies.length / (durationMs / 1000) }
}

const cpu = async () => { const c = process.cpuUsage(); return { cpuUs: c.user + c.system } }
const commands = { autocannon: runAutocannon, probe, cpu }

if (process.send !== undefined) {
  process.on('message', async msg => {
    try {
      process.send({ id: msg.id, result: await commands[msg.cmd](msg.opts) })
    } catch (err) {
      process.send({ id: msg.id, error: err.stack ?? String(err) })
    }
  })
  process.send({ ready: true, pid: process.pid })
} else {
  const opts = JSON.parse(process.argv[2] ?? '{}')
  const cmd = opts.cmd ?? 'autocannon'
  process.stdout.write(JSON.stringify(await commands[cmd](opts)) + '\n')
}
