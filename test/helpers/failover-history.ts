// The history checker of the failover suite (test/litefs/failover.test.ts):
// what every request did, who held the lease in Consul over time, and when the
// faults were made, checked afterwards against the final database. It owns
// the record types and the six properties; making the requests, polling
// Consul and reading the database are the suite's.
//
// Times are milliseconds on one clock (`now()`: performance.timeOrigin +
// performance.now(), so sub-millisecond and never going back).
//
// "The lease holder at that moment" has the resolution of the polling. A poll
// of Consul is answered at some instant between the poll's start and end, so
// a sample says "H held the lease somewhere in [at, atEnd]". An acknowledgement
// is taken to have happened somewhere in its request's [start, end] (the commit
// is inside, and nothing tells where). A write acknowledged by node N counts as
// a split-brain acknowledgement only when N was not the holder in ANY sample
// that could describe an instant of [start, end]: the last sample that ended
// before the request started, every sample overlapping the request, and the
// first sample that started after it ended. So it errs towards not counting:
// a lease that went N → M → N between two polls is invisible, and a request
// that overlaps a change of holder is never counted. Requests not bracketed by
// samples on both sides are reported as unchecked, not as clean.

export const now = (): number => performance.timeOrigin + performance.now()

export interface RequestRecord {
  kind: 'write' | 'read'
  /** The unique token the write inserts, or that the read looks for. */
  token: string
  /** The client that made it (each client reads back its own writes). */
  client: number
  start: number
  end: number
  /** HTTP status, or undefined when no answer came (connection error, client timeout). */
  status: number | undefined
  /** An error answer's `code` (litefs-proxy's one-line JSON body), when it had one. */
  code?: string
  /** The node whose app handled the request (its x-node answer header): for a forwarded write, the primary's. */
  node: string | undefined
  /** A write: the TXID cookie its answer set. A read: the cookie it carried (its own write's). */
  cookie: string | undefined
  /** A read: whether the answer contained `token`. */
  found?: boolean
  /** Why there was no answer. */
  error?: string
}

export interface LeaseSample {
  /** When the poll was sent and when its answer arrived: the holder was seen somewhere in between. */
  at: number
  atEnd: number
  /** The lease hostname of the holder, or undefined when the lease was free (or Consul did not answer: `error`). */
  holder: string | undefined
  error?: string
}

export interface FaultMark {
  at: number
  /** e.g. 'crash', 'sigterm'. */
  kind: string
  /** The node the fault was made on (the primary, in the suite). */
  node: string
}

export interface History {
  requests: RequestRecord[]
  lease: LeaseSample[]
  faults: FaultMark[]
}

export interface FailoverTime {
  fault: FaultMark
  /** From the fault to the end of the first acknowledged write by another node, or undefined when none came before the next fault (or the end). */
  toNewPrimaryMs: number | undefined
  newPrimary: string | undefined
  /** From the fault to the end of the first acknowledged write by any node (the old primary, if it came back first). */
  toAnyAckMs: number | undefined
}

export interface Report {
  writes: number
  /** Writes answered 2xx. */
  acked: number
  /** Tokens acknowledged 2xx but absent from the final database. */
  lost: string[]
  /** Tokens present more than once in the final database. */
  doubled: string[]
  /** Tokens answered with a 503 (which says nothing was applied) and yet present. */
  refusedButApplied: string[]
  /** Reads with their own write's cookie, answered 2xx, that did not see that write, the write acknowledged and not lost. */
  staleOwnReads: RequestRecord[]
  /** Writes acknowledged by a node that did not hold the lease at any moment of the request (see the header). */
  splitBrain: RequestRecord[]
  /** Acknowledged writes the lease samples do not bracket. */
  unchecked: number
  /** Requests whose answer (or failure) came later than `boundMs` after they started. */
  outsideBound: RequestRecord[]
  /** Status (or 'none'), with the error answer's code after a slash when it had one → how many requests got it. */
  statuses: Record<string, number>
  failovers: FailoverTime[]
}

const ok = (s: number | undefined): boolean => s !== undefined && s >= 200 && s < 300

