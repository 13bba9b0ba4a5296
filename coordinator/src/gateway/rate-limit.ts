/**
 * A token bucket per connection: `perSecond` sustained, `burst` at once. Pure apart
 * from the clock it is given, so tests drive it with explicit times.
 */
export class TokenBucket {
  private readonly perSecond: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;

  constructor(perSecond: number, burst: number, now: number) {
    // Infinity would turn 0 elapsed * rate into NaN tokens, and NaN < 1 admits everything.
    if (!(perSecond > 0) || !(burst >= 1) || !Number.isFinite(perSecond) || !Number.isFinite(burst)) {
      throw new RangeError('rate limit needs a finite perSecond > 0 and burst >= 1');
    }
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token if there is one; false means the caller is over its rate. */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.last) / 1000;
    // Keep the latest time seen: after a step back, the same interval must not be paid twice.
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.perSecond);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
