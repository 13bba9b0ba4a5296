/**
 * Host-side liveness of member clusters, judged on the observer's own clock: a member
 * is Unknown when the observer has not SEEN its Lease's renewTime change for longer
 * than the grace period. The member's clock is never compared with the observer's
 * (renewTime is only compared with its own previous value), so clock skew cannot make
 * a healthy member look dead or a dead one look alive. Pure.
 */

export interface LeaseSighting {
  /** renewTime as last read, verbatim. */
  readonly renewTime: string | null;
  /** Observer's monotonic time when renewTime was last seen to change (or first seen). */
  readonly changedAt: number;
}

/** The next sighting after reading the Lease at `now` (null renewTime: no Lease). */
export function sight(prev: LeaseSighting | undefined, renewTime: string | null, now: number): LeaseSighting {
  if (prev === undefined || prev.renewTime !== renewTime) return { renewTime, changedAt: now };
  return prev;
}

export type LeaseVerdict = { readonly fresh: true } | { readonly fresh: false; readonly silentMs: number };

/**
 * Fresh unless the renewTime has not changed for more than `graceMs` of the
 * observer's time. A newly started observer first sees every Lease as changed "now",
 * so its own restart never makes a member Unknown.
 */
export function judgeLease(s: LeaseSighting, now: number, graceMs: number): LeaseVerdict {
  const silentMs = now - s.changedAt;
  return silentMs > graceMs ? { fresh: false, silentMs } : { fresh: true };
}