/** The samples that may describe an instant of [start, end], or undefined when the history does not reach both sides. */
function samplesAround (lease: readonly LeaseSample[], start: number, end: number): LeaseSample[] | undefined {
  let before: LeaseSample | undefined
  let after: LeaseSample | undefined
  const inside: LeaseSample[] = []
  for (const s of lease) {
    if (s.error !== undefined) continue
    if (s.atEnd <= start) { if (before === undefined || s.atEnd > before.atEnd) before = s } else if (s.at >= end) { if (after === undefined || s.at < after.at) after = s } else inside.push(s)
  }
  if (before === undefined || after === undefined) return undefined
  return [before, ...inside, after]
}

/**
 * Checks `h` against `final`: token → how many times it is in the final
 * database of the surviving primary. `boundMs`: the longest an answer may take.
 */
export function checkHistory (h: History, final: ReadonlyMap<string, number>, boundMs: number): Report {
  const writes = h.requests.filter((r) => r.kind === 'write')
  const acked = writes.filter((r) => ok(r.status))
  const lostSet = new Set(acked.filter((r) => (final.get(r.token) ?? 0) === 0).map((r) => r.token))
  const ackedWithCookie = new Set(acked.filter((r) => r.cookie !== undefined).map((r) => r.token))
  const statuses: Record<string, number> = {}
  for (const r of h.requests) {
    const key = r.status === undefined ? 'none' : r.code === undefined ? String(r.status) : `${r.status}/${r.code}`
    statuses[key] = (statuses[key] ?? 0) + 1
  }
  const splitBrain: RequestRecord[] = []
  let unchecked = 0
  for (const w of acked) {
    const around = samplesAround(h.lease, w.start, w.end)
    if (around === undefined) { unchecked++; continue }
    if (!around.some((s) => s.holder === w.node)) splitBrain.push(w)
  }
  const faults = [...h.faults].sort((a, b) => a.at - b.at)
  const failovers = faults.map((fault, i): FailoverTime => {
    const until = faults[i + 1]?.at ?? Infinity
    const after = acked.filter((w) => w.end >= fault.at && w.end < until).sort((a, b) => a.end - b.end)
    const elsewhere = after.find((w) => w.node !== fault.node)
    return {
      fault,
      toNewPrimaryMs: elsewhere === undefined ? undefined : elsewhere.end - fault.at,
      newPrimary: elsewhere?.node,
      toAnyAckMs: after[0] === undefined ? undefined : after[0].end - fault.at,
    }
  })
  return {
    writes: writes.length,
    acked: acked.length,
    lost: [...lostSet],
    doubled: [...final].filter(([, n]) => n > 1).map(([token]) => token),
    refusedButApplied: writes.filter((r) => r.status === 503 && (final.get(r.token) ?? 0) > 0).map((r) => r.token),
    staleOwnReads: h.requests.filter((r) => r.kind === 'read' && r.cookie !== undefined && ok(r.status) && r.found === false &&
      ackedWithCookie.has(r.token) && !lostSet.has(r.token)),
    splitBrain,
    unchecked,
    outsideBound: h.requests.filter((r) => r.end - r.start > boundMs),
    statuses,
    failovers,
  }
}

/** One row per report, as a fixed-width table (the suite prints one per fault kind). */
export function formatReports (title: string, rows: ReadonlyArray<{ label: string, report: Report }>): string {
  const head = ['trial', 'writes', 'acked', 'lost', 'doubled', '503-applied', 'stale-own', 'split-brain', 'unchecked', '>bound', 'failover ms', 'statuses']
  const lines = rows.map(({ label, report: r }) => [
    label, r.writes, r.acked, r.lost.length, r.doubled.length, r.refusedButApplied.length, r.staleOwnReads.length, r.splitBrain.length, r.unchecked,
    r.outsideBound.length,
    r.failovers.map((f) => f.toNewPrimaryMs === undefined ? `-(any ${f.toAnyAckMs === undefined ? '-' : Math.round(f.toAnyAckMs)})` : `${Math.round(f.toNewPrimaryMs)}→${f.newPrimary as string}`).join(' ') || '-',
    Object.entries(r.statuses).sort().map(([s, n]) => `${s}:${n}`).join(' '),
  ].map(String))
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  return [title, fmt(head), ...lines.map(fmt)].join('\n')
}
