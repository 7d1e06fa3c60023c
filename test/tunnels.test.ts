// Tunnels (lib/core/tunnels.ts) on real TCP sockets: ending a piped pair flushes
// and closes both ways; a peer that keeps its side open is cut after END_GRACE;
// a pair opened after end() is ended at once; one side already gone is skipped.
// The WebSocket cases, through each adapter and serve: websocket-close.test.ts.
import t from 'tap'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Tunnels } from '../lib/core/tunnels.js'

interface Pair { near: Socket, far: Socket }

/** A connected pair: `near` the socket a tunnel holds, `far` its peer (half-open allowed: it decides when its side ends). */
async function pair (t: Pick<typeof t, 'teardown'>): Promise<Pair> {
  const server: Server = createServer({ allowHalfOpen: true })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const far = new Promise<Socket>(resolve => server.once('connection', resolve))
  const near = connect((server.address() as { port: number }).port, '127.0.0.1')
  await new Promise<void>(resolve => near.once('connect', resolve))
  const p = { near, far: await far }
  t.teardown(() => { p.near.destroy(); p.far.destroy(); server.close() })
  return p
}

/** Once `s` has emitted 'close' (not just `closed`, which comes a tick before it). */
const closed = async (s: Socket): Promise<void> => { if (!(s as unknown as { _readableState: { closeEmitted: boolean } })._readableState.closeEmitted) await new Promise(resolve => s.once('close', resolve)) }

t.test('end(): what was written is flushed, each peer sees the end, both sockets close; counted', async t => {
  const a = await pair(t)
  const b = await pair(t)
  a.near.pipe(b.near)
  b.near.pipe(a.near)
  const tunnels = new Tunnels()
  tunnels.add(a.near, b.near)
  t.equal(tunnels.size, 1)
  const events: string[] = []
  let got = ''
  a.far.on('data', d => { got += String(d) })
  for (const [name, far] of [['client', a.far], ['other', b.far]] as const) {
    far.on('end', () => { events.push(`${name} end`); far.end() }) // a peer that closes its side when told, as ws does
  }
  a.near.write('last words')
  t.equal(tunnels.end(), 1, 'one was open')
  await Promise.all([closed(a.near), closed(b.near)])
  t.same(events.sort(), ['client end', 'other end'], 'both peers saw the end')
  t.equal(got, 'last words', 'written before the end: delivered')
  t.equal(tunnels.size, 0, 'forgotten once closed')
})

t.test('a peer that keeps its side open is cut after the grace', async t => {
  const a = await pair(t)
  const b = await pair(t)
  const tunnels = new Tunnels()
  tunnels.add(a.near, b.near)
  const order: string[] = []
  a.far.on('end', () => order.push('peer saw the end')) // and never ends its own side
  a.far.on('data', () => {})
  b.far.on('end', () => b.far.end())
  a.near.once('close', () => order.push('closed'))
  tunnels.end()
  await closed(a.near)
  t.same(order, ['peer saw the end', 'closed'], 'told first, cut after')
})

t.test('after end(), a tunnel added is ended at once; a side already destroyed is left alone', async t => {
  const tunnels = new Tunnels()
  t.equal(tunnels.end(), 0, 'none open')
  const a = await pair(t)
  const b = await pair(t)
  b.near.destroy()
  a.far.on('end', () => a.far.end())
  tunnels.add(a.near, b.near)
  await closed(a.near)
  t.ok(a.near.destroyed && b.near.destroyed)
  t.equal(tunnels.size, 0)
})

t.test('a tunnel whose client is destroyed but not yet closed is not counted', async t => {
  const a = await pair(t)
  const b = await pair(t)
  const tunnels = new Tunnels()
  tunnels.add(a.near, b.near)
  const closing = new Promise(resolve => a.near.once('close', resolve))
  a.near.destroy() // its 'close' comes a tick later
  t.equal(tunnels.end(), 0)
  await closing
  t.equal(tunnels.size, 0)
})
