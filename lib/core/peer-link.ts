import { randomBytes } from 'node:crypto'
import { hostname as osHostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'
import { PEER_PATH } from './durability-options.js'
import type { Logger } from './logger.js'
import type { NodeState } from './node-state.js'
import type { ResolvedOptions } from './options.js'
import { PeerTable } from './peer-table.js'
import { ReplicaReporter } from './replica-report.js'
import type { Warnings } from './warnings.js'

// One node's part in replica reports (issue 21), made once per core when
// `peerSecret` is set: the table of the peers reporting to it (fed by
// peer-endpoint.ts, read by durability.ts, stats and health), and, while this
// node is a replica, its own reports to the primary's litefs-proxy
// (replica-report.ts). Its candidacy comes from the state's driver when that
// knows it (the dev cluster: every node can be promoted), else from LiteFS's
// `/info`, asked again whenever LiteFS comes back; without either, this node
// cannot report, and says so once (warnings.ts). The primary's address comes
// from `primaryUrl`, so the reports follow a failover by themselves.

/** How often `/info` is asked again while it does not answer (ms). */
const INFO_RETRY = 1000

/** One peer as stats() and health show it. */
export interface PeerView {
  hostname: string
  candidate: boolean
  /** Reporting now (a report within the last 2 s). */
  connected: boolean
  /** Transactions of the tracked database this node has and the peer had not reported, at its last report. */
  behind: string | null
  /** When its current run of reports began (ISO time), and milliseconds since its last report. */
  since: string
  lastReportMs: number
}

/** What durability did (stats()): answers held for candidates, and how each ended. */
export interface DurabilityCounts {
  waits: number
  replicated: number
  notReplicated: number
}

export class PeerLink {
  readonly counts: DurabilityCounts = { waits: 0, replicated: 0, notReplicated: 0 }

  readonly table: PeerTable
  readonly name: string
  private readonly reporter: ReplicaReporter | undefined
  private readonly agent = new Agent({ connect: { timeout: 1000 }, keepAliveTimeout: 10_000 })
  private candidate: boolean | undefined
  private infoTimer: NodeJS.Timeout | undefined
  private readonly unsubscribe: Array<() => void> = []
  private closed = false

  /**
   * @param port this server's port, for the primary's URL (`{port}` in primaryUrl); 0 while unknown
   */
  constructor (options: ResolvedOptions, private readonly state: NodeState, port: () => number, log: Logger, warn: Warnings) {
    this.name = options.durability.name ?? options.consul?.hostname ?? state.driver.name ?? osHostname()
    this.table = new PeerTable(1, hostname => {
      warn.say('LITEFS_PEER_NAME', hostname, `two nodes report to this primary as "${hostname}": each node's peerName (--peer-name) must be its own. Both are counted, each on its own, but health and stats cannot tell them apart`, { hostname })
    })
    const api = options.api
    // The driver's own word (the dev cluster), else LiteFS's /info — which a
    // given state, or api: false, does not have: no candidacy, no report.
    const own = state.driver.candidate
    if (own === undefined && (api === false || options.state !== undefined)) {
      const why = options.state !== undefined ? 'the given "state" does not say, and LiteFS\'s /info is not asked for a given state' : 'api: false'
      warn.say('LITEFS_DURABILITY', 'candidacy', `this node cannot learn whether it is a candidate (no LiteFS API: ${why}): it sends no reports, so a primary with durability on never counts it`, {})
      return
    }
    const db = options.db as string // peerSecret needs a main database (options.ts)
    const reporter = this.reporter = new ReplicaReporter({
      hostname: this.name,
      instance: randomBytes(9).toString('base64url'),
      candidate: own ?? (() => this.candidate),
      url: () => {
        const primary = state.role === 'replica' ? state.primaryHostname : undefined
        const p = port()
        if (primary === undefined || p === 0) return undefined
        try {
          return options.primaryOrigin(primary, p) + PEER_PATH
        } catch (err) {
          // A primaryUrl function that knows no URL for it: forwarding says so (LITEFS_PRIMARY_UNRESOLVED); no report meanwhile.
          log.debug({ primary, err: (err as Error).message }, 'litefs-proxy: no URL for the primary to report to')
          return undefined
        }
      },
      positions: () => new Map([[db, state.position(db)]])
    }, options.durability.secrets[0], this.agent, log)
    // A change reported at once, only on a replica: a primary's commits cost nothing here.
    this.unsubscribe.push(state.onChange(() => { if (state.role === 'replica') reporter.changed() }))
    if (own === undefined) this.askInfo(new URL('/info', api as string).href, reporter, log)
    reporter.start()
  }

  /** Learn this node's candidacy from LiteFS's `/info`: now, again until it says, and whenever LiteFS comes back. */
  private askInfo (infoUrl: string, reporter: ReplicaReporter, log: Logger): void {
    const ask = (): void => {
      clearTimeout(this.infoTimer)
      if (this.closed) return
      request(infoUrl, { dispatcher: this.agent, headersTimeout: 1000, bodyTimeout: 1000 })
        .then(async res => await res.body.json() as { candidate?: unknown })
        .then(info => {
          if (typeof info?.candidate !== 'boolean') throw new Error('no "candidate" in LiteFS\'s /info')
          this.candidate = info.candidate
          reporter.changed()
        })
        .catch((err: Error) => {
          log.debug({ err: err.message }, 'litefs-proxy: LiteFS\'s /info did not say whether this node is a candidate; asking again')
          this.infoTimer = setTimeout(ask, INFO_RETRY).unref()
        })
    }
    this.unsubscribe.push(this.state.onLitefs(status => { if (status === 'up') ask() }))
    ask()
  }

  /** The table as stats() and health show it, measured against this node's own position of `db`. */
  view (db: string): PeerView[] {
    const own = this.state.position(db)
    const now = performance.now()
    return this.table.peers(now).map(p => {
      const at = p.positions.get(db)
      return {
        hostname: p.hostname,
        candidate: p.candidate,
        connected: p.connected,
        behind: at === undefined ? null : String(own > at ? own - at : 0n),
        since: new Date(p.since).toISOString(),
        lastReportMs: Math.round(now - p.seen)
      }
    })
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.infoTimer)
    for (const u of this.unsubscribe) u()
    this.reporter?.close()
    this.table.close()
    await this.agent.close()
  }
}
