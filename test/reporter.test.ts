// `npm test`'s output as a pipe, a log file or CI gets it (test/helpers/reporter.mjs):
// the totals and nothing after them — no stray escape sequence (issue 23:
// tap showed the cursor with `ESC[?25h` into the pipe).
import t from 'tap'
import { spawn } from 'node:child_process'

const root = new URL('..', import.meta.url).pathname

t.test('a green run through a pipe: the totals, and no escape sequence anywhere', async t => {
  // A tap run of its own, not a subtest of this one: none of the runner's variables.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^_?TAP/i.test(k) && k !== 'NODE_OPTIONS'))
  const child = spawn(process.execPath, ['node_modules/tap/dist/esm/run.mjs', '--disable-coverage', 'test/heap.test.ts'], { cwd: root, env: { ...env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { out += b })
  t.equal(await new Promise(resolve => child.once('exit', resolve)), 0)
  t.match(out, /Asserts: {2}\d+ pass {2}0 fail\nFiles: {4}1 pass {2}0 fail\n/)
  t.notMatch(out, /\x1b/, 'no escape sequence') // eslint-disable-line no-control-regex
})
