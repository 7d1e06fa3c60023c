// The reporter `npm test` uses (package.json "tap": { "reporter" }). Like tap's
// terse report — what test files print, then every failing test in full (diff,
// source, stack), then the totals — but written so that a pipe, a log file and
// CI get exactly that, once:
// - Everything that stays is written through ink's <Static>, which prints as it
//   renders. tap's own reporters draw failures and totals in ink's live area,
//   which off a terminal is either redrawn on every assertion (thousands of lines
//   of escape codes in a pipe) or, under CI, printed only by an exit hook that
//   does not run when tap also writes --output-file: a red CI run said nothing.
// - On a terminal (of known height) the totals are also shown live while tests run.
// - A test file's stderr is always shown: tap's <Log> subscribes to it only when
//   it happens to re-render after the file's process exists, so a file that
//   crashed on import failed with its error message dropped.
// The raw TAP, with tap's `# { total, pass, fail }` line, is for machines:
// `--output-file` (.ci/run uses it).
import React, { useLayoutEffect, useState } from 'react'
import { Box, Static, Text } from 'ink'
import { StdioLogLine, SuiteSummary, TestSummary } from '@tapjs/reporter/components'

// Off a terminal, only what stays is written. The live area is empty there,
// but ink still draws it — an empty frame ("\n") after each static item, then
// escape codes erasing it before the next — and tap shows the cursor when the
// run completes (`ESC[?25h`): stray bytes in a pipe or a log file. Dropped.
const TERMINAL_ONLY = /^(?:\n|(?:\x1b\[(?:2K|1A|G|\?25h))+)$/
if (process.stdout.isTTY !== true) {
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = (chunk, ...rest) => TERMINAL_ONLY.test(String(chunk)) ? true : write(chunk, ...rest)
}

const h = React.createElement
const failed = t => !t.results?.ok || !!t.counts.fail || !!t.counts.todo

/** Non-TAP stdout and all stderr of every test file as they come, every test file once it ends, and the end. */
function useRun (test) {
  const [run, setRun] = useState({ output: [], finished: [], done: false })
  useLayoutEffect(() => {
    const output = []
    const finished = []
    let done = false
    const update = () => setRun({ output: [...output], finished: [...finished], done })
    const add = (name, fd, text) => { output.push({ name, fd, text, previous: output[output.length - 1] }); update() }
    // 'spawn' comes before the process exists, 'process' once it does.
    const onSpawn = sub => sub.once('process', proc => proc.stderr?.on('data', c => add(sub.name, 2, String(c))))
    const onStart = sub => sub.parser.on('extra', c => add(sub.name, 1, String(c)))
    const onEnd = sub => { finished.push(sub); update() }
    const onComplete = () => { done = true; update() }
    test.on('spawn', onSpawn)
    test.on('subtestStart', onStart)
    test.on('subtestEnd', onEnd)
    test.on('complete', onComplete)
    return () => {
      test.off('spawn', onSpawn)
      test.off('subtestStart', onStart)
      test.off('subtestEnd', onEnd)
      test.off('complete', onComplete)
    }
  }, [test])
  return run
}

function Count ({ n, label, color, strong }) {
  return h(Text, { color: n > 0 ? color : undefined, bold: strong && n > 0, dimColor: n === 0 }, `${n} ${label}`)
}

/** The end of the run: the failing test files in full, then the totals. */
function End ({ test, finished }) {
  const c = test.counts
  const badFiles = finished.filter(failed)
  return h(Box, { flexDirection: 'column' },
    ...badFiles.map((t, key) => h(Box, { key, marginTop: 1 }, h(TestSummary, { test: t, details: true }))),
    h(Box, { marginTop: 1, gap: 2 },
      h(Text, { bold: true }, 'Asserts:'),
      h(Count, { n: c.pass, label: 'pass', color: 'green' }),
      h(Count, { n: c.fail, label: 'fail', color: 'red', strong: true }),
      c.skip > 0 && h(Count, { n: c.skip, label: 'skip', color: 'cyan' }),
      c.todo > 0 && h(Count, { n: c.todo, label: 'todo', color: 'magenta' })),
    h(Box, { gap: 2 },
      h(Text, { bold: true }, 'Files:  '),
      h(Count, { n: finished.length - badFiles.length, label: 'pass', color: 'green' }),
      h(Count, { n: badFiles.length, label: 'fail', color: 'red', strong: true })),
    // Set by tap before the end when coverage is short: its table is above.
    badFiles.length === 0 && process.exitCode && h(Text, { color: 'red', bold: true },
      `Exit code ${process.exitCode} with no failing test: coverage below 100%? (table above)`))
}

export default function Quiet ({ test }) {
  const { output, finished, done } = useRun(test)
  // A terminal of no known height (a pty nobody sized, as under `script`) counts
  // as none: ink would clear the screen for every frame.
  const live = process.stdout.isTTY === true && (process.stdout.rows ?? 0) > 0
  const items = done ? [...output, { end: true }] : output
  return h(Box, { flexDirection: 'column' },
    h(Static, { items }, (item, key) => item.end
      ? h(End, { key, test, finished })
      : h(StdioLogLine, { ...item, key })),
    live && !done ? h(SuiteSummary, { test }) : null)
}
