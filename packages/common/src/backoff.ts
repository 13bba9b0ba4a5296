/**
 * Reconnect delays with exponential growth and full jitter (AWS architecture blog,
 * "Exponential Backoff And Jitter"): delay = random(0, min(cap, base * 2^attempt)).
 * Full jitter spreads a fleet's reconnects after a coordinator restart instead of
 * bringing them back in waves; a server's retry-after is a floor on top of it.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

export const defaultBackoff: BackoffPolicy = Object.freeze({ baseMs: 500, capMs: 30_000 });

/** Delay before reconnect attempt `attempt` (0-based). `random` returns [0, 1). */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
  retryAfterMs = 0,
): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be a non-negative integer, got ${attempt}`);
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  const jittered = Math.floor(random() * ceiling);
  // A server's retry-after is honoured, with jitter on top so the fleet does not return at once.
  return retryAfterMs > 0 ? retryAfterMs + Math.floor(random() * Math.min(policy.capMs, retryAfterMs)) : jittered;
}

/** A delay spread by +-fraction, for periodic timers (heartbeats, probes). */
export function jittered(ms: number, fraction = 0.1, random: () => number = Math.random): number {
  return Math.max(0, Math.round(ms * (1 - fraction + 2 * fraction * random())));
}
