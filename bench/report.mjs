// The bench's report: a markdown table (printed and saved) and a hand-written
// SVG of the wait-release latency distribution. No dependencies.
// `node bench/report.mjs [results.json]` redraws both from a saved run (default latest.json).
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const fmt = (n, d = 0) => n === undefined || Number.isNaN(n) ? '–' : Number(n).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const ms = (us, d = 3) => `${fmt(us / 1000, d)} ms`
const signedMs = us => `${us >= 0 ? '+' : '−'}${ms(Math.abs(us))}`
const verdict = ok => ok === undefined ? '' : ok ? 'PASS' : 'MISS'

function throughputRow (r) {
  const t = r.target
  const okRatio = t === undefined ? undefined : r.ratio >= t.minRatio
  const target = t === undefined ? '' : `≥ ${fmt(t.minRatio, 2)}×${t.borrowed ? ' ¹' : ''}`
  const cpu = `${fmt(r.baseline.usPerReq, 1)} → ${fmt(r.measured.usPerReq, 1)} (${r.measured.usPerReq >= r.baseline.usPerReq ? '+' : ''}${fmt(r.measured.usPerReq - r.baseline.usPerReq, 1)})`
  const busy = r.contended ? ` ⚠ ${fmt(r.backgroundCores, 2)} cores of other work` : ''
  const lines = [`| ${r.id} | ${r.name} | ${fmt(r.baseline.rps)} | ${fmt(r.measured.rps)} | **${fmt(r.ratio, 3)}×** (${fmt(r.spread[0], 2)}–${fmt(r.spread[1], 2)})${busy} | ${target} | ${verdict(okRatio)} | ${cpu} |`]
  if (r.latency !== undefined) {
    const l = r.latency
    const d = r.p50DeltaMs
    lines.push(`| ${r.id} | ↳ p50 latency at ${fmt(l.pacedRate)} req/s offered (50 conns, below saturation) | ${fmt(l.paced.baselineP50Ms, 3)} ms | ${fmt(l.paced.measuredP50Ms, 3)} ms | **${d >= 0 ? '+' : '−'}${fmt(Math.abs(d), 3)} ms** | ≤ +1 ms | ${verdict(d <= r.target.maxP50DeltaMs)} | p99 ${fmt(l.paced.baselineP99Ms, 2)} → ${fmt(l.paced.measuredP99Ms, 2)} ms |`)
    lines.push(`| ${r.id} | ↳ p50 latency, one connection back to back (the hop alone) | ${fmt(l.single.baselineP50Ms, 3)} ms | ${fmt(l.single.measuredP50Ms, 3)} ms | +${fmt(l.single.measuredP50Ms - l.single.baselineP50Ms, 3)} ms | | | |`)
    lines.push(`| ${r.id} | ↳ p50 latency at saturation (autocannon, whole ms) | ${fmt(l.saturated.baselineP50Ms)} ms | ${fmt(l.saturated.measuredP50Ms)} ms | +${fmt(l.saturated.measuredP50Ms - l.saturated.baselineP50Ms)} ms | | | |`)
  }
  return lines
}

