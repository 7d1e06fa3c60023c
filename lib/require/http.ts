// `require('litefs-proxy/http')` is `wrap` itself (and has `.wrap`), as the
// default import is. Compiled for the CommonJS build only (`export =`).
import * as mod from '../http.js'

function wrap (handler: Parameters<typeof mod.wrap>[0], options: mod.HttpLitefsOptions): mod.WrappedListener {
  return mod.wrap(handler, options)
}

// eslint-disable-next-line @typescript-eslint/no-namespace
namespace wrap {
  /** `wrap` itself: `import { wrap } from 'litefs-proxy/http'` in CommonJS TypeScript. */
  export declare const wrap: (handler: Parameters<typeof mod.wrap>[0], options: mod.HttpLitefsOptions) => mod.WrappedListener
  export const LitefsHttpError = mod.LitefsHttpError
  export const LitefsOptionsError = mod.LitefsOptionsError
  export const CHANNELS = mod.CHANNELS
  export type LitefsStats = mod.LitefsStats
  export type HttpLitefsOptions = mod.HttpLitefsOptions
  export type WrappedListener = mod.WrappedListener
  export type UpgradeListener = mod.UpgradeListener
  export type LitefsInfo = mod.LitefsInfo
  export type LitefsAnswer = mod.LitefsAnswer
}
Object.defineProperty(wrap, 'wrap', { value: wrap, enumerable: true })
Object.defineProperty(wrap, 'default', { value: wrap, enumerable: true })

export = wrap
