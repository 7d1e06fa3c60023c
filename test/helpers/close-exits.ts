// Run as a child process: an app per adapter, a held read the client abandons,
// a forwarded write, then close. If anything is left running the process never exits.
import { request } from 'undici'
import { FakeLitefs, until } from './fake-litefs.js'
import { ADAPTERS, serve } from './apps.js'

for (const adapter of ADAPTERS) {
  const fake = await FakeLitefs.start({ role: 'replica', txid: 1n })
  const served = await serve(adapter, fake, { primaryUrl: () => 'http://127.0.0.1:9', primaryRedirectTimeout: 50 })
  await until(() => fake.subscribers === 1)
  const ac = new AbortController()
  const held = request(`${served.url}/items`, { headers: { cookie: 'litefs-txid=00000000000000ff' }, signal: ac.signal }).catch(() => 'aborted')
  await until(() => served.state.waiterCount === 1)
  ac.abort()
  await held
  const write = await request(`${served.url}/items`, { method: 'POST', body: 'x' })
  await write.body.dump()
  await served.close()
  await fake.close()
}
