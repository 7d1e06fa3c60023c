// `require('litefs-proxy/express')` is the middleware factory itself, as
// `import litefs from 'litefs-proxy/express'` is: `const litefs = require(…);
// app.use(litefs({ db }))`, `litefs.skip()`. Its named exports hang on it too.
// Compiled for the CommonJS build only (`export =`).
import * as mod from '../express.js'

function litefs (options: mod.ExpressLitefsOptions): mod.LitefsMiddleware {
  return mod.litefs(options)
}

// eslint-disable-next-line @typescript-eslint/no-namespace
namespace litefs {
  /** The factory itself: `import { litefs } from 'litefs-proxy/express'` in CommonJS TypeScript. */
  export declare const litefs: typeof mod.litefs
  export const skip = mod.litefs.skip
  export const alwaysForward = mod.litefs.alwaysForward
  export const durable = mod.litefs.durable
  export const errorHandler = mod.litefs.errorHandler
  export const LitefsHttpError = mod.LitefsHttpError
  export const LitefsOptionsError = mod.LitefsOptionsError
  export const CHANNELS = mod.CHANNELS
  export type LitefsStats = mod.LitefsStats
  export type ExpressLitefsOptions = mod.ExpressLitefsOptions
  export type LitefsMiddleware = mod.LitefsMiddleware
  export type UpgradeListener = mod.UpgradeListener
  export type LitefsInfo = mod.LitefsInfo
  export type LitefsAnswer = mod.LitefsAnswer
}
Object.defineProperty(litefs, 'litefs', { value: litefs, enumerable: true })
Object.defineProperty(litefs, 'default', { value: litefs, enumerable: true })

export = litefs
