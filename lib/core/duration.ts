// Durations in options accept milliseconds or the strings people write in
// litefs.yml, which LiteFS reads with Go's time.ParseDuration ("5s", "250ms",
// "1m30s", "1.5h"), so settings can be copied across unchanged.
const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PLAIN = /^\s*(\d+(?:\.\d+)?)\s*$/ // milliseconds
const GO = /^\s*((?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))+)\s*$/
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g

/**
 * The longest duration a timer takes (ms): Node's setTimeout keeps at most
 * 2^31 − 1 ms (24.8 days); past it, it warns (TimeoutOverflowWarning) and fires
 * after 1 ms. A duration option that becomes a timer is refused above it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The words an option or flag error gives for MAX_TIMER_MS. */
export const MAX_TIMER_WORDS = 'at most 24.8 days (2147483647 ms, the longest timer Node keeps)'

/** Milliseconds for a duration option, or undefined when the value is not one. */
export function parseDuration (value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value : undefined
  }
  if (typeof value !== 'string') return undefined
  const plain = PLAIN.exec(value)
  if (plain !== null) return Number(plain[1])
  const go = GO.exec(value)
  if (go === null) return undefined
  let ms = 0
  for (const [, n, unit] of go[1].matchAll(PART)) ms += Number(n) * UNITS[unit]
  return ms
}