export function markdown (results) {
  const m = results.meta
  const out = []
  out.push('# litefs-proxy benchmark', '')
  out.push(`Node ${m.node} · ${m.cores} cores (${m.cpu}) · ${m.platform} · ${m.date}`, '')
  out.push(`Each app under test runs in its own process; the load generator (autocannon 8, ${m.connections} connections, no pipelining) in another. ` +
    `Each comparison: a warm-up per side (3 s on an app's first comparison, 1 s after), then ${m.rounds} rounds of ${m.durationPerRunS} s in alternating order (AB, BA, …); ratio = median req/s with litefs-proxy ÷ median req/s of the same app without it (spread = the per-round ratios; a round during which other work on the machine took more than 0.15 cores is measured again). ` +
    `Run time ${m.totalSeconds} s after the build (scenarios: ${m.scenarios}).`, '')
  if (results.scenarios.length > 0) {
    out.push('## Throughput: the same app with and without litefs-proxy', '')
    out.push('| # | Scenario | Baseline req/s | With litefs-proxy req/s | Ratio (round spread) | Target | Result | Server CPU µs/req (baseline → proxy) |')
    out.push('|---|---|---:|---:|---|---|---|---|')
    for (const r of results.scenarios) out.push(...throughputRow(r))
    out.push('')
    out.push('Baselines: 1, 2 bare Fastify (same route, same request, cookie header included in 2); 3 bare Fastify POST; 4 the same POST sent straight to the primary (Fastify + plugin, primary), its CPU column counts replica + primary; 7 bare Express / bare node:http with the same routes.')
    out.push('Replica and primary are fake LiteFS nodes (real mount directory, real-format `app.db-pos`, `/events` stream with recorded event shapes); the primary commits every 1 ms (the `-pos` file is replaced and a `tx` line sent), and every write response reads `app.db-pos` for its cookie.')
    if (results.scenarios.some(r => r.target?.borrowed)) out.push('', '¹ No target was set for the Express and node:http adapters; the Fastify target of the same scenario is shown for reference.')
    out.push('')
  }
  if (results.waitRelease !== undefined) {
    out.push('## Wait release: position change → held response received by the client', '')
    out.push('One held read at a time (cookie one TXID ahead of the replica); once it is held, a random 0–2 ms pause, then the position changes. The client and the fake LiteFS share one process and one clock (`process.hrtime`); the app runs in another. ' +
      'The change is timed after the fake replaced `app.db-pos` (tmpfs) and, for the events feed, before it sends the `tx` line. ' +
      'The floor row is the same exchange without litefs-proxy or LiteFS — one message into an idle app process, one response out — i.e. what this machine\'s scheduler costs.', '')
    out.push('| Feed | Samples | p50 | p90 | p99 | max | Target (p99) | Result | Over the floor (p50 / p99) | Other work on the machine |')
    out.push('|---|---:|---:|---:|---:|---:|---|---|---|---:|')
    const floor = results.waitRelease.bare?.latencyUs
    const label = { events: 'events (`/events` `tx` line)', polling: 'polling (API off, `-pos` rewritten; pollInterval 1 ms)', bare: 'floor: bare Fastify answering a held request when another request tells it (no litefs-proxy, no LiteFS)' }
    for (const [mode, r] of Object.entries(results.waitRelease)) {
      const p = r.latencyUs
      const over = floor === undefined || mode === 'bare' ? '' : `${signedMs(p.p50 - floor.p50)} / ${signedMs(p.p99 - floor.p99)}`
      out.push(`| ${label[mode]} | ${fmt(p.n)} | ${ms(p.p50)} | ${ms(p.p90)} | ${ms(p.p99)} | ${ms(p.max)} | ${r.targetP99Ms === undefined ? '' : `≤ ${r.targetP99Ms} ms`} | ${verdict(r.pass)} | ${over} | ${fmt(r.backgroundCores, 2)} cores |`)
    }
    out.push('', '![wait-release latency distribution](wait-release.svg)', '')
  }
  if (results.scale !== undefined) {
    out.push('## Scale: N held reads (N real connections) released by one position change', '')
    out.push('Baseline: bare Fastify holding every request in an onRequest hook (where litefs-proxy holds a read) until one `POST /__release`, sent the same request bytes, cookie included (N pending requests without the plugin). Memory after a forced GC, minus the same process before the N connections opened; "per held read" = litefs-proxy\'s per-request growth minus the bare app\'s.', '')
    out.push('| N | All answered after the tx (first / p50) | Bare app answering its N pending | Heap per held read (proxy − bare) | RSS per held read (proxy − bare) ² |')
    out.push('|---:|---|---|---:|---:|')
    for (const r of results.scale.rows) {
      const p = r.plugin.release
      const b = r.bare.release
      out.push(`| ${fmt(r.n)} | **${fmt(p.allMs, 1)} ms** (${fmt(p.firstMs, 2)} / ${fmt(p.p50Ms, 1)} ms) | ${fmt(b.allMs, 1)} ms (${fmt(b.firstMs, 2)} / ${fmt(b.p50Ms, 1)} ms) | ${fmt(r.pluginHeapPerHeldReadB)} B (${fmt(r.plugin.heapPerReqB)} − ${fmt(r.bare.heapPerReqB)}) | ${fmt(r.pluginRssPerHeldReadB)} B (${fmt(r.plugin.rssPerReqB)} − ${fmt(r.bare.rssPerReqB)}) |`)
    }
    out.push('', '"All answered" is timed by the client, so it includes the client process reading N responses. ² RSS moves by pages and allocator arenas: only the largest N says much.', '')
  }
  if (results.litefs !== undefined) out.push(...litefsMarkdown(results.litefs, m))
  for (const n of results.notes) out.push(`Note: ${n}`, '')
  return out.join('\n')
}

