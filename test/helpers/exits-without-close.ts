// Run as a child process: an Express app and a node:http app follow a LiteFS API
// (in another process); their servers close, their proxies are never closed.
// The process must exit by itself — the event stream, its reconnects and the
// polling timers hold nothing open. The parent kills it if it does not.
import express from 'express'
import { fork } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { litefs } from '../../lib/express.js'
import { wrap } from '../../lib/http.js'
import { until } from './fake-litefs.js'

const api = fork(new URL('./api-process.ts', import.meta.url).pathname, { execArgv: process.execArgv })
const port = await new Promise<number>(resolve => api.once('message', m => resolve(m as number)))
api.unref()
api.channel?.unref()
const mount = mkdtempSync(join(tmpdir(), 'exits-'))
process.on('exit', () => { rmSync(mount, { recursive: true, force: true }) }) // leave nothing behind
writeFileSync(join(mount, '.lag'), '+000000000\n')
const quiet = { debug () {}, info () {}, warn () {}, error () {} }
const options = { db: 'app.db', mount, api: `http://127.0.0.1:${port}`, logger: quiet }
const proxy = litefs(options)
const listener = wrap((_req, res) => { res.end() }, options)
const servers = [createServer(express().use(proxy)), createServer(listener)]
for (const s of servers) s.listen(0, '127.0.0.1')
await until(() => proxy.core.state.role === 'primary' && listener.core.state.role === 'primary', 'streaming')
for (const s of servers) s.close()
const guard = setTimeout(() => { console.error('still running 10 s after the servers closed'); process.exit(1) }, 10_000)
guard.unref()
process.on('exit', () => { api.kill() })
