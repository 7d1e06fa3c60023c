// Run as a child process: an app with the plugin, a held read that the client
// abandons, then close. If anything is left running the process never exits.
import { request } from 'undici'
import { FakeLitefs, until } from './fake-litefs.js'
import { serveFastify } from './apps.js'

const fake = await FakeLitefs.start({ role: 'replica', txid: 1n })
const served = await serveFastify(fake)
await until(() => fake.subscribers === 1)
const ac = new AbortController()
const held = request(`${served.url}/items`, { headers: { cookie: 'litefs-txid=00000000000000ff' }, signal: ac.signal }).catch(() => 'aborted')
await until(() => served.app.litefs.state.waiterCount === 1)
ac.abort()
await held
await served.app.close()
await fake.close()
