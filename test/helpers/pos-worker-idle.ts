import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PosWorker } from '../../lib/core/pos-worker.js'

// A process whose only work is a PosWorker (pos-worker.test.ts): a batch that
// is the only thing pending is still answered, and once idle the worker lets
// the process end by itself. Bounded: gives up waiting after 20 s.
const w = new PosWorker()
const started = Date.now()
while (!w.ready && Date.now() - started < 20_000) await new Promise(resolve => setTimeout(resolve, 10))
const dir = mkdtempSync(join(tmpdir(), 'pos-worker-idle-'))
writeFileSync(join(dir, 'app.db-pos'), '000000000000002a/00000000000000ab\n')
const fd = openSync(join(dir, 'app.db-pos'), 'r')
rmSync(dir, { recursive: true })
const batch = w.read([fd, fd])
// Nothing but the batch keeps this process alive now.
console.log(batch === undefined ? 'declined' : JSON.stringify(await batch))
