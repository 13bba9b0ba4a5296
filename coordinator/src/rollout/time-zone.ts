/** Time zone names: the spec validates a window's zone with this, and window.ts reads times in it. */

/**
 * The canonical name of an IANA time zone (`europe/berlin` -> `Europe/Berlin`), or null
 * when the runtime's tz database does not know it.
 */
export function canonicalTimeZone(name: string): string | null {
  if (name.length === 0 || name.length > 64) return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}
