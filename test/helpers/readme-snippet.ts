// A runnable README snippet by name (```js <name> … ```), for the tests that run them as written.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** The repository's root directory. */
export const root = new URL('../..', import.meta.url).pathname
const readme = readFileSync(join(root, 'README.md'), 'utf8')

/** The code of the README's ```js `name` block; throws when there is none. */
export function snippet (name: string): string {
  const m = new RegExp('```js ' + name.replace('.', '\\.') + '\\n([\\s\\S]*?)```').exec(readme)
  if (m === null) throw new Error(`README.md has no ${name}`)
  return m[1]
}
