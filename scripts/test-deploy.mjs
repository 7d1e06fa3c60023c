// npm run test:deploy — examples/docker-compose run for real with Docker
// (test/docker/). Needs a Docker host: the docker CLI, the compose plugin, and the
// images the example files name (scripts/install-docker-host.sh makes all of them,
// never pulling from Docker Hub). Under CI a missing piece fails the run with one
// line naming it; elsewhere the suite is skipped, visibly.
//
// dockerd: when it does not answer, this starts it (scripts/dockerd.sh) and stops
// it again when the tests end, so the machine is left as it was found; a dockerd
// that was already running is left alone.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const IMAGES = ['node:20-bookworm-slim', 'flyio/litefs:0.5', 'nginx:1.27-alpine', 'hashicorp/consul:1.14.11']
const underCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'
const sh = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' })

function give_up (why) {
  const line = `test:deploy: cannot run the docker-compose example: ${why} (scripts/install-docker-host.sh makes this machine a Docker host)`
  if (underCI) { console.error(line); process.exit(1) }
  console.warn(`${line} — SKIPPED (under CI this fails)`)
  process.exit(0)
}

if (sh('docker', ['--version']).status !== 0) give_up('the docker CLI was not found')
if (sh('docker', ['compose', 'version']).status !== 0) give_up('`docker compose` (the compose CLI plugin) was not found')
if (!existsSync('/dev/fuse')) give_up('/dev/fuse does not exist (LiteFS in the containers needs FUSE)')

let startedHere = false
if (sh('docker', ['version', '--format', '{{.Server.Version}}']).status !== 0) {
  const r = sh('bash', ['scripts/dockerd.sh', 'start'])
  if (r.status !== 0) give_up(`dockerd could not be started: ${r.stderr.trim()}`)
  startedHere = r.stdout.trim() === 'started'
}
function stopDockerd () {
  if (!startedHere) return
  startedHere = false
  const r = sh('bash', ['scripts/dockerd.sh', 'stop'])
  if (r.status !== 0) console.error(`test:deploy: stopping the dockerd started for the tests: ${r.stderr.trim()}`)
}
process.on('exit', stopDockerd)

const missing = IMAGES.filter(i => sh('docker', ['image', 'inspect', i]).status !== 0)
if (missing.length > 0) { stopDockerd(); give_up(`images missing: ${missing.join(', ')}`) }

// The variants bring up containers one project at a time: one file, no parallelism.
// The first build of the app images takes minutes: a generous bound per file.
const tap = spawnSync(process.execPath, ['node_modules/tap/dist/esm/run.mjs', '--disable-coverage', '--jobs=1', '--timeout=2400', ...process.argv.slice(2), 'test/docker/compose.test.ts'], { stdio: 'inherit' })
stopDockerd()
process.exit(tap.status ?? 1)
