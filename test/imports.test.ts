import { test } from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

// No import circles in lib/ (issue 17): each module can be read after the ones
// it imports. Type-only imports count too: a circle of types is a circle of
// ideas. And no file grows past ~300 lines unless its header says why.

const LIB = resolve('lib')

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : []
  })
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g

function importsOf (file: string): string[] {
  const out: string[] = []
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')))
  }
  return out
}

test('no import circles in lib/', async t => {
  const graph = new Map(files(LIB).map(f => [f, importsOf(f)]))
  t.ok(graph.size > 20, `read ${graph.size} modules`)
  const cycles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (f: string): void => {
    if (state.get(f) === 'done') return
    if (state.get(f) === 'open') {
      cycles.push([...stack.slice(stack.indexOf(f)), f].map(p => relative(LIB, p)).join(' → '))
      return
    }
    state.set(f, 'open')
    stack.push(f)
    for (const g of graph.get(f) ?? []) if (graph.has(g)) visit(g)
    stack.pop()
    state.set(f, 'done')
  }
  for (const f of graph.keys()) visit(f)
  t.same(cycles, [], 'no module imports itself through others')
})

test('no file in lib/ over ~300 lines unless its header says why', async t => {
  const long = files(LIB).filter(f => {
    const text = readFileSync(f, 'utf8')
    return text.split('\n').length > 320 && !/^\/\/ Longer than 300 lines: /m.test(text.slice(0, 4000))
  }).map(f => relative(LIB, f))
  t.same(long, [], 'every long file explains itself')
})
