// A fake LiteFS node for the benchmarks: a real mount directory holding the
// files LiteFS keeps beside a database, in LiteFS's byte formats, and an HTTP
// API whose /events stream sends the lines LiteFS sends. The JSON shapes are
// the ones recorded on a real cluster (test/fixtures/litefs, LiteFS v0.5.14),
// copied here so the bench does not depend on the test tree (JS port of
// test/helpers/fake-litefs.ts, reduced to what the bench needs).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const INIT_PRIMARY = { type: 'init', data: { isPrimary: true } }
const INIT_REPLICA = { type: 'init', data: { isPrimary: false, hostname: 'node-a' } }
const TX = { type: 'tx', db: 'app.db', data: { txID: '0000000000000001', postApplyChecksum: 'ce1969f21a78f3f9', pageSize: 4096, commit: 1, timestamp: '2026-11-26T04:27:47.252Z' } }

// tmpfs when there is one: LiteFS's mount files are virtual (no disk I/O), and a
// disk-backed directory would make every fake commit a journaled write.
const BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

export const hex16 = n => n.toString(16).padStart(16, '0')
const checksum = txid => hex16(txid * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn)

export class FakeLitefs {
  /** @param {{ role?: 'primary'|'replica', primary?: string, db?: string, txid?: bigint, api?: boolean }} opts */
  constructor (opts = {}) {
    this.mount = mkdtempSync(join(BASE, 'litefs-bench-'))
    this.db = opts.db ?? 'app.db'
    this.role = opts.role ?? 'replica'
    this.primary = this.role === 'replica' ? opts.primary ?? 'node-a' : undefined
    this.txid = opts.txid ?? 1n
    this.posPath = join(this.mount, `${this.db}-pos`)
    this.streams = new Set()
    this.port = 0
    this.writeRoleFiles()
    this.writePos()
    this.server = createServer((req, res) => {
      if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'application/json' })
        this.streams.add(res)
        res.on('close', () => this.streams.delete(res))
        res.write(this.initLine())
      } else if (req.url === '/info') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ isPrimary: this.role === 'primary', candidate: this.role === 'primary', primary: { hostname: this.primary ?? 'node-a' } }))
      } else {
        res.writeHead(404).end()
      }
    })
  }

  static async start (opts = {}) {
    const fake = new FakeLitefs(opts)
    if (opts.api !== false) {
      await new Promise(resolve => fake.server.listen(0, '127.0.0.1', resolve))
      fake.port = fake.server.address().port
    }
    return fake
  }

  get apiUrl () { return `http://127.0.0.1:${this.port}` }
  get subscribers () { return this.streams.size }

  /**
   * A transaction: `-pos` changes (its 34 bytes rewritten in place, one inode
   * as LiteFS's file) and, unless `event: false`, a `tx` line goes out.
   */
  advance (txid, { event = true, file = true } = {}) {
    this.txid = txid
    if (file) this.writePos()
    if (event && this.streams.size > 0) {
      const line = JSON.stringify({ ...TX, db: this.db, data: { ...TX.data, txID: hex16(txid), postApplyChecksum: checksum(txid) } }) + '\n'
      for (const s of this.streams) s.write(line)
    }
  }

  async close () {
    for (const s of this.streams) s.destroy()
    if (this.server.listening) {
      this.server.closeAllConnections()
      await new Promise(resolve => this.server.close(resolve))
    }
    rmSync(this.mount, { recursive: true, force: true })
  }

  initLine () {
    return JSON.stringify(this.role === 'primary' ? INIT_PRIMARY : { ...INIT_REPLICA, data: { ...INIT_REPLICA.data, hostname: this.primary } }) + '\n'
  }

  writePos () {
    // `%016x/%016x\n`: TXID / post-apply checksum, 34 bytes, rewritten in place
    // (never truncated): as LiteFS's file, one inode, so a kept fd sees each change.
    writeFileSync(this.posPath, `${hex16(this.txid)}/${checksum(this.txid)}\n`, { flag: existsSync(this.posPath) ? 'r+' : 'w' })
  }

  writeRoleFiles () {
    const primaryFile = join(this.mount, '.primary')
    if (this.role === 'replica' && this.primary !== undefined) writeFileSync(primaryFile, `${this.primary}\n`)
    else rmSync(primaryFile, { force: true })
    const lag = this.role === 'primary' ? 0 : 829
    writeFileSync(join(this.mount, '.lag'), `+${String(lag).padStart(9, '0')}\n`)
  }
}
