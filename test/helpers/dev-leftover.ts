// Run as a child process: a dev cluster in TMPDIR whose process ends without
// close(), as MODE says — `exit` (process.exit), `throw` (an uncaught error),
// `sigint` (Ctrl-C, handled by exiting, as the demo does). The parent checks
// that nothing is left in TMPDIR.
import { createDevCluster } from '../../lib/dev/index.js'

const mode = process.env.MODE
await createDevCluster({ nodes: 2 })
if (mode === 'exit') process.exit(4)
if (mode === 'throw') throw new Error('a test that throws')
process.once('SIGINT', () => { process.exit(130) })
process.send?.('ready')
setInterval(() => {}, 1000) // runs until the signal comes
