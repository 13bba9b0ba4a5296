/**
 * Backoff with full jitter: properties over any policy, attempt and random value,
 * plus a few exact cases that pin the formula down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffDelay, defaultBackoff, jittered, type BackoffPolicy } from './backoff.ts';

const policy = fc.record({ baseMs: fc.integer({ min: 1, max: 10_000 }), capMs: fc.integer({ min: 1, max: 3_600_000 }) });
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const attempt = fc.integer({ min: 0, max: 10_000 });
const ceiling = (p: BackoffPolicy, n: number) => Math.min(p.capMs, p.baseMs * 2 ** n);

test('a delay is an integer in [0, min(cap, base * 2^attempt))', () => {
  fc.assert(
    fc.property(policy, attempt, unit, (p, n, r) => {
      const d = backoffDelay(p, n, () => r);
      assert.ok(Number.isInteger(d), `delay ${d} is not an integer`);
      assert.ok(d >= 0 && d < ceiling(p, n), `delay ${d} outside [0, ${ceiling(p, n)})`);
    }),
  );
});

test('for the same random draw, delays never shrink as attempts grow, and stop at the cap', () => {
  fc.assert(
    fc.property(policy, attempt, attempt, unit, (p, a, b, r) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      assert.ok(backoffDelay(p, lo, () => r) <= backoffDelay(p, hi, () => r));
      assert.ok(backoffDelay(p, hi, () => r) <= p.capMs);
    }),
  );
});

test('the ceiling doubles per attempt: the largest draw gives just under base * 2^n', () => {
  const p = { baseMs: 100, capMs: 1000 };
  const top = () => 0.9999;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 40, 5000].map((n) => backoffDelay(p, n, top)), [99, 199, 399, 799, 999, 999, 999, 999]);
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(p, n, () => 0)), [0, 0, 0, 0]);
});

test('huge attempt numbers neither overflow nor exceed the cap', () => {
  for (const n of [31, 1024, 1_000_000, Number.MAX_SAFE_INTEGER]) {
    const d = backoffDelay(defaultBackoff, n, () => 0.5);
    assert.equal(d, defaultBackoff.capMs / 2);
  }
});

test("a server's retry-after is a floor, with jitter of at most min(cap, retry-after) on top", () => {
  fc.assert(
    fc.property(policy, attempt, unit, fc.integer({ min: 1, max: 3_600_000 }), (p, n, r, retryAfter) => {
      const d = backoffDelay(p, n, () => r, retryAfter);
      assert.ok(Number.isInteger(d));
      assert.ok(d >= retryAfter, `delay ${d} below retry-after ${retryAfter}`);
      assert.ok(d < retryAfter + Math.min(p.capMs, retryAfter), `delay ${d} too far past retry-after ${retryAfter}`);
    }),
  );
});

test('a retry-after of zero (or less) leaves plain backoff', () => {
  fc.assert(
    fc.property(policy, attempt, unit, fc.integer({ min: -1000, max: 0 }), (p, n, r, retryAfter) => {
      assert.equal(backoffDelay(p, n, () => r, retryAfter), backoffDelay(p, n, () => r));
    }),
  );
});

test('a bad attempt number is a RangeError', () => {
  for (const n of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, -Number.MAX_SAFE_INTEGER]) {
    assert.throws(() => backoffDelay(defaultBackoff, n), RangeError, `attempt ${n}`);
  }
  fc.assert(
    fc.property(fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true })), (n) => {
      assert.throws(() => backoffDelay(defaultBackoff, n), RangeError);
    }),
  );
});

test('jittered spreads a period by at most +-fraction and is never negative', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 3_600_000 }), fc.double({ min: 0, max: 1, noNaN: true }), unit, (ms, f, r) => {
      const d = jittered(ms, f, () => r);
      assert.ok(Number.isInteger(d) && d >= 0);
      assert.ok(d >= Math.floor(ms * (1 - f)) && d <= Math.ceil(ms * (1 + f)), `${d} outside ${ms} +-${f}`);
    }),
  );
  assert.equal(jittered(1000, 0.1, () => 0), 900);
  assert.equal(jittered(1000, 0.1, () => 0.5), 1000);
});