const ratioText = r => r === undefined ? '' : `${fmt(r.ratio, 2)}× (${fmt(r.spread[0], 2)}–${fmt(r.spread[1], 2)})`

/** What a way answered, from its sanity request and its runs. */
function answerText (w) {
  const a = w.sample
  const parts = [String(a.status)]
  const cookie = a.setCookie.map(c => c.split('=')[0]).join(', ')
  if (cookie !== '') parts.push(`cookie ${cookie}`)
  if (a.flyReplay !== undefined) parts.push(`fly-replay: ${a.flyReplay}, body ${a.body === '' ? 'empty' : JSON.stringify(a.body)}`)
  if (w.non2xx > 0) parts.push(`${fmt(w.non2xx)} non-2xx`)
  if (w.rowsApplied !== undefined) parts.push(`rows applied ${fmt(w.rowsApplied)} for ${fmt(w.requests)} answered`)
  return parts.join('; ')
}

function litefsMarkdown (l, m) {
  const out = ['## Real LiteFS: the same app four ways (five on reads)', '']
  if (l.skipped !== undefined) {
    out.push(`Skipped: ${l.skipped}. (It runs wherever a litefs binary and FUSE are available: \`scripts/install-litefs.sh\`, root.)`, '')
    return out
  }
  out.push(`LiteFS ${l.meta.version === 'LiteFS development build' ? 'v0.5.14 (`go install`, which reports "development build")' : l.meta.version}, ${l.meta.nodes} nodes on loopback (static lease, FUSE mounts), on the same ${m.cores} cores as everything else. ` +
    'The app is bench/server.mjs\'s Fastify app (`GET /items` answers `{"ok":true}`, `POST /items` parses the body and commits nothing, `POST /insert` inserts a row through a kept better-sqlite3 handle on the mount, WAL). ' +
    'Ways: **bare** the app reached directly; **in-process** the same app with the Fastify plugin; **LiteFS\'s proxy** its `proxy:` section in front of the bare app; **serve** `litefs-proxy serve` (the built CLI, `--log-level warn`) in front of the bare app; on the read rows also **nginx** (`proxy_pass`, upstream keep-alive, one process, no access log, no consistency at all): the floor a proxy hop reaches on this machine; on L1–L3 also **a bare Node hop** (bench/node-hop.mjs: node:http\'s server and undici\'s dispatcher, as serve, and nothing else): the floor of a hop written in Node on serve\'s stack; and **bytes piped by Node** (bench/pipe-hop.mjs: each client connection paired with one to the app, no HTTP parsed): the floor of any hop in a Node process; and **a prototype** (bench/head-hop.mjs: paired connections, every head parsed in JS, bytes relayed): what a hop below node:http and undici could cost. ' +
    `Each scenario warms every way, then runs ${l.meta.rounds} rounds of ${l.meta.durationPerRunS} s with the ways in rotated order (round r starts with way r); req/s and latencies are medians over the rounds, × = ratio of medians (spread: the per-round ratios). ` +
    'p50/p99 under load are autocannon\'s (50 connections, whole ms); "1 conn" is one connection sending back to back (µs clock): the hops alone. ' +
    'Server CPU µs/req counts every process a request touches, both LiteFS processes included (they serve the FUSE reads and run LiteFS\'s proxy).', '')
  out.push('| # | Scenario | Way | req/s | × bare | × LiteFS\'s proxy | × nginx | p50 / p99 (50 conns) | p50 / p99 (1 conn) | CPU µs/req (of which LiteFS) | Answer |')
  out.push('|---|---|---|---:|---|---|---|---|---|---:|---|')
  for (const s of l.scenarios) {
    let first = true
    for (const [key, w] of Object.entries(s.ways)) {
      const lead = first ? `| ${s.id} | ${s.name}${s.contended ? ' ⚠ no clean round' : ''} |` : '| | |'
      first = false
      const label = key === 'plugin' || key === 'sidecar' ? `**${w.label}**` : w.label
      out.push(`${lead} ${label} | ${fmt(w.rps)} | ${key === 'bare' ? '1' : ratioText(w.vsBare)} | ${key === 'litefs' ? '1' : ratioText(w.vsLitefs)} | ${key === 'nginx' ? '1' : w.vsNginx === undefined ? '' : ratioText(w.vsNginx)} | ${fmt(w.p50Ms)} / ${fmt(w.p99Ms)} ms | ${fmt(w.single.p50Ms, 3)} / ${fmt(w.single.p99Ms, 3)} ms | ${fmt(w.usPerReq, 1)} (${fmt(w.litefsUsPerReq, 1)}) | ${answerText(w)} |`)
    }
    for (const [k, r] of Object.entries(s.pairs ?? {})) {
      if (s.paced?.[k] !== undefined) continue
      const [a, b] = k.split('/')
      out.push(`| | | ↳ ${s.ways[a].label} ÷ ${s.ways[b].label} | | **${ratioText(r)}** | | | | | | |`)
    }
    for (const [k, p] of Object.entries(s.paced ?? {})) {
      const [a, b] = k.split('/')
      out.push(`| | | ↳ ${s.ways[a].label} ÷ ${s.ways[b].label} | | **${ratioText(s.pairs[k])}** | | | p50 ${fmt(p.p50Ms[0], 3)} vs ${fmt(p.p50Ms[1], 3)} ms (${p.deltaP50Ms >= 0 ? '+' : '−'}${fmt(Math.abs(p.deltaP50Ms), 3)}), p99 ${fmt(p.p99Ms[0], 2)} vs ${fmt(p.p99Ms[1], 2)} ms at ${fmt(p.rate)} req/s offered | | | |`)
    }
  }
  out.push('')
  const l5 = l.scenarios.find(s => s.id === 'L5')
  if (l5 !== undefined) {
    const lf = l5.ways.litefs
    out.push(`L5: LiteFS's proxy on a replica, off Fly.io, answered ${lf.sample.status} with \`fly-replay: ${lf.sample.flyReplay ?? '(none)'}\` and ${lf.sample.body === '' ? 'an empty body' : `body ${JSON.stringify(lf.sample.body)}`}; ` +
      `${fmt(lf.rowsApplied)} of its ${fmt(lf.requests)} answered writes reached the primary (without Fly's edge to replay them, the write is lost; its req/s is the speed of answering, not of writing). ` +
      `litefs-proxy forwarded: in-process ${fmt(l5.ways.plugin.rowsApplied)} rows for ${fmt(l5.ways.plugin.requests)} answered, serve ${fmt(l5.ways.sidecar.rowsApplied)} for ${fmt(l5.ways.sidecar.requests)} (a few more rows than answers: requests still in flight when a run stopped). ` +
      `A bare app on the replica: \`${l5.bareOnReplica}\`.`, '')
  }
  if (l.targets.length > 0) {
    out.push('### Targets (issue 20), real LiteFS', '')
    out.push('| Measure | Target | Measured | Result |')
    out.push('|---|---|---|---|')
    for (const t of l.targets) out.push(`| ${t.measure} | ${t.target} | ${t.value} | ${verdict(t.pass)} |`)
    out.push('')
  }
  out.push('![real LiteFS: req/s of each way](litefs.svg)', '')
  for (const n of l.notes) out.push(`Note: ${n}`, '')
  return out
}

