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
  ['mode', r => r.plugin ? 'plugin ON' : 'plugin OFF'],
  ['pairs', r => r.pairs],
  ['requests', r => r.requests],
  ['stale reads', r => `${r.stale} (${percent(r.stale, r.pairs)})`],
  ['errors', r => errors(r.errors)],
  ['p50 ms', r => r.p50.toFixed(1)],
  ['p99 ms', r => r.p99.toFixed(1)],
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

function percent (n, of) {
  return `${of === 0 ? 0 : Math.round((n / of) * 100)}%`
}
