#!/usr/bin/env node
// `litefs-proxy <command>`: `serve` (the sidecar) and `config` (a litefs.yml).
import { run } from './run.js'

const code = await run(process.argv.slice(2), { out: s => process.stdout.write(s), err: s => process.stderr.write(s), env: process.env })
if (code !== undefined) process.exitCode = code // serve runs on until SIGTERM/SIGINT
