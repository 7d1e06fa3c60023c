/**
 * A child process's output as lines, for the logs the harness keeps of LiteFS
 * and Consul (what to keep, and how many, is the caller's).
 */
import type { Readable } from 'node:stream'

/** Calls `onLine` for every line of `stream`, the last one even without a newline. */
export function eachLine (stream: Readable | null | undefined, onLine: (line: string) => void): void {
  if (!stream) return
  stream.setEncoding('utf8')
  let partial = ''
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) onLine(line)
  })
  stream.on('end', () => { if (partial) onLine(partial); partial = '' })
}
