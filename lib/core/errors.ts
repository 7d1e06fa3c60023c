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
