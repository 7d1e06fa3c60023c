// `require('litefs-proxy/fastify')` is the plugin itself, as the default import
// is (`app.register(require('litefs-proxy/fastify'), { db })`), with `.litefs`
// and `.default` as Fastify's own plugins have. CommonJS build only (`export =`).
import * as mod from '../fastify.js'

const plugin = mod.litefs as typeof mod.litefs & {
  litefs: typeof mod.litefs
  default: typeof mod.litefs
  LitefsHttpError: typeof mod.LitefsHttpError
  LitefsCore: typeof mod.LitefsCore
  LitefsOptionsError: typeof mod.LitefsOptionsError
  CHANNELS: typeof mod.CHANNELS
}
plugin.litefs = mod.litefs
plugin.default = mod.litefs
plugin.LitefsHttpError = mod.LitefsHttpError
plugin.LitefsCore = mod.LitefsCore
plugin.LitefsOptionsError = mod.LitefsOptionsError
plugin.CHANNELS = mod.CHANNELS

export = plugin
