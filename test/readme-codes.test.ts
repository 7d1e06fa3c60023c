// Every answer litefs-proxy gives instead of the app's (lib/core/answers.ts) is
// documented in README.md's "What it answers" table, and the table names no
// code that no longer exists (issue 18 removed LITEFS_BAD_UPGRADE, added
// LITEFS_ANSWER_TOO_LARGE).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { ANSWERS } from '../lib/core/answers.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const section = readme.slice(readme.indexOf('## What it answers'), readme.indexOf('\n## ', readme.indexOf('## What it answers') + 1))
const rows = section.split('\n').filter(l => /^\| [^|]+ \| `LITEFS_/.test(l))
const documented = rows.map(l => /`(LITEFS_[A-Z_]+)`/.exec(l.split('|')[2])?.[1])

t.same([...documented].sort(), Object.keys(ANSWERS).sort(), 'one row per answer code, none stale')
for (const row of rows) {
  const code = /`(LITEFS_[A-Z_]+)`/.exec(row.split('|')[2])?.[1] as keyof typeof ANSWERS
  const spec = ANSWERS[code]
  t.match(row.split('|')[1], new RegExp(`^ ${spec.status}( \\+ \`Retry-After\`)? $`), `${code}: the table says ${spec.status}${spec.retryAfter ? ' + Retry-After' : ''}`)
  t.equal(row.includes('Retry-After'), spec.retryAfter, `${code}: Retry-After as answers.ts says`)
}
