// A fake LiteFS node for tests, built from the bytes recorded on a real cluster
// (test/fixtures/litefs, copied from shared/litefs-fixtures): the same mount
// files in the same formats, the same /info document and the same /events lines.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const fixtures = new URL('../fixtures/litefs/', import.meta.url)
const lines = (name: string): Array<Record<string, any>> =>
  readFileSync(new URL(name, fixtures), 'utf8').trim().split('\n').map(l => JSON.parse(l))

const primaryEvents = lines('events-primary.ndjson')
const replicaEvents = lines('events-replica.ndjson')
// Recorded shapes, reused so every line we send is a line LiteFS sends.
const INIT_PRIMARY = primaryEvents[0] // {"type":"init","data":{"isPrimary":true}}
const INIT_REPLICA = replicaEvents[0] // {"type":"init","data":{"isPrimary":false,"hostname":"node-a"}}
const TX = primaryEvents[1] // {"type":"tx","db":"app.db","data":{"txID":"0000000000000001",…}}
const NO_PRIMARY = replicaEvents.find(e => e.type === 'primaryChange' && e.data.hostname === undefined) as Record<string, any>
const INFO = { clusterID: 'LFSCA6F26F91E8121583', isPrimary: true, candidate: true, path: '/var/lib/litefs', primary: { hostname: 'node-a' } }

const hex16 = (n: bigint): string => n.toString(16).padStart(16, '0')

export interface FakeOptions {
  role?: 'primary' | 'replica'
  primary?: string
  db?: string
  txid?: bigint
  api?: boolean
  /** What /info says of candidacy. Default: a primary is one, a replica not. */
  candidate?: boolean
}

export class FakeLitefs {
  readonly mount = mkdtempSync(join(tmpdir(), 'fake-litefs-'))
  readonly db: string
  role: 'primary' | 'replica'
  primary: string | undefined
  txid: bigint
  port = 0
  private readonly server: Server
  private readonly streams = new Set<ServerResponse>()
  requests = 0
  candidate: boolean | undefined

