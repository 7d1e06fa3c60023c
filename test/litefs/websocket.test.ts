// WebSockets on a real LiteFS v0.5.14 cluster (2 nodes, static lease, FUSE,
// loopback), in every adapter and `serve`, wired as README.md's "Websockets"
// says: a write committed on the primary, then a handshake on the replica
// carrying the write's cookie is held while real replication is paused, and
// the socket's first message, read from SQLite on the replica, has the write;
// a handshake on an `alwaysForward` path is tunnelled to the primary, where a
// write sent as a message commits and real replication brings it to the
// replica. LiteFS is never stopped here, so the apps run in this process.
import t from 'tap'
import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startLitefsCluster, type LitefsCluster, type LitefsNode } from '../../lib/testing/litefs-cluster.js'
import { websocketApp, WS_FLAVOURS, type WsApp } from '../helpers/websocket-apps.js'
import { leavesNothingBehind } from './leftovers.js'

const DB = 'app.db'
const hex = (n: bigint): string => n.toString(16).padStart(16, '0')

let cluster: LitefsCluster

async function until (what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

const posNow = (node: LitefsNode): string => readFileSync(join(node.mount, `${DB}-pos`), 'utf8').slice(0, 16)

/** Insert a note on `node` (the primary), as a handler would. */
function insert (node: LitefsNode, text: string): void {
  const db = new Database(join(node.mount, DB), { fileMustExist: true, timeout: 250 })
  try { db.prepare('INSERT INTO notes (text) VALUES (?)').run(text) } finally { db.close() }
}

/** The endpoint: its first message is the newest note and the position, read on this node; `write <text>` inserts (on the primary only). */
function endpoint (node: LitefsNode) {
  return {
    connection: (ws: WebSocket, _req: IncomingMessage): void => {
      const db = new Database(join(node.mount, DB), { fileMustExist: true, readonly: true })
      let last: { text: string } | undefined
      try { last = db.prepare('SELECT text FROM notes ORDER BY id DESC LIMIT 1').get() as { text: string } | undefined } finally { db.close() }
      ws.send(JSON.stringify({ node: node.hostname, last: last?.text ?? null, position: posNow(node) }))
      ws.on('message', m => {
        const text = String(m).replace(/^write /, '')
        insert(node, text)
        ws.send(JSON.stringify({ node: node.hostname, wrote: text, position: posNow(node) }))
      })
    }
  }
}

/** Open a client and collect its messages. */
async function open (url: string, headers: Record<string, string>): Promise<{ ws: WebSocket, messages: string[], next: (n: number) => Promise<string> }> {
  const ws = new WebSocket(url.replace('http', 'ws'), { headers })
  const messages: string[] = []
  ws.on('message', m => messages.push(String(m)))
  return {
    ws,
    messages,
    next: async n => { await until(`message ${n}`, () => messages.length > n); return messages[n] }
  }
}

t.before(async () => {
  cluster = await startLitefsCluster({ nodes: 2, pausableReplication: true })
  const created = new Database(join(cluster.primary.mount, DB))
  created.pragma('journal_mode = WAL')
  created.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)')
  created.close()
  await cluster.waitReplicated(DB)
})
const closeAll = async (): Promise<void> => { await cluster?.close() }
t.teardown(closeAll)

for (const flavour of WS_FLAVOURS) {
  t.test(flavour, async t => {
    const [primaryNode, replicaNode] = cluster.nodes
    const options = { db: DB, alwaysForward: ['/admin/*'], readTimeout: '10s' }
    const primary: WsApp = await websocketApp(t, flavour, { ...options, mount: primaryNode.mount, api: primaryNode.apiUrl }, endpoint(primaryNode))
    const replica: WsApp = await websocketApp(t, flavour, { ...options, mount: replicaNode.mount, api: replicaNode.apiUrl, primaryUrl: () => primary.url }, endpoint(replicaNode))
    await until('both follow LiteFS', () => primary.state.role === 'primary' && replica.state.primaryHostname === primaryNode.hostname)

    await t.test('a handshake carrying the cookie of a write is held until real replication brings it; the first message sees it', async t => {
      await cluster.waitReplicated(DB)
      replicaNode.pauseReplication()
      let client
      let cookie
      try {
        insert(primaryNode, `${flavour}: before the socket`)
        cookie = hex(primaryNode.position(DB) as bigint)
        client = await open(`${replica.url}/live`, { cookie: `litefs-txid=${cookie}` })
        await until('the handshake is held', () => replica.state.waiterCount === 1)
        t.ok(posNow(replicaNode) < cookie, 'the replica is behind the cookie while it holds the handshake')
        t.equal(client.ws.readyState, WebSocket.CONNECTING)
        replicaNode.resumeReplication()
      } finally {
        replicaNode.resumeReplication()
      }
      const first = JSON.parse(await client.next(0))
      t.equal(first.node, replicaNode.hostname, 'served by the replica')
      t.equal(first.last, `${flavour}: before the socket`, "read from SQLite on the replica: the client's write is there")
      t.ok(first.position >= cookie, `at ${first.position}, having ${cookie}`)
      client.ws.close()
    })

    await t.test('a handshake on an alwaysForward path is tunnelled to the primary; a write sent on it commits there and replicates', async t => {
      const client = await open(`${replica.url}/admin/live`, {})
      const first = JSON.parse(await client.next(0))
      t.equal(first.node, primaryNode.hostname, 'the primary answered through the tunnel')
      client.ws.send(`write ${flavour}: through the tunnel`)
      const wrote = JSON.parse(await client.next(1))
      t.match(wrote, { node: primaryNode.hostname, wrote: `${flavour}: through the tunnel` })
      t.equal(wrote.position, hex(primaryNode.position(DB) as bigint), 'committed on the primary')
      client.ws.close()
      await cluster.waitReplicated(DB)
      const db = new Database(join(replicaNode.mount, DB), { fileMustExist: true, readonly: true })
      try {
        t.same(db.prepare('SELECT text FROM notes ORDER BY id DESC LIMIT 1').get(), { text: `${flavour}: through the tunnel` }, 'and reached the replica')
      } finally { db.close() }
    })
  })
}

leavesNothingBehind(t, closeAll)
