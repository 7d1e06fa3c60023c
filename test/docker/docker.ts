// Docker for the deployment test (test/docker/compose.test.ts): `docker compose`
// commands run as the example's README writes them, bounded in time, and what a
// compose project leaves on the machine (containers, networks, volumes,
// mounts). It also guarantees the cleanup: every project brought up here is
// taken down (`down --volumes`) when the test ends, however it ends.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

export const ROOT = new URL('../../', import.meta.url).pathname

export interface Run { code: number | null, stdout: string, stderr: string, ms: number }

/** `docker ARGS…` from the repository root, killed after `timeoutMs`. */
export async function docker (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<Run> {
  const began = performance.now()
  return await new Promise(resolve => {
    const child = spawn('docker', args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const timer = setTimeout(() => { stderr += `\n(killed after ${opts.timeoutMs ?? 600_000} ms)`; child.kill('SIGTERM') }, opts.timeoutMs ?? 600_000)
    child.on('error', err => { stderr += String(err) })
    child.on('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: performance.now() - began }) })
  })
}

/** One compose variant: its file under examples/docker-compose, its project name, its port. */
export class Project {
  readonly name: string
  constructor (readonly file: string, readonly port: number) {
    const m = /^name:\s*(\S+)\s*$/m.exec(readFileSync(`${ROOT}${file}`, 'utf8'))
    if (m === null) throw new Error(`${file}: no top-level name:`)
    this.name = m[1]
  }

  /** `docker compose -f FILE ARGS…`, as the README writes it, with LB_PORT set to this test's port. */
  async compose (args: string[], timeoutMs = 120_000): Promise<Run> {
    return await docker(['compose', '-f', this.file, ...args], { env: { LB_PORT: String(this.port) }, timeoutMs })
  }

  /** The same, failing with the command's own words when it fails. */
  async must (args: string[], timeoutMs = 120_000): Promise<Run> {
    const r = await this.compose(args, timeoutMs)
    if (r.code !== 0) throw new Error(`docker compose -f ${this.file} ${args.join(' ')} exited ${r.code}:\n${tail(r.stderr + r.stdout, 40)}`)
    return r
  }

  /** Service name -> the address of its running container on the project's network. */
  async addresses (): Promise<Map<string, string>> {
    const ids = (await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${this.name}`])).stdout.split('\n').filter(Boolean)
    const out = new Map<string, string>()
    if (ids.length === 0) return out
    const r = await docker(['inspect', '-f', `{{index .Config.Labels "com.docker.compose.service"}} {{with index .NetworkSettings.Networks "${this.name}_nodes"}}{{.IPAddress}}{{end}}`, ...ids])
    for (const line of r.stdout.split('\n')) {
      const [service, ip] = line.trim().split(' ')
      if (service !== undefined && ip !== undefined && ip !== '') out.set(service, ip)
    }
    return out
  }

  /** What this project has on the machine: containers, networks and volumes, by name. */
  async leftovers (): Promise<{ containers: string[], networks: string[], volumes: string[] }> {
    const label = `label=com.docker.compose.project=${this.name}`
    const list = async (args: string[]): Promise<string[]> => (await docker(args)).stdout.split('\n').filter(Boolean)
    return {
      containers: await list(['ps', '-a', '--filter', label, '--format', '{{.Names}}']),
      networks: await list(['network', 'ls', '--filter', label, '--format', '{{.Name}}']),
      volumes: await list(['volume', 'ls', '--filter', label, '--format', '{{.Name}}'])
    }
  }

  /** Container logs of the last lines of every service, for a failure's message. */
  async logs (lines = 30): Promise<string> {
    return (await this.compose(['logs', '--no-color', '--tail', String(lines)], 30_000)).stdout
  }
}

export const tail = (s: string, n: number): string => s.trimEnd().split('\n').slice(-n).join('\n')

/** Every container's id, running or not. */
export async function containerIds (): Promise<Set<string>> {
  return new Set((await docker(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean))
}

/**
 * Remove the containers a build left: the classic builder (Compose without
 * buildx) keeps the container of a failed step. `before`: the ids before the
 * build; a container created since that belongs to no compose project is the
 * builder's. Returns how many were removed.
 */
export async function removeBuildLeftovers (before: Set<string>): Promise<number> {
  const fresh = [...await containerIds()].filter(id => !before.has(id))
  if (fresh.length === 0) return 0
  const r = await docker(['inspect', '-f', '{{.Id}} {{index .Config.Labels "com.docker.compose.project"}}', ...fresh])
  const builders = r.stdout.split('\n').map(l => l.trim().split(' ')).filter(([id, project]) => id !== '' && (project ?? '') === '').map(([id]) => id)
  if (builders.length > 0) await docker(['rm', '-f', ...builders])
  return builders.length
}

/** Mount points on the host that belong to Docker's storage or to FUSE. */
export function hostMounts (): string[] {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n')
    .filter(l => /\s(fuse[.\w]*|overlay)\s/.test(l) || l.includes('/var/lib/docker/'))
    .map(l => l.split(' ')[1]).sort()
}

// --- cleanup, whatever happens -------------------------------------------------------

const up = new Set<Project>()

/** Remember a project before bringing it up: it is taken down at exit, even on a crash. */
export function track (p: Project): void { up.add(p) }

/** Take a project down now (containers, networks, volumes), and forget it. */
export async function takeDown (p: Project): Promise<Run> {
  const r = await p.compose(['down', '--volumes', '--remove-orphans', '--timeout', '5'], 120_000)
  up.delete(p)
  return r
}

function takeDownAllSync (): void {
  for (const p of up) {
    spawnSync('docker', ['compose', '-f', p.file, 'down', '--volumes', '--remove-orphans', '--timeout', '5'], { cwd: ROOT, env: { ...process.env, LB_PORT: String(p.port) }, stdio: 'ignore', timeout: 120_000 })
  }
  up.clear()
}
process.on('exit', takeDownAllSync)
// 'exit' does not run when a signal ends the process (tap's timeout sends SIGTERM).
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => { takeDownAllSync(); process.exit(128 + (sig === 'SIGHUP' ? 1 : sig === 'SIGINT' ? 2 : 15)) })
}
