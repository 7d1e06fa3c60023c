// The demo's workload and its checks. Virtual users each write a note and at
// once read their notes back, through the balancer, like a browser: one cookie
// jar per user, no stickiness. A read that does not contain the note just
// written is a stale read. At the end, the final database must hold every
// acknowledged note exactly once.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'

const COOKIE = 'litefs-txid' // the plugin's default cookie name

/** A user's cookie jar: only the plugin's cookie matters to this app. */
class Jar {
  value = undefined

  store (setCookie) {
    for (const line of [setCookie ?? []].flat()) {
      if (line.startsWith(`${COOKIE}=`)) this.value = line.slice(COOKIE.length + 1).split(';')[0]
    }
  }

  get header () {
    return this.value === undefined ? undefined : `${COOKIE}=${this.value}`
  }
}

/**
 * Run `users` virtual users against `url`, each doing `rounds` write→read
 * pairs. `onPair(done)` is called after each pair (progress, and the cue for
 * the failover act, which happens while the users keep going).
 *
 * With `pace`, each user starts a pair every `pace` ms (or as soon as the last
 * one ends, if it took longer): the load is then what the users ask for, not as
 * much as the process can take. Without it every user starts its next pair at
 * once, the process runs flat out, and a request's latency is mostly its wait
 * behind the other users' requests.
 *
 * Returns what the clients saw: every request's latency (also by kind: write,
 * read), the stale reads, the failed requests by status (0: no answer) and one
 * by one (kind, status, the error code and message from the body, the write's
 * token), and every write with its client-made token, outcome and timing.
 *
 * @param {{ url: string, users: number, rounds: number, pace?: number, onPair?: (done: number) => void }} options
 */
export async function runUsers ({ url, users, rounds, pace = 0, onPair = () => {} }) {
  // Timeouts above the plugin's own holds (5 s): a request that outlives them is a failure, not a wait.
  const dispatcher = new Agent({ connections: users, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const result = { pairs: 0, requests: 0, stale: 0, errors: {}, failures: [], latencies: [], byKind: { write: [], read: [] }, writes: [] }
  const failed = (kind, answer, token) => {
    result.errors[answer.status] = (result.errors[answer.status] ?? 0) + 1
    // The plugin's, the balancer's and Fastify's error bodies all say `error`; the first two a `code`.
    result.failures.push({ kind, status: answer.status, code: answer.body?.code, message: answer.body?.error, token, started: answer.started, ended: answer.ended })
  }

  const timed = async (path, options) => {
    result.requests++
    const started = performance.now()
    let answer
    try {
      const res = await request(url + path, { ...options, dispatcher })
      answer = { status: res.statusCode, headers: res.headers, body: await res.body.json().catch(() => undefined) }
    } catch {
      answer = { status: 0 } // no answer at all: refused, reset, timed out
    }
    const ended = performance.now()
    result.latencies.push(ended - started)
    result.byKind[options.method === 'POST' ? 'write' : 'read'].push(ended - started)
    return { ...answer, started, ended }
  }

  const user = async (u) => {
    const name = `user-${String(u).padStart(3, '0')}`
    const jar = new Jar()
    // Paced users start their pairs `pace` ms apart (staggered, so as not to come in bursts).
    const start = performance.now() + (pace * u) / users
    for (let round = 0; round < rounds; round++) {
      const due = start + pace * round - performance.now()
      if (due > 0) await sleep(due)
      const token = `${name}/note-${round}` // unique: how the final check finds each note
      const post = await timed('/notes', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(jar.header && { cookie: jar.header }) },
        body: JSON.stringify({ user: name, text: token })
      })
      jar.store(post.headers?.['set-cookie'])
      const acked = post.status === 201
      result.writes.push({ token, acked, started: post.started, ended: post.ended })
      if (!acked) {
        failed('write', post, token)
      } else {
        const get = await timed(`/notes?user=${encodeURIComponent(name)}`, {
          method: 'GET',
          headers: jar.header && { cookie: jar.header }
        })
        if (get.status !== 200) failed('read', get, token)
        else if (!get.body.notes.some(n => n.id === post.body.id && n.text === token)) result.stale++
      }
      result.pairs++
      onPair(result.pairs)
    }
  }

  try {
    await Promise.all(Array.from({ length: users }, (_, u) => user(u)))
  } finally {
    await dispatcher.close()
  }
  return result
}

/**
 * Check the final database against what the clients were told. Every
 * acknowledged write must be there exactly once (lost: missing; doubled: more
 * than once). A write that failed for its client may or may not have been
 * applied; it must not be there twice either.
 *
 * @param {import('better-sqlite3').Database} db
 * @param {{ token: string, acked: boolean }[]} writes
 */
export function checkWrites (db, writes) {
  const copies = new Map(db.prepare('SELECT text, count(*) AS n FROM notes GROUP BY text').raw().all())
  const check = { acked: 0, lost: 0, doubled: 0, failed: 0, failedApplied: 0 }
  for (const { token, acked } of writes) {
    const n = copies.get(token) ?? 0
    if (n > 1) check.doubled++
    if (acked) {
      check.acked++
      if (n === 0) check.lost++
    } else {
      check.failed++
      if (n > 0) check.failedApplied++
    }
  }
  return check
}

/** The p-th percentile (0–100) of `values`, nearest rank. */
export function percentile (values, p) {
  if (values.length === 0) return 0
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]
}
