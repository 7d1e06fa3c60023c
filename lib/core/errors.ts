// Every answer the proxy gives instead of the app's: a status, a stable code
// for clients and dashboards, a one-line message, and optional headers.
export class LitefsHttpError extends Error {
  /** Express and http-errors read `status`; Fastify reads `statusCode`. */
  readonly status: number
  readonly expose = true

  constructor (
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {}
  ) {
    super(message)
    this.name = 'LitefsHttpError'
    this.status = statusCode
  }

  /** The one-line JSON body: `{"error":"…","code":"…"}`. */
  get body (): string {
    return JSON.stringify({ error: this.message, code: this.code })
  }
}

/** What a failed attempt met, in a word where there is one: the error's code (`ECONNREFUSED`, `UND_ERR_SOCKET`), else its message. */
export function reasonOf (err: unknown): string {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)
}
