// Compare two profiles written by bench/profile.mjs (the same app with and without
// litefs-proxy): self time per function in microseconds per request, largest
// differences first. `node bench/profile-diff.mjs read-cookie-bare read-cookie-plugin`
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = dirname(fileURLToPath(import.meta.url))
function perRequest (name) {
  const dir = join(BENCH, 'results', 'profiles', name)
  const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'))
  const requests = JSON.parse(readFileSync(join(dir, 'load.json'), 'utf8')).requests
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map()
  // timeDeltas[i] is the time before sample i: charge it to that sample's function.
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|esm)\//, '$1/').replace(/^file:\/\/.*\/bench\//, 'bench/')}:${f.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  for (const [k, v] of self) self.set(k, v / requests)
  return self
}
const [a, b] = process.argv.slice(2, 4).map(perRequest)
const keys = new Set([...a.keys(), ...b.keys()])
const rows = [...keys].filter(k => !k.startsWith('(idle)')).map(k => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0), a.get(k) ?? 0, b.get(k) ?? 0])
const busy = m => [...m].filter(([k]) => !k.startsWith('(idle)')).reduce((s, [, v]) => s + v, 0)
console.log(`busy µs/request: ${busy(a).toFixed(2)} → ${busy(b).toFixed(2)} (+${(busy(b) - busy(a)).toFixed(2)})`)
for (const [k, d, x, y] of rows.sort((p, q) => q[1] - p[1]).slice(0, Number(process.argv[4] ?? 25))) {
  console.log(`${d >= 0 ? '+' : ''}${d.toFixed(2).padStart(6)} µs  (${x.toFixed(2)} → ${y.toFixed(2)})  ${k}`)
}
