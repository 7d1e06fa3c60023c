// `npm test`'s output as a pipe, a log file or CI gets it (test/helpers/reporter.mjs):
// what the test files printed, the totals, and no stray escape sequence (issue
// 23: tap showed the cursor with `ESC[?25h` into the pipe, and ink drew its
// empty live area, with codes erasing it, after each line kept).
import t from 'tap'
import { spawn } from 'node:child_process'

const root = new URL('..', import.meta.url).pathname

t.test('a green run through a pipe: what the files printed, the totals, and no escape sequence anywhere', async t => {
  // A tap run of its own, not a subtest of this one: none of the runner's variables.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^_?TAP/i.test(k) && k !== 'NODE_OPTIONS'))
  const child = spawn(process.execPath, ['node_modules/tap/dist/esm/run.mjs', '--disable-coverage', 'test/fixtures/reporter/prints.test.mjs'], { cwd: root, env: { ...env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { out += b })
  t.equal(await new Promise(resolve => child.once('exit', resolve)), 0)
  // Blocks separated by one blank line; the file's two streams may come in either order.
  t.equal(out[0], '\n')
  const blocks = out.slice(1).split('\n\n')
  t.same(blocks.slice(0, 2).sort(), ['1> test/fixtures/reporter/prints.test.mjs\na line on stdout', '2> test/fixtures/reporter/prints.test.mjs\na line on stderr'])
  t.same(blocks.slice(2), ['Asserts:  1 pass  0 fail\nFiles:    1 pass  0 fail\n'])
  t.notMatch(out, /\x1b/, 'no escape sequence') // eslint-disable-line no-control-regex
})