/** Horizontal bars: each scenario's ways, req/s, labelled with the ratio to the scenario's bare app. */
export function litefsSvg (results) {
  const l = results.litefs
  const colors = { bare: '#9ca3af', plugin: '#2563eb', litefs: '#d97706', sidecar: '#059669', nginx: '#0f766e', nodehop: '#a3a3a3', pipehop: '#d4d4d4', headhop: '#bef264', 'plugin-direct': '#93c5fd', 'sidecar-direct': '#6ee7b7', 'express-bare': '#9ca3af', 'express-plugin': '#7c3aed', 'http-bare': '#9ca3af', 'http-plugin': '#db2777' }
  const W = 1000
  const L = 390
  const R = 300
  const BAR = 16
  const GAP = 4
  const HEAD = 22
  const T = 64
  const esc = x => String(x).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const max = Math.max(...l.scenarios.flatMap(s => Object.values(s.ways).map(w => w.rps)))
  const pw = W - L - R
  const x = v => L + v / max * pw
  let y = T
  const parts = []
  for (const s of l.scenarios) {
    parts.push(`<text x="12" y="${y + 14}" font-weight="600" fill="#111">${esc(`${s.id} ${s.name}`)}</text>`)
    y += HEAD
    for (const [key, w] of Object.entries(s.ways)) {
      const ratio = key === 'bare' || key.endsWith('-bare') ? '' : w.vsBare !== undefined ? ` · ${w.vsBare.ratio}× bare` : ''
      const pair = Object.entries(s.pairs ?? {}).find(([k]) => k.startsWith(`${key}/`))
      const extra = key.startsWith('express-p') || key.startsWith('http-p') ? ` · ${pair?.[1].ratio}× bare` : ''
      const note = key === 'litefs' && s.id === 'L5' ? ' · fly-replay, 0 applied' : ''
      parts.push(`<text x="${L - 8}" y="${y + BAR - 4}" text-anchor="end" fill="#333">${esc(w.label)}</text>`)
      parts.push(`<rect x="${L}" y="${y}" width="${Math.max(1, x(w.rps) - L).toFixed(1)}" height="${BAR}" fill="${colors[key] ?? '#64748b'}"${note ? ' fill-opacity="0.45"' : ''}/>`)
      parts.push(`<text x="${(x(w.rps) + 6).toFixed(1)}" y="${y + BAR - 4}" fill="#111">${esc(`${Math.round(w.rps).toLocaleString('en-US')}${ratio}${extra}${note}`)}</text>`)
      y += BAR + GAP
    }
    y += 10
  }
  const H = y + 36
  const head = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600" fill="#111">litefs-proxy on real LiteFS: requests per second of each way, one run</text>`,
    `<text x="12" y="40" fill="#555">${esc(`Node ${results.meta.node}, ${results.meta.cores} cores, ${results.meta.date.slice(0, 10)}; 50 connections; median of ${l.meta.rounds} rounds of ${l.meta.durationPerRunS} s; bars share one scale`)}</text>`
  ]
  for (const v of niceTicks(max)) {
    head.push(`<line x1="${x(v).toFixed(1)}" y1="${T - 6}" x2="${x(v).toFixed(1)}" y2="${y - 6}" stroke="#eef0f3"/>`)
    head.push(`<text x="${x(v).toFixed(1)}" y="${y + 8}" text-anchor="middle" fill="#666">${v.toLocaleString('en-US')}</text>`)
  }
  head.push(`<text x="${L + pw / 2}" y="${y + 26}" text-anchor="middle" fill="#222">requests per second</text>`)
  return [...head, ...parts, '</svg>'].join('\n') + '\n'
}

