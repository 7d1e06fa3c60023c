// npm run build && node examples/node-http/dev.mjs
import { createServer } from 'node:http'
import { buildListener } from './app.mjs'
import { runOnDevCluster } from '../shared/dev-run.mjs'

await runOnDevCluster('node:http', async (node, options) => {
  const listener = buildListener({ litefs: options, database: () => node.db })
  const server = createServer(listener)
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)); await listener.close() }
  }
})
