// The reporter `npm test` uses (package.json "tap": { "reporter" }): tap's terse
// report — what test files print, every failing test in full (diff, source,
// stack), then the totals — with two changes:
// - when stdout is not a terminal (a pipe, a CI log) the totals are drawn once,
//   at the end: ink redraws its live area on every assertion, which a terminal
//   overwrites in place but a pipe keeps (thousands of lines of escape codes);
// - a test file's stderr is always shown. tap's own <Log> subscribes to a file's
//   stderr only when it happens to re-render after the file's process exists, so
//   a file that crashes on import fails with its error message dropped.
// The raw TAP, with tap's `# { total, pass, fail }` line, is for machines:
// `--output-file` (.ci/run uses it).
import React, { useLayoutEffect, useState } from 'react'
import { Box, Static } from 'ink'
import { ResultDetailList, StdioLogLine, SuiteSummary } from '@tapjs/reporter/components'
import { useIsDone } from '@tapjs/reporter/hooks'

const h = React.createElement
const failed = ({ counts, parser }) => !!counts.fail || !!counts.todo || !parser.ok

/** Non-TAP stdout and all stderr of every test file, in arrival order. */
function useOutput (test) {
  const [lines, setLines] = useState([])
  useLayoutEffect(() => {
    const all = []
    const add = (name, fd, text) => {
      all.push({ name, fd, text, previous: all[all.length - 1] })
      setLines([...all])
    }
    // 'spawn' comes before the process exists, 'process' once it does.
    const onSpawn = sub => sub.once('process', proc => proc.stderr?.on('data', c => add(sub.name, 2, String(c))))
    const onStart = sub => sub.parser.on('extra', c => add(sub.name, 1, String(c)))
    test.on('spawn', onSpawn)
    test.on('subtestStart', onStart)
    return () => { test.off('spawn', onSpawn); test.off('subtestStart', onStart) }
  }, [test])
  return lines
}

export default function Quiet ({ test }) {
  const done = useIsDone(test)
  const lines = useOutput(test)
  // The summary's counters listen from the start; off a terminal it is shown once
  // the run is over. A terminal of no known height (a pty nobody sized, as under
  // `script`) counts as none: ink would clear the screen for every frame.
  const live = process.stdout.isTTY === true && (process.stdout.rows ?? 0) > 0
  return h(Box, { flexDirection: 'column' },
    h(Static, { items: lines }, (line, key) => h(StdioLogLine, { ...line, key })),
    h(ResultDetailList, { test, filter: failed }),
    h(Box, { display: live || done ? 'flex' : 'none' }, h(SuiteSummary, { test })))
}
