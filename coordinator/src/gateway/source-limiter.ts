/**
 * Failed authentication attempts per source address: a client that keeps presenting bad
 * credentials (or asking for re-enrollment nonces) is refused before any hashing or
 * store lookup, and never takes an admission slot from real agents. Only failures cost;
 * a fleet behind one NAT that authenticates fine is never slowed.
 *
 * Bounded: at most `maxSources` addresses are tracked; the stalest is dropped first.
 * Pure apart from the times it is given.
 */
import { AppError } from '@nodekeeper/common';
import { TokenBucket } from './rate-limit.ts';

export interface SourceLimitOptions {
  /** Sustained failures per second allowed from one address. */
  readonly perSecond: number;
  /** Failures allowed at once before the rate applies. */
  readonly burst: number;
  readonly maxSources: number;
}

export const DEFAULT_SOURCE_LIMIT: SourceLimitOptions = { perSecond: 0.5, burst: 20, maxSources: 10_000 };

export class SourceLimiter {
  private readonly opts: SourceLimitOptions;
  /** Insertion order is recency order: a touched entry is re-inserted at the end. */
  private readonly buckets = new Map<string, { bucket: TokenBucket; blockedUntil: number }>();

  constructor(opts: SourceLimitOptions = DEFAULT_SOURCE_LIMIT) {
    this.opts = opts;
  }

  /** Seconds the address must wait before trying again, or 0 when it may try now. */
  retryAfterS(source: string, now: number): number {
    const e = this.buckets.get(source);
    if (e === undefined || e.blockedUntil <= now) return 0;
    return Math.max(1, Math.ceil((e.blockedUntil - now) / 1000));
  }

  /** Records one failure from `source`; past its allowance the address is blocked for a while. */
  failed(source: string, now: number): void {
    let e = this.buckets.get(source);
    if (e === undefined) {
      e = { bucket: new TokenBucket(this.opts.perSecond, this.opts.burst, now), blockedUntil: 0 };
      if (this.buckets.size >= this.opts.maxSources) {
        const oldest = this.buckets.keys().next();
        if (oldest.done !== true) this.buckets.delete(oldest.value);
      }
    } else {
      this.buckets.delete(source);
    }
    this.buckets.set(source, e);
    // Blocked until the bucket would hold one token again.
    if (!e.bucket.take(now)) e.blockedUntil = now + Math.ceil(1000 / this.opts.perSecond);
  }

  /** How many addresses are tracked (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }
}

/** A SourceLimiter's refusal: NK_AUTH_TOO_MANY_FAILURES with the seconds to wait. */
export function tooManyFailures(retryAfterS: number): AppError {
  return new AppError('NK_AUTH_TOO_MANY_FAILURES', `too many failed authentication attempts from this address; retry after ${retryAfterS} s`, {
    context: { retryAfterS },
  });
}
