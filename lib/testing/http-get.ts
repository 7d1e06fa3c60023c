/**
 * One bounded GET from the test process, directly (global fetch) or through a
 * dispatcher that reaches into a cluster's network namespaces (`netns-gateway.ts`).
 */
import { request, type Dispatcher } from 'undici'

export async function httpGet (url: string, timeoutMs: number, dispatcher?: Dispatcher): Promise<{ status: number, body: string }> {
  if (dispatcher === undefined) {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    return { status: res.status, body: await res.text() }
  }
  const res = await request(url, { dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) })
  return { status: res.statusCode, body: await res.body.text() }
}
