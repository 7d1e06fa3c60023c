// Stands in for `litefs-proxy` in the examples' generate.sh scripts
// (LITEFS_PROXY="node test/helpers/config-capture.mjs"): runs the built
// `litefs-proxy config` with the script's own arguments, but writes what it
// would write to `--out FILE` into $CAPTURE_DIR instead (FILE's path encoded in
// the name), so a test can compare it with the committed FILE.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../../dist/esm/cli/run.js'

const args = process.argv.slice(2)
const at = args.indexOf('--out')
if (at === -1) throw new Error('config-capture: no --out in ' + JSON.stringify(args))
const out = args[at + 1]
args.splice(at, 2)
let text = ''
const code = await run(args, { out: s => { text += s }, err: s => process.stderr.write(s), env: process.env })
if (code !== 0) process.exit(code)
writeFileSync(join(process.env.CAPTURE_DIR, encodeURIComponent(out)), text)