  private constructor (opts: FakeOptions) {
    this.db = opts.db ?? 'app.db'
    this.role = opts.role ?? 'replica'
    this.primary = this.role === 'replica' ? opts.primary ?? 'node-a' : undefined
    this.txid = opts.txid ?? 0n
    this.candidate = opts.candidate
    this.writeRoleFiles()
    if (this.txid > 0n) this.writePos()
    this.server = createServer((req, res) => {
      this.requests++
      if (req.url === '/info') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ ...INFO, isPrimary: this.role === 'primary', candidate: this.candidate ?? this.role === 'primary', primary: { hostname: this.role === 'primary' ? 'node-a' : this.primary ?? '' } }, null, 2))
      } else if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'application/json' })
        this.streams.add(res)
        res.on('close', () => this.streams.delete(res))
        res.write(this.initLine())
      } else {
        res.writeHead(404).end()
      }
    })
  }

  static async start (opts: FakeOptions = {}): Promise<FakeLitefs> {
    const fake = new FakeLitefs(opts)
    if (opts.api !== false) await fake.startApi()
    return fake
  }

  get apiUrl (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** The API answers. */
  get listening (): boolean {
    return this.server.listening
  }

  get subscribers (): number {
    return this.streams.size
  }

  /** Listen (again, on the same port once one was taken). */
  async startApi (): Promise<void> {
    await new Promise<void>(resolve => this.server.listen(this.port, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
  }

  /** The API goes away: every stream is reset (ECONNRESET, as a stopping LiteFS does), new connections are refused. */
  async stopApi (): Promise<void> {
    for (const s of this.streams) s.socket?.resetAndDestroy()
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  /**
   * LiteFS stops (or is killed) while the app runs: its streams are reset, and
   * its mount is gone — the directory underneath is an ordinary empty one.
   */
  async stop (): Promise<void> {
    this.stopContactClock()
    if (this.server.listening) await this.stopApi()
    for (const name of readdirSync(this.mount)) rmSync(join(this.mount, name), { recursive: true, force: true })
  }

  /** LiteFS comes back: the mount's files as they were, the API on the same port. */
  async restart (): Promise<void> {
    this.writeRoleFiles()
    if (this.txid > 0n) this.writePos()
    await this.startApi()
  }

  /**
   * What a replica of a stopped static primary sends about once a second: the
   * primary's hostname, then (0–5 ms later) none — a connection attempt that failed.
   */
  blip (hostname: string): void {
    this.send(JSON.stringify({ type: 'primaryChange', data: { isPrimary: false, hostname } }) + '\n')
    this.send(JSON.stringify(NO_PRIMARY) + '\n')
  }

  /**
   * No frame arrives from the primary any more: `.lag` (now − last contact)
   * grows with the clock, as on a replica whose connection attempts hang.
   * `contact()` ends it: a frame arrived.
   */
  loseContact (): void {
    this.stopContactClock()
    const since = Date.now() - 1500
    const tick = (): void => { this.setLag(Date.now() - since) }
    tick()
    this.contactClock = setInterval(tick, 2)
  }

  /** A frame from the primary arrived (a heartbeat): `.lag` falls back to a few ms. */
  contact (): void {
    this.stopContactClock()
    this.setLag(3)
  }

  /** The primary is named on the stream and in `.primary`, without a word on whether it can be reached. */
  announcePrimary (hostname: string): void {
    this.role = 'replica'
    this.primary = hostname
    writeFileSync(join(this.mount, '.primary'), `${hostname}\n`)
    this.send(JSON.stringify({ type: 'primaryChange', data: { isPrimary: false, hostname } }) + '\n')
  }

  private contactClock: NodeJS.Timeout | undefined

  private stopContactClock (): void {
    clearInterval(this.contactClock)
    this.contactClock = undefined
  }

  /** A transaction: `-pos` changes and (unless `event: false`) a `tx` line goes out. */
  advance (txid: bigint, opts: { event?: boolean, file?: boolean } = {}): void {
    this.txid = txid
    if (opts.file !== false) this.writePos()
    if (opts.event !== false) this.send(JSON.stringify({ ...TX, db: this.db, data: { ...TX.data, txID: hex16(txid) } }) + '\n')
  }

  /** A transaction on another database of the mount (several databases): its `-pos` and (unless `event: false`) a `tx` line naming it. */
  advanceDb (db: string, txid: bigint, opts: { event?: boolean } = {}): void {
    writePosFile(join(this.mount, `${db}-pos`), txid)
    if (opts.event !== false) this.send(JSON.stringify({ ...TX, db, data: { ...TX.data, txID: hex16(txid) } }) + '\n')
  }

  becomePrimary (): void {
    this.role = 'primary'
    this.primary = undefined
    this.writeRoleFiles()
    this.send(JSON.stringify({ type: 'primaryChange', data: { isPrimary: true } }) + '\n')
  }

  becomeReplica (primary: string): void {
    this.role = 'replica'
    this.primary = primary
    this.writeRoleFiles()
    this.send(JSON.stringify({ type: 'primaryChange', data: { isPrimary: false, hostname: primary } }) + '\n')
  }

  /** The replica loses its primary: `.primary` disappears, `primaryChange` without hostname (as recorded). */
  losePrimary (): void {
    this.role = 'replica'
    this.primary = undefined
    this.writeRoleFiles()
    this.send(JSON.stringify(NO_PRIMARY) + '\n')
  }

  setLag (ms: number): void {
    writeFileSync(join(this.mount, '.lag'), `${ms >= 0 ? '+' : '-'}${String(Math.abs(ms)).padStart(9, '0')}\n`)
  }

  /** Raw bytes to every subscriber: garbage, half lines. */
  send (text: string): void {
    for (const s of this.streams) s.write(text)
  }

  /** End every stream cleanly (LiteFS resets them when it stops; a proxy in between may end them). */
  endStreams (): void {
    for (const s of this.streams) s.end()
  }

  /** Cut every stream after sending the first half of a tx line. */
  cutMidLine (txid: bigint): void {
    const line = JSON.stringify({ ...TX, db: this.db, data: { ...TX.data, txID: hex16(txid) } })
    for (const s of this.streams) {
      s.write(line.slice(0, line.length >> 1))
      s.destroy()
    }
  }

  async close (): Promise<void> {
    this.stopContactClock()
    if (this.server.listening) await this.stopApi()
    rmSync(this.mount, { recursive: true, force: true })
  }

  private initLine (): string {
    const init = this.role === 'primary'
      ? INIT_PRIMARY
      : { ...INIT_REPLICA, data: this.primary === undefined ? { isPrimary: false } : { ...INIT_REPLICA.data, hostname: this.primary } }
    return JSON.stringify(init) + '\n'
  }

  private writePos (): void {
    // `%016x/%016x\n`: TXID / post-apply checksum (any 16 hex digits here).
    // Rewritten in place, never truncated: as LiteFS's file, one inode whose 34
    // bytes change at once, so a kept fd (read on another thread) never sees it empty.
    writePosFile(join(this.mount, `${this.db}-pos`), this.txid)
  }

  private writeRoleFiles (): void {
    const primaryFile = join(this.mount, '.primary')
    if (this.role === 'replica' && this.primary !== undefined) writeFileSync(primaryFile, `${this.primary}\n`)
    else rmSync(primaryFile, { force: true })
    this.setLag(this.role === 'primary' ? 0 : 829)
  }
}

function writePosFile (path: string, txid: bigint): void {
  writeFileSync(path, `${hex16(txid)}/${hex16(txid * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn)}\n`, { flag: existsSync(path) ? 'r+' : 'w' })
}

/** Wait, without a clock, until `cond` holds (checks on every turn of the event loop). */
export async function until (cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 2_000_000) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setImmediate(resolve))
  }
}
