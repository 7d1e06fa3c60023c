// Durations in options accept milliseconds or the strings people write in
// litefs.yml, which LiteFS reads with Go's time.ParseDuration ("5s", "250ms",
// "1m30s", "1.5h"), so settings can be copied across unchanged.
const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PLAIN = /^\s*(\d+(?:\.\d+)?)\s*$/ // milliseconds
const GO = /^\s*((?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))+)\s*$/
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g

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
