// npm run build && node examples/express/dev.mjs
import { createServer } from 'node:http'
import { buildApp } from './app.mjs'
import { runOnDevCluster } from '../shared/dev-run.mjs'

await runOnDevCluster('Express', async (node, options) => {
  const { app, proxy } = buildApp({ litefs: options, database: () => node.db })
  const server = createServer(app)
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)); await proxy.close() }
  }
})
