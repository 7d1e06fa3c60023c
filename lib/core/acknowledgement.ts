import type { LitefsAnswer } from './request.js'

// How the answer to a write served here as primary leaves (DESIGN §3.5): its
// acknowledgement, decided once the app's answer is ready and before its head
// goes out. Either the app's answer with headers added (the TXID cookie), or,
// when the write's outcome cannot be acknowledged, another answer in its place:
// the app's head and body are discarded and the client gets that one. Who
// decides is the core's (CoreContext.acknowledge; write-cookie.ts today), and
// may take its time (an asynchronous `-pos` read); the adapters hold the head
// until it is decided and apply it (deferred-head.ts, Fastify's onSend).

/** The app's answer, with these headers appended to its own (its own cookies stay). */
export interface Appended { readonly headers: ReadonlyArray<readonly [name: string, value: string]>, readonly replace?: undefined }

export type Acknowledgement =
  | Appended
  /** Not the app's answer: this one instead (status, headers and body). */
  | { readonly replace: LitefsAnswer, readonly headers?: undefined }

/** The app's answer as it is. */
export const AS_IS: Appended = { headers: [] }
