import type { Test } from 'tap'
import { FakeLitefs, until } from './fake-litefs.js'
import { createSidecar, type Sidecar, type SidecarOptions } from '../../lib/sidecar/sidecar.js'
import { lineLogger } from '../../lib/sidecar/access-log.js'

/** A sidecar on `fake` in front of `target`, logging at info into `lines`; closed on teardown; resolved once it follows LiteFS. */
export async function startSidecar (t: Pick<Test, 'teardown'>, fake: FakeLitefs, target: string, opts: Partial<SidecarOptions> = {}, lines: string[] = []): Promise<Sidecar> {
  const s = createSidecar({ addr: '127.0.0.1:0', target, db: 'app.db', mount: fake.mount, api: fake.apiUrl, pollInterval: 1, logger: lineLogger('info', 'json', l => lines.push(l)), ...opts })
  await s.listen()
  t.teardown(async () => { await s.close() })
  await until(() => s.core.state.litefs === 'up' && (fake.role === 'primary' ? s.core.state.role === 'primary' : s.core.state.primaryHostname !== undefined))
  return s
}

/** A primary's fake LiteFS (TXID 10) and its replica's (TXID 5, following node-a), closed on teardown. */
export async function fakePair (t: Pick<Test, 'teardown'>): Promise<{ pfake: FakeLitefs, rfake: FakeLitefs }> {
  const pfake = await FakeLitefs.start({ role: 'primary', txid: 10n })
  const rfake = await FakeLitefs.start({ role: 'replica', primary: 'node-a', txid: 5n })
  t.teardown(async () => { await pfake.close(); await rfake.close() })
  return { pfake, rfake }
}
