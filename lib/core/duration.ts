// Durations in options accept milliseconds or the short strings people write in
// litefs.yml ("5s", "250ms", "1m"), so settings can be copied across unchanged.
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/

/** Milliseconds for a duration option, or undefined when the value is not one. */
export function parseDuration (value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value : undefined
  }
  if (typeof value !== 'string') return undefined
  const m = PATTERN.exec(value)
  if (m === null) return undefined
  return Number(m[1]) * UNITS[m[2] ?? 'ms']
}