function niceTicks (max) {
  const step = 10 ** Math.floor(Math.log10(max / 4))
  const unit = [1, 2, 5, 10].map(k => k * step).find(u => max / u <= 6)
  const ticks = []
  for (let v = 0; v <= max; v += unit) ticks.push(v)
  return ticks
}

/** A CDF of the wait-release latencies of each feed (log time axis), the floor and the targets drawn in. */
export function waitReleaseSvg (results) {
  const W = 760
  const H = 420
  const L = 64
  const R = 24
  const T = 60
  const B = 56
  const pw = W - L - R
  const ph = H - T - B
  const names = { events: 'events feed', polling: 'polling feed', bare: 'floor (bare app, no LiteFS)' }
  const colors = { events: '#2563eb', polling: '#d97706', bare: '#9ca3af' }
  const series = Object.entries(results.waitRelease).map(([mode, r]) => ({ mode, xs: [...r.raw].sort((a, b) => a - b).map(v => v / 1000), p: r.latencyUs, target: r.targetP99Ms }))
  const max = Math.max(...series.map(s => s.xs[s.xs.length - 1]))
  const lo = 0.05
  const hi = max > 20 ? 50 : max > 10 ? 20 : 10
  const x = v => L + (Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * pw
  // Percentile axis stretched toward the tail: 0, 50, 90, 99, 99.9 % equally spaced by decade.
  const TAIL = 3
  const y = q => T + (1 - Math.min(TAIL, -Math.log10(Math.max(1 - q, 10 ** -TAIL))) / TAIL) * ph
  const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const parts = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`)
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  parts.push(`<text x="${L}" y="22" font-size="15" font-weight="600" fill="#111">litefs-proxy: wait-release latency (position change → held response at the client)</text>`)
  parts.push(`<text x="${L}" y="40" fill="#555">${esc(`Node ${results.meta.node}, ${results.meta.cores} cores, ${results.meta.date.slice(0, 10)}; ${series[0]?.p.n ?? 0} held reads per curve, one at a time; share answered within x`)}</text>`)
  for (const v of [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50].filter(v => v >= lo && v <= hi)) {
    parts.push(`<line x1="${x(v).toFixed(1)}" y1="${T}" x2="${x(v).toFixed(1)}" y2="${T + ph}" stroke="#e5e7eb"/>`)
    parts.push(`<text x="${x(v).toFixed(1)}" y="${T + ph + 16}" text-anchor="middle" fill="#444">${v}</text>`)
  }
  for (const q of [0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999]) {
    parts.push(`<line x1="${L}" y1="${y(q).toFixed(1)}" x2="${L + pw}" y2="${y(q).toFixed(1)}" stroke="${q === 0.99 || q === 0.5 ? '#d1d5db' : '#f0f1f3'}"/>`)
    parts.push(`<text x="${L - 6}" y="${(y(q) + 4).toFixed(1)}" text-anchor="end" fill="#444">${+(q * 100).toFixed(1)}%</text>`)
  }
  parts.push(`<text x="${L + pw / 2}" y="${H - 14}" text-anchor="middle" fill="#222">milliseconds</text>`)
  parts.push(`<text transform="translate(14 ${T + ph / 2}) rotate(-90)" text-anchor="middle" fill="#222">held reads answered (tail stretched)</text>`)
  parts.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#9ca3af"/>`)
  let ty = T + ph - 8
  for (const s of series) {
    if (s.target === undefined) continue
    // The target: 99 % answered within s.target ms — a corner the curve must pass left of.
    parts.push(`<path d="M${x(s.target).toFixed(1)},${T + ph} V${y(0.99).toFixed(1)} H${L + pw}" fill="none" stroke="${colors[s.mode]}" stroke-dasharray="5 4" stroke-width="1.2"/>`)
    parts.push(`<text x="${(x(s.target) + 4).toFixed(1)}" y="${ty}" fill="${colors[s.mode]}">${s.mode} target: 99 % within ${s.target} ms</text>`)
    ty -= 16
  }
  for (const s of [...series].sort((a, b) => (a.mode === 'bare' ? -1 : 0) - (b.mode === 'bare' ? -1 : 0))) {
    const n = s.xs.length
    let d = `M${x(s.xs[0]).toFixed(1)},${y(0).toFixed(1)}`
    const every = Math.max(1, Math.floor(n / 600))
    for (let i = 0; i < n; i += every) d += ` H${x(s.xs[i]).toFixed(1)} V${y((i + 1) / n).toFixed(1)}`
    d += ` H${x(s.xs[n - 1]).toFixed(1)} V${y(1).toFixed(1)}`
    parts.push(`<path d="${d}" fill="none" stroke="${colors[s.mode]}" stroke-width="${s.mode === 'bare' ? 1.5 : 2}"${s.mode === 'bare' ? ' stroke-dasharray="3 3"' : ''}/>`)
    if (s.mode !== 'bare') for (const [q, v] of [[0.5, s.p.p50], [0.99, s.p.p99]]) parts.push(`<circle cx="${x(v / 1000).toFixed(1)}" cy="${y(q).toFixed(1)}" r="3.5" fill="${colors[s.mode]}"/>`)
  }
  let ly = T + 18
  for (const s of series) {
    const text = `${names[s.mode]}: p50 ${(s.p.p50 / 1000).toFixed(2)} · p99 ${(s.p.p99 / 1000).toFixed(2)} · max ${(s.p.max / 1000).toFixed(2)} ms`
    parts.push(`<line x1="${L + 10}" y1="${ly - 4}" x2="${L + 30}" y2="${ly - 4}" stroke="${colors[s.mode]}" stroke-width="2"${s.mode === 'bare' ? ' stroke-dasharray="3 3"' : ''}/>`)
    parts.push(`<text x="${L + 36}" y="${ly}" fill="#111">${esc(text)}</text>`)
    ly += 18
  }
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results')
  const results = JSON.parse(readFileSync(process.argv[2] ?? join(dir, 'latest.json'), 'utf8'))
  writeFileSync(join(dir, 'latest.md'), markdown(results))
  if (results.waitRelease !== undefined) writeFileSync(join(dir, 'wait-release.svg'), waitReleaseSvg(results))
  if (results.litefs?.scenarios !== undefined) writeFileSync(join(dir, 'litefs.svg'), litefsSvg(results))
  console.log(markdown(results))
}
