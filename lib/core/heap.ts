// A binary min-heap whose items remember their own slot, so any item can be
// removed in O(log n) the moment its request goes away (timeout, disconnect)
// instead of lingering until it reaches the top.
export class IndexedHeap<T> {
  private readonly items: T[] = []

  constructor (
    private readonly less: (a: T, b: T) => boolean,
    private readonly getSlot: (item: T) => number,
    private readonly setSlot: (item: T, slot: number) => void
  ) {}

  get size (): number { return this.items.length }

  peek (): T | undefined { return this.items[0] }

  push (item: T): void {
    this.items.push(item)
    this.up(this.items.length - 1)
  }

  pop (): T | undefined {
    const top = this.items[0]
    if (top !== undefined) this.removeAt(0)
    return top
  }

  /** The items for which `pred` holds, in no particular order (a full scan: for rare events). */
  filter (pred: (item: T) => boolean): T[] {
    return this.items.filter(pred)
  }

  remove (item: T): void {
    const slot = this.getSlot(item)
    if (slot >= 0 && this.items[slot] === item) this.removeAt(slot)
  }

  private removeAt (slot: number): void {
    const items = this.items
    const gone = items[slot]
    const last = items.pop() as T
    this.setSlot(gone, -1)
    if (slot === items.length) return
    items[slot] = last
    this.setSlot(last, slot)
    this.down(slot)
    this.up(slot)
  }

  private up (slot: number): void {
    const items = this.items
    const item = items[slot]
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      if (!this.less(item, items[parent])) break
      items[slot] = items[parent]
      this.setSlot(items[slot], slot)
      slot = parent
    }
    items[slot] = item
    this.setSlot(item, slot)
  }

  private down (slot: number): void {
    const items = this.items
    const n = items.length
    const item = items[slot]
    for (;;) {
      let child = 2 * slot + 1
      if (child >= n) break
      if (child + 1 < n && this.less(items[child + 1], items[child])) child++
      if (!this.less(items[child], item)) break
      items[slot] = items[child]
      this.setSlot(items[slot], slot)
      slot = child
    }
    items[slot] = item
    this.setSlot(item, slot)
  }
}
