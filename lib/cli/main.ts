#!/usr/bin/env node
// `litefs-proxy <command>`: `serve` (the sidecar) and `config` (a litefs.yml).
import { run } from './run.js'

run(process.argv.slice(2), { out: s => process.stdout.write(s), err: s => process.stderr.write(s), env: process.env })
  .then(code => { if (code !== undefined) process.exitCode = code }, (err: Error) => {
    process.stderr.write(`litefs-proxy: ${err.message}\n`)
    process.exitCode = 1
  })
