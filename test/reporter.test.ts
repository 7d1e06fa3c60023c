// `npm test`'s output as a pipe, a log file or CI gets it (test/helpers/reporter.mjs):
// what the test files printed, the totals, and no stray escape sequence (issue
// 23: tap showed the cursor with `ESC[?25h` into the pipe, and ink drew its
// empty live area, with codes erasing it, after each line kept).
import t from 'tap'
import { spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname

t.test('a green run through a pipe: what the files printed, the totals, and no escape sequence anywhere', async t => {
  // A tap run of its own, in a project of its own: its .tap/ (coverage, process
  // info) must not be this run's, and none of this runner's variables reach it.
  const project = mkdtempSync(join(tmpdir(), 'reporter-'))
  t.teardown(() => rmSync(project, { recursive: true, force: true }))
  writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'module', tap: { reporter: join(root, 'test/helpers/reporter.mjs') } }))
  symlinkSync(join(root, 'node_modules'), join(project, 'node_modules'))
  copyFileSync(join(root, 'test/fixtures/reporter/prints.test.mjs'), join(project, 'prints.test.mjs'))
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^_?TAP/i.test(k) && !['NODE_OPTIONS', 'NODE_V8_COVERAGE'].includes(k)))
  const child = spawn(process.execPath, [join(root, 'node_modules/tap/dist/esm/run.mjs'), '--disable-coverage', 'prints.test.mjs'], { cwd: project, env: { ...env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', b => { out += b })
  child.stderr.on('data', b => { out += b })
  t.equal(await new Promise(resolve => child.once('exit', resolve)), 0, out)
  // Blocks separated by one blank line; the file's two streams may come in either order.
  t.equal(out[0], '\n')
  const blocks = out.slice(1).split('\n\n')
  t.same(blocks.slice(0, 2).sort(), ['1> prints.test.mjs\na line on stdout', '2> prints.test.mjs\na line on stderr'])
  t.same(blocks.slice(2), ['Asserts:  1 pass  0 fail\nFiles:    1 pass  0 fail\n'])
  t.notMatch(out, /\x1b/, 'no escape sequence') // eslint-disable-line no-control-regex
})
