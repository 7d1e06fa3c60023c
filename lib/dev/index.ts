// litefs-proxy's dev tools: LiteFS emulated in one process, for tests, demos and
// development on machines without FUSE. Production runs real LiteFS.
export { createDevCluster, type DevCluster, type DevClusterOptions, type DevNode } from './cluster.js'
