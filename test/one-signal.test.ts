// One signal per problem (issue 23, item 9): a misconfiguration reaches the
// user once — through the app's logger where it shows warn lines, else as a
// process warning on stderr — never both. Each adapter, run as a user runs
// it (its own process), with the loggers users give it; counted in what the
// process prints, stdout and stderr together.
import t from 'tap'
import { spawn } from 'node:child_process'

// Nine processes, each loading the TypeScript sources, on a machine busy with the other test files.
t.setTimeout(180_000)

const helper = new URL('./helpers/misconfigured-app.ts', import.meta.url).pathname
// The test runner hides our process warnings from test output; the user's process does not.
const execArgv = process.execArgv.filter(a => !a.includes('LitefsProxyWarning'))

async function printed (adapter: string, logger: string, mount: string): Promise<string> {
  const child = spawn(process.execPath, [...execArgv, helper], { env: { ...process.env, ADAPTER: adapter, LOGGER: logger, MOUNT: mount, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { out += b })
  const code = await new Promise(resolve => child.once('exit', resolve))
  if (code !== 0) throw new Error(`the app exited ${String(code)}: ${out}`)
  return out
}

const CASES = [
  // adapter, logger, where the one line goes
  ['fastify', 'default', 'a process warning (Fastify logs nothing by default)'],
  ['fastify', 'pino', "Fastify's logger"],
  ['fastify', 'pino-error', 'a process warning (the logger hides warn lines)'],
  ['express', 'default', 'the console (the default logger)'],
  ['express', 'pino', 'the logger'],
  ['express', 'pino-error', 'a process warning (the logger hides warn lines)'],
  ['http', 'default', 'the console (the default logger)'],
  ['http', 'pino', 'the logger'],
  ['http', 'pino-error', 'a process warning (the logger hides warn lines)']
] as const

// Nine processes: started together, each checked in its own test.
const runs = new Map(CASES.map(([adapter, logger]) => {
  const run = printed(adapter, logger, `/nonexistent-${adapter}-${logger}`)
  run.catch(() => {}) // a failure is its test's to report, when it awaits it
  return [`${adapter} ${logger}`, run]
}))

for (const [adapter, logger, where] of CASES) {
  t.test(`${adapter}, logger ${logger}: said once, by ${where}`, async t => {
    const mount = `/nonexistent-${adapter}-${logger}`
    const out = await (runs.get(`${adapter} ${logger}`) as Promise<string>)
    const lines = out.split('\n').filter(l => l.includes(`the mount ${mount} does not exist`))
    t.equal(lines.length, 1, `one line says it:\n${out}`)
    const asWarning = /LitefsProxyWarning/.test(lines[0] ?? '')
    t.equal(asWarning, where.startsWith('a process warning'), `by ${where}`)
  })
}
