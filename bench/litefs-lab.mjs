// The real LiteFS cluster the profilers run on (PROFILE_LITEFS=1: bench/profile.mjs,
// bench/profile-serve.mjs): 2 nodes on loopback (lib/testing/litefs-cluster.ts), and the
// bench app's schema created through the primary's mount (WAL), replicated before it resolves.
// Needs the litefs binary and FUSE (root).
import { join } from 'node:path'

/**
 * Start the cluster from the build at `dist` (its esm directory); `more` names further
 * databases to create beside app.db (one table each). Resolves with the cluster.
 */
export async function startLab (dist, more = []) {
  const { findLitefs, startLitefsCluster } = await import(join(dist, 'testing', 'litefs-cluster.js'))
  const cluster = await startLitefsCluster({ nodes: 2, binary: findLitefs() })
  const { default: Database } = await import('better-sqlite3')
  for (const db of ['app.db', ...more]) {
    const handle = new Database(join(cluster.nodes[0].mount, db))
    handle.pragma('journal_mode = WAL')
    handle.exec(db === 'app.db' ? 'CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT NOT NULL)' : 'CREATE TABLE t (id INTEGER PRIMARY KEY)')
    handle.close()
  }
  await cluster.waitReplicated('app.db')
  return cluster
}
