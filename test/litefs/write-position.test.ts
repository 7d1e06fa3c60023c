// The write cookie on real LiteFS (v0.5.14, FUSE): its `-pos` read is shared
// and asynchronous (a kept fd, read on the thread pool for exactly its 34
// bytes, answered by the kernel's page cache until LiteFS invalidates it), and
// still never below the handler's own commit — while another process commits
// through the same mount without pause, so the position moves between the
// handler's commit and the read. Every adapter and `serve`, real sockets, real
// SQLite commits. Run by `npm run test:litefs`.
import t from 'tap'
import Database from 'better-sqlite3'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startLitefsCluster, type LitefsCluster } from '../../lib/testing/litefs-cluster.js'
import { parsePos } from '../../lib/core/txid.js'
import { WAYS, commitOf, cookieOf, post, serveWay } from '../helpers/write-ways.js'
import { leavesNothingBehind } from './leftovers.js'

const DB = 'app.db'
const PER_ROUND = 20
const MAX_ROUNDS = 30

let cluster: LitefsCluster
let db: Database.Database
let writer: ChildProcess | undefined

t.before(async () => {
  cluster = await startLitefsCluster({ nodes: 1 })
  db = new Database(join(cluster.primary.mount, DB))
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)')
  db.pragma('busy_timeout = 5000')
})

async function closeAll (): Promise<void> {
  writer?.kill('SIGKILL')
  db?.close() // an open database blocks LiteFS's unmount
  await cluster?.close()
}
t.teardown(closeAll)

/** Another process committing through the mount without pause, until stopped. */
function startWriter (): ChildProcess {
  const code = `
    const Database = require('better-sqlite3')
    const db = new Database(process.argv[1], { fileMustExist: true, timeout: 5000 })
    const insert = db.prepare("INSERT INTO notes (text) VALUES ('background')")
    let stop = false
    process.on('message', () => { stop = true })
    const loop = () => { for (let i = 0; i < 5; i++) insert.run(); if (stop) { db.close(); process.exit(0) } setImmediate(loop) }
    process.send('started')
    loop()
  `
  return spawn(process.execPath, ['-e', code, join(cluster.primary.mount, DB)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: process.cwd() })
}

t.test('every way: the cookie is at or above -pos right after the handler\'s commit, with the position moving under it', async t => {
  writer = startWriter()
  await new Promise((resolve, reject) => { writer?.once('message', resolve); writer?.once('exit', code => reject(new Error(`the writer exited (${String(code)})`))) })
  const pos = join(cluster.primary.mount, `${DB}-pos`)
  const insert = db.prepare('INSERT INTO notes (text) VALUES (?)')
  for (const way of WAYS) {
    const { url } = await serveWay(t, way, { mount: cluster.primary.mount, api: cluster.primary.apiUrl, pollInterval: 1 }, (_to, who) => {
      insert.run(who) // the handler's commit
      // What -pos says once it returned: the handler's own commit, or later (a fresh read, the truth).
      return String(parsePos(readFileSync(pos, 'latin1')))
    })
    const history: Array<{ who: string, own: bigint, cookie: bigint | undefined }> = []
    let overtaken = 0
    // Rounds until the position was seen to move between a handler's commit and
    // the read for its cookie (bounded): the case this test is about.
    for (let round = 0; round < MAX_ROUNDS && (round < 2 || overtaken === 0); round++) {
      const answers = await Promise.all(Array.from({ length: PER_ROUND }, async (_, i) => {
        const who = `${way}-${round}-${i}`
        return { who, raw: await post(url, `/w?who=${who}`).done }
      }))
      for (const { who, raw } of answers) {
        const own = commitOf(raw) as bigint
        const cookie = cookieOf(raw)
        history.push({ who, own, cookie })
        if (cookie !== undefined && cookie > own) overtaken++
      }
    }
    t.equal(history.filter(h => h.cookie === undefined).length, 0, `${way}: every write answered with a cookie`)
    t.same(history.filter(h => h.cookie !== undefined && h.cookie < h.own), [], `${way}: no cookie below its handler's commit (${history.length} writes)`)
    t.ok(overtaken > 0, `${way}: the position moved between a commit and its read ${overtaken} times, and the cookie followed`)
  }
  writer.send('stop')
  await new Promise(resolve => writer?.once('exit', resolve))
  writer = undefined
})

leavesNothingBehind(t, closeAll)
