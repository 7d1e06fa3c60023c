// The failover suite's apps, one set per node, in the node's namespace:
//   plugin  the Fastify app with litefs-proxy in-process (plugin-app.mjs);
//   serve   `litefs-proxy serve` on the node's address in front of a small
//           Python app on the namespace's own 127.0.0.1 (small-app.py).
// Both listen on <node ip>:8080, wait 30 s for a primary (a crash failover
// takes 17–20 s), and fence writes on the cluster's Consul lease. Each app's stderr is kept (last 100 lines) for the report.
import { fileURLToPath } from 'node:url'
import type { ConsulCluster, ConsulNode, NodeApp } from '../../../lib/testing/litefs-cluster.js'

export type Variant = 'plugin' | 'serve'
export const APP_PORT = 8080
export const PRIMARY_REDIRECT_TIMEOUT = '30s'
/** The lease's lock-delay, in the cluster's litefs.yml and in the fence alike. */
export const LOCK_DELAY = '1s'
const TARGET_PORT = 8000
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))
const CLI = fileURLToPath(new URL('../../../dist/esm/cli/main.js', import.meta.url))

export const appLogs = new Map<string, string[]>()

function keepLog (name: string, app: NodeApp): NodeApp {
  const ring = appLogs.get(name) ?? []
  appLogs.set(name, ring)
  app.child.stderr?.setEncoding('utf8')
  app.child.stderr?.on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) { ring.push(line); if (ring.length > 100) ring.shift() }
  })
  void app.exited.then(() => { ring.push(`[exited: code ${app.child.exitCode} signal ${app.child.signalCode}]`) })
  return app
}

/** Starts `variant`'s apps beside `node`; `extra`: more plugin options, `serveArgs`: more serve flags (the durability suite's). */
export function startApps (cluster: ConsulCluster, node: ConsulNode, variant: Variant, extra: Record<string, unknown> = {}, serveArgs: readonly string[] = []): NodeApp[] {
  const urls = Object.fromEntries(cluster.nodes.map(n => [n.hostname, `http://${n.ip}:${APP_PORT}`]))
  const stdio: ['ignore', 'ignore', 'pipe'] = ['ignore', 'ignore', 'pipe']
  const common = { NODE: node.hostname, MOUNT: node.mount }
  if (variant === 'plugin') {
    return [keepLog(`${node.hostname} plugin`, node.spawnApp(process.execPath, ['--disable-warning=LitefsProxyWarning', here('plugin-app.mjs')], {
      stdio,
      env: {
        ...common,
        HOST: node.ip,
        PORT: String(APP_PORT),
        API: node.apiUrl,
        PRIMARY_URLS: JSON.stringify(urls),
        // The lease fence: the same Consul lease LiteFS uses (litefs.yml's lease.consul).
        OPTIONS: JSON.stringify({ primaryRedirectTimeout: PRIMARY_REDIRECT_TIMEOUT, consul: { url: cluster.consul.url, key: cluster.key, lockDelay: LOCK_DELAY, hostname: node.hostname }, ...extra })
      }
    }))]
  }
  const app = keepLog(`${node.hostname} python`, node.spawnApp('python3', [here('small-app.py')], { stdio, env: { ...common, PORT: String(TARGET_PORT) } }))
  const serve = keepLog(`${node.hostname} serve`, node.spawnApp(process.execPath, [CLI, 'serve',
    // --config: the node's own litefs.yml, whose Consul lease serve fences writes on.
    '--config', node.configPath,
    '--addr', `${node.ip}:${APP_PORT}`, '--target', `127.0.0.1:${TARGET_PORT}`, '--db', 'app.db', '--mount', node.mount, '--api', node.apiUrl,
    '--primary-url', Object.entries(urls).map(([h, u]) => `${h}=${u}`).join(','), '--primary-redirect-timeout', PRIMARY_REDIRECT_TIMEOUT,
    '--cookie-name', 'litefs-txid', '--log-level', 'warn', ...serveArgs], { stdio }))
  return [app, serve]
}
