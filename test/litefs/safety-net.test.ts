// The harness's exit-hook safety net (lib/testing/safety-net.ts) on a signal:
// it cleans up, then the process dies of the signal, whoever else listens —
// alone, beside a handler that re-raises only once it is the last listener
// (signal-exit's way, as tap's own is), and beside one that ignores it. No
// LiteFS is needed: what is checked is that the process ends.
import t from 'tap'
import { spawn } from 'node:child_process'
import { leavesNothingBehind } from './leftovers.js'

const NET = new URL('../../lib/testing/safety-net.ts', import.meta.url).pathname

const OTHERS = {
  none: '',
  'a handler that re-raises once it is the last (signal-exit)': "process.on('SIGTERM', function last () { if (process.listenerCount('SIGTERM') === 1) { process.removeListener('SIGTERM', last); process.kill(process.pid, 'SIGTERM') } })",
  'a handler that ignores it': "process.on('SIGTERM', () => {})"
} as const

for (const [label, other] of Object.entries(OTHERS)) {
  t.test(`SIGTERM beside ${label}: the process dies of it`, async t => {
    const code = `const { installSafetyNet } = await import(${JSON.stringify(NET)}); installSafetyNet(); ${other}; setInterval(() => {}, 1000); console.log('ready')`
    const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => { if (String(c).includes('ready')) resolve() })
      child.once('exit', () => { reject(new Error('the child exited before it was ready')) })
    })
    child.kill('SIGTERM')
    // Bounded by the tap timeout: a process that never ends fails the test there.
    const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.once('exit', (c, s) => { resolve([c, s]) }))
    t.same([status, signal], [null, 'SIGTERM'], 'died of SIGTERM')
  })
}

leavesNothingBehind(t)
