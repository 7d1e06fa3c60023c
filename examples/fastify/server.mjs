// The notes app on a real LiteFS node, started by LiteFS itself (`exec:` in
// litefs.yml) once the node is primary or connected to the primary.
//
//   PORT          port of the app (default 8080); every node uses the same
//   LITEFS_MOUNT  LiteFS's FUSE mount (default /litefs)
//   DB            the database's file name in the mount (default app.db)
//   PRIMARY_URL   the primary's app URL from its LiteFS hostname, as a template
//                 (default http://{hostname}:{port})
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { buildApp, SCHEMA } from './app.mjs'

const mount = process.env.LITEFS_MOUNT ?? '/litefs'
const name = process.env.DB ?? 'app.db'
const port = Number(process.env.PORT ?? 8080)

let db // opened once the role is known: only the primary may create the file
const app = buildApp({
  litefs: { db: name, mount, primaryUrl: process.env.PRIMARY_URL },
  database: () => db,
  logger: true
})
await app.ready()

// LiteFS tells the role over its API just after start. The primary creates the
// table; replicas receive it (and are read-only: creating it there would fail).
const state = app.litefs.state
await new Promise(resolve => state.waitForPrimary(10_000, resolve))
db = new Database(join(mount, name))
if (state.role === 'primary') {
  db.pragma('journal_mode = WAL') // LiteFS replicates WAL-mode databases too; readers never wait for a writer
  db.exec(SCHEMA)
}
app.log.info({ role: state.role, primary: state.primaryHostname ?? null }, 'notes: database ready')

await app.listen({ port, host: '0.0.0.0' })

// LiteFS forwards SIGTERM/SIGINT to the app, and stops when the app exits.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    app.close().then(() => db.close(), err => { app.log.error(err); process.exitCode = 1 })
  })
}
