import type { Acknowledgement } from './acknowledgement.js'
import type { Classifier } from './classify.js'
import type { ForwardAgents, ForwardProtocol } from './forward-agent.js'
import type { Lifecycle } from './lifecycle.js'
import type { NodeState } from './node-state.js'
import type { Observer } from './observe.js'
import type { PeerLink } from './peer-link.js'
import type { Several } from './positions-read.js'
import type { ResolvedOptions } from './options.js'
import type { ClosingPrimaries } from './primary-closing.js'
import type { PrimaryProbe } from './primary-probe.js'
import type { PrimaryReach } from './primary-reach.js'
import type { AdapterHooks, LitefsInfo } from './request.js'
import type { Warnings } from './warnings.js'

// What every path of one core shares, made once when the core is built
// (proxy.ts) and handed to the paths as their first argument: nothing is
// built per request. The paths own what they do with it; the shared view of
// LiteFS stays in NodeState, counting and channels in the Observer.

export interface CoreContext<C> {
  readonly options: ResolvedOptions
  readonly state: NodeState
  readonly hooks: AdapterHooks<C>
  readonly classifier: Classifier
  /** This node's entry in the loop-guard header of the requests it forwards (loop-guard.ts). */
  readonly nodeName: string
  /** The Agents forwards (and the probe) go out on, one per protocol. */
  readonly agents: ForwardAgents
  readonly probe: PrimaryProbe
  /** Whether the primary's app can be reached from here (health's `unreachable`). */
  readonly reach: PrimaryReach
  /** Primaries that said they are closing: writes wait for them to be done (primary-closing.ts). */
  readonly closingPrimaries: ClosingPrimaries
  readonly observer: Observer
  readonly warn: Warnings
  readonly lifecycle: Lifecycle<C>
  /** Several databases (option `db` a list or `'*'`): which are tracked, and their batched `-pos` read; undefined for one. */
  readonly several: Several | undefined
  /** Replica reports and the table of peers (peer-link.ts), with `peerSecret`. */
  peers: PeerLink | undefined
  /**
   * How the answer to a write served here as primary leaves, decided once the
   * app's answer is ready (acknowledgement.ts): write-cookie.ts's, unless a
   * module that decides more (waits, or answers otherwise) is put in its place.
   */
  acknowledge: (info: LitefsInfo, c: C) => Acknowledgement | Promise<Acknowledgement>
  /** This server's port, for the primary's health URL (every node serves on the same port by default). */
  probePort: number
  /** The protocol this server spoke for the last read held, for the probe of the primary (same server, same protocol). */
  probeProtocol: ForwardProtocol
  /** Given each read's token that does not verify: says it once if it names a misconfiguration (token-refused.ts). */
  readonly tokenRefused: (value: string) => void
  /** A body reader before litefs-proxy was said (once per core). */
  saidBodyConsumed: boolean
  /** A primary's host name did not resolve here, and no forward has got through since. */
  unresolvedSaid: boolean
  /** A forwarded write came back to this node (loop-guard.ts), and no forward has got through since. */
  loopSaid: boolean
  /** A write was answered without a cookie because `<db>-pos` was missing. */
  dbMissing: boolean
}
