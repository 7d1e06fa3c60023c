import t from 'tap'
import { IndexedHeap } from '../lib/core/heap.js'

interface Item { key: number, slot: number }
const heap = (): IndexedHeap<Item> => new IndexedHeap<Item>((a, b) => a.key < b.key, i => i.slot, (i, s) => { i.slot = s })

t.test('pops in order, removes anything in place', async t => {
  const h = heap()
  t.equal(h.pop(), undefined)
  const items = Array.from({ length: 500 }, (_, i) => ({ key: (i * 7919) % 503, slot: -1 }))
  for (const i of items) h.push(i)
  const gone = items.filter((_, i) => i % 3 === 0)
  for (const i of gone) h.remove(i)
  t.ok(gone.every(i => i.slot === -1), 'a removed item has no slot')
  h.remove(gone[0]) // twice: nothing happens
  h.remove({ key: 1, slot: 5 }) // never pushed: nothing happens
  t.equal(h.size, items.length - gone.length)
  const out: number[] = []
  let i: Item | undefined
  while ((i = h.pop()) !== undefined) out.push(i.key)
  const expected = items.filter(x => !gone.includes(x)).map(x => x.key).sort((a, b) => a - b)
  t.same(out, expected)
  t.equal(h.peek(), undefined)
})

t.test('removing the last slot', async t => {
  const h = heap()
  const a = { key: 1, slot: -1 }
  const b = { key: 2, slot: -1 }
  h.push(a); h.push(b)
  h.remove(b)
  t.equal(h.size, 1)
  t.equal(h.pop(), a)
})
