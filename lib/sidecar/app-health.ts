import type { IncomingMessage } from 'node:http'
import { PROBE_HEADER } from '../core/primary-probe.js'
import { REACH_HEADER } from '../core/primary-reach.js'
import type { LitefsAnswer } from '../core/request.js'
import type { TargetWatch } from './target-watch.js'

// `serve`'s health check also says whether its app is there. The core's
// health speaks for LiteFS and the primary; behind serve, a node whose app is
// down answers every request 502 after waiting for it (30 s), so a balancer
// must take it out: 503 `app-unavailable` while the app refuses connections,
// asked with one connection per health check (a balancer asks every few
// seconds; the app sees a connection opened and closed). Other nodes'
// litefs-proxy asking this one (the primary's position, whether the primary is
// there) get the core's answer: those questions are about LiteFS, and a
// replica learns of a primary whose app fails from its forwards.

/** The health answer `answer` for `req`, once the app behind serve was tried. */
export async function withApp (answer: LitefsAnswer, req: IncomingMessage, watch: TargetWatch, target: string): Promise<LitefsAnswer> {
  if (answer.statusCode !== 200 || req.headers[PROBE_HEADER] !== undefined || req.headers[REACH_HEADER] !== undefined) return answer
  const refused = await watch.reachable()
  if (refused === undefined) return answer
  const body = { ...JSON.parse(answer.body) as Record<string, unknown>, status: 'app-unavailable', app: { target, error: refused } }
  return { statusCode: 503, headers: answer.headers, body: JSON.stringify(body) }
}
