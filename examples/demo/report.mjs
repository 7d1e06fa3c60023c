// What the demo prints: a progress bar while a run goes, then the table. Plain
// text, no dependency.

const WIDTH = 30

/**
 * A progress bar on stderr, redrawn in place at most every 100 ms. Where
 * stderr is not a terminal (CI, a pipe) it stays silent: a log full of
 * carriage returns helps nobody. Events print on their own line either way.
 */
export function progressBar (label, stream = process.stderr) {
  const live = stream.isTTY === true
  let drawnAt = 0
  let line = ''
  const draw = () => stream.write(`\r\x1b[2K${line}`)
  return {
    update (done, total) {
      if (!live) return
      const now = Date.now()
      if (done < total && now - drawnAt < 100) return
      drawnAt = now
      const filled = Math.round((done / total) * WIDTH)
      line = `${label.padEnd(12)}[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(Math.floor((done / total) * 100)).padStart(3)}%  ${done}/${total} pairs`
      draw()
    },
    event (text) {
      if (live) stream.write('\r\x1b[2K')
      console.log(`  ${label}: ${text}`)
      if (live) draw()
    },
    done () {
      if (live) stream.write('\r\x1b[2K')
    }
  }
}

const COLUMNS = [
  ['run', r => r.label],
  ['pairs', r => r.pairs],
  ['stale reads', r => `${r.stale} (${percent(r.stale, r.pairs)})`],
  ['errors', r => errors(r.errors)],
  // Writes and reads apart: one percentile over both would mix two different things.
  ['write ms p50/p99', r => `${r.byKind.write.p50.toFixed(1)} / ${r.byKind.write.p99.toFixed(1)}`],
  ['read ms p50/p99', r => `${r.byKind.read.p50.toFixed(1)} / ${r.byKind.read.p99.toFixed(1)}`],
  ['forwarded writes', r => r.forwardedWrites],
  ['held reads', r => r.heldReads]
]

/** One row per run, columns aligned; the first left-aligned, numbers right. */
export function table (runs) {
  const rows = [COLUMNS.map(([title]) => title), ...runs.map(r => COLUMNS.map(([, cell]) => String(cell(r))))]
  const widths = COLUMNS.map((_, c) => Math.max(...rows.map(row => row[c].length)))
  return rows.map(row => row.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join('  ')).join('\n')
}

/** Failed requests by status: "0", or "3 (502×2, no answer×1)". */
export function errors (byStatus) {
  const entries = Object.entries(byStatus)
  const count = entries.reduce((sum, [, n]) => sum + n, 0)
  if (count === 0) return '0'
  return `${count} (${entries.map(([status, n]) => `${status === '0' ? 'no answer' : status}×${n}`).join(', ')})`
}

/**
 * What each failed request was, in plain words, grouped: what answered, why,
 * and for writes what the final database says (applied or not; a write the
 * client was told failed must not be there twice, nor be lost if acknowledged).
 * `closing` is the node that was shutting down, if any.
 */
export function explainFailures (failures, closing) {
  const groups = new Map()
  for (const f of failures) {
    const why = reason(f, closing)
    const key = `${f.kind} ${f.status} ${f.code} ${why}`
    groups.set(key, [...(groups.get(key) ?? []), { ...f, why }])
  }
  return [...groups.values()].map(group => {
    const [f] = group
    const n = group.length
    const what = `${n} ${f.kind}${n === 1 ? '' : 's'} answered ${f.status === 0 ? 'nothing' : f.status}${f.code === undefined ? '' : ` ${f.code}`}`
    let outcome = ''
    if (f.kind === 'write') {
      const applied = group.filter(w => w.copies > 0).length
      const doubled = group.filter(w => w.copies > 1).length
      outcome = applied === 0
        ? ` Final database: ${n === 1 ? 'not applied' : 'none of them applied'}, so nothing lost (the user was told it failed) and nothing doubled.`
        : ` Final database: ${applied} of ${n} applied although the user was told it failed${doubled > 0 ? `, ${doubled} of them twice` : ''}.`
    }
    return `${what}: ${f.why}.${outcome}`
  })
}

function reason (f, closing) {
  const node = closing ?? 'the node'
  if (f.code === 'LITEFS_FORWARD_FAILED') {
    const cause = /\((\w+)\)/.exec(f.message ?? '')?.[1]
    if (/before anything was sent/.test(f.message ?? '')) return `a replica could not send it to ${node} at all (${cause}), and answered 502`
    const broke = closing === undefined
      ? 'forwarded by a replica to the primary; the connection broke before an answer'
      : `forwarded by a replica to ${node} as ${node} shut down; ${node} closed the kept-alive connection before answering`
    return `${broke}${cause === undefined ? '' : ` (${cause})`}, and litefs-proxy, which never resends a write that may have arrived, answered 502`
  }
  if (f.status === 503 && f.code === undefined && f.message === 'Service Unavailable') {
    return `refused by ${node}'s Fastify while it closed (503 to a request arriving on an open connection then), before any handler ran`
  }
  if (f.code === 'LITEFS_NO_PRIMARY') return `no primary was known in time (${f.message})`
  if (f.code === 'LITEFS_CLOSED') return 'the plugin of the node that received it was shutting down'
  if (f.code === 'BAD_GATEWAY') return 'the balancer got no answer from the node it chose, and does not resend a write'
  if (f.status === 0) return 'no answer within 10 s, the user gave up'
  return f.message ?? 'no explanation in the answer'
}

function percent (n, of) {
  return `${of === 0 ? 0 : Math.round((n / of) * 100)}%`
}
