#!/usr/bin/env node
// `litefs-proxy <command>`: `serve` (the sidecar) and `config` (a litefs.yml).
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run } from './run.js'

/** This package's version, from its package.json a few directories up (lib/cli/ in a checkout, dist/esm/cli/ installed). */
function ownVersion (): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  let pkg: { name?: string, version?: string } = {}
  for (let i = 0; i < 4 && pkg.name !== 'litefs-proxy'; i++) {
    dir = dirname(dir)
    try { pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) } catch {} // none here: further up
  }
  return pkg.version
}

const code = await run(process.argv.slice(2), { out: s => process.stdout.write(s), err: s => process.stderr.write(s), env: process.env, version: ownVersion() })
if (code !== undefined) process.exitCode = code // serve runs on until SIGTERM/SIGINT
