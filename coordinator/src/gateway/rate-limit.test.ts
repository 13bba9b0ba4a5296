/**
 * The per-connection token bucket, driven with explicit times: exact cases, and the
 * property that no sequence of messages gets more than burst + rate * elapsed through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TokenBucket } from './rate-limit.ts';

/** How many of `n` messages at time `t` the bucket lets through. */
const takeN = (b: TokenBucket, n: number, t: number) => Array.from({ length: n }, () => b.take(t)).filter(Boolean).length;

test('a full bucket lets a burst through, then refuses', () => {
  const b = new TokenBucket(10, 5, 1000);
  assert.equal(takeN(b, 5, 1000), 5);
  assert.equal(b.take(1000), false);
  assert.equal(b.take(1000), false, 'refusals cost nothing and earn nothing');
});

test('tokens come back at the rate', () => {
  const b = new TokenBucket(10, 5, 0);
  takeN(b, 5, 0);
  assert.equal(b.take(99), false, 'not yet a whole token after 99 ms at 10/s');
  assert.equal(b.take(100), true);
  assert.equal(b.take(100), false);
  assert.equal(takeN(b, 10, 400), 3, '300 ms more at 10/s is 3 tokens');
  // Fractions add up across calls: 2 x 50 ms make one token.
  assert.equal(b.take(450), false);
  assert.equal(b.take(500), true);
});

test('an idle bucket fills up to the burst and no further', () => {
  const b = new TokenBucket(20, 100, 0);
  takeN(b, 100, 0);
  assert.equal(takeN(b, 1000, 3_600_000), 100, 'an hour idle still only gives a burst');
  const fractional = new TokenBucket(0.5, 1, 0);
  assert.equal(fractional.take(0), true);
  assert.equal(fractional.take(1999), false);
  assert.equal(fractional.take(2000), true, 'half a token per second: one every 2 s');
});

test('a clock that steps backwards earns nothing', () => {
  const b = new TokenBucket(1, 1, 0);
  assert.equal(b.take(1000), true);
  assert.equal(b.take(0), false);
  // Stepping forward again to a time already seen must not pay for the same second twice.
  assert.equal(b.take(1000), false);
  assert.equal(b.take(2000), true);
});

test('bad parameters are a RangeError', () => {
  for (const [rate, burst] of [
    [0, 10],
    [-1, 10],
    [Number.NaN, 10],
    [Number.POSITIVE_INFINITY, 10],
    [10, 0],
    [10, 0.5],
    [10, -5],
    [10, Number.NaN],
    [10, Number.POSITIVE_INFINITY],
  ] as const) {
    assert.throws(() => new TokenBucket(rate, burst, 0), RangeError, `rate ${rate}, burst ${burst}`);
  }
});

const params = fc.record({
  rate: fc.double({ min: 0.01, max: 1000, noNaN: true }),
  burst: fc.integer({ min: 1, max: 200 }),
  start: fc.integer({ min: 0, max: 1e12 }),
});

/** Rates low enough that 300 messages in 10 s can exceed what the bucket may allow. */
const slow = fc.record({
  rate: fc.double({ min: 0.01, max: 20, noNaN: true }),
  burst: fc.integer({ min: 1, max: 20 }),
  start: fc.integer({ min: 0, max: 1e12 }),
});

test('property: over increasing times, accepted <= burst + rate * elapsed', () => {
  fc.assert(
    fc.property(params, fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 500, size: 'max' }), ({ rate, burst, start }, gaps) => {
      const b = new TokenBucket(rate, burst, start);
      let t = start;
      let accepted = 0;
      for (const gap of gaps) {
        t += gap;
        if (b.take(t)) accepted += 1;
        assert.ok(accepted <= burst + (rate * (t - start)) / 1000 + 1e-9, `${accepted} accepted by ${t - start} ms`);
      }
    }),
  );
});

test('property: over any sequence of times, accepted <= burst + rate * (latest - start)', () => {
  // Times in any order: a clock may be stepped back (tests inject clocks; wall clocks jump).
  fc.assert(
    fc.property(slow, fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 300, size: 'max' }), ({ rate, burst, start }, offsets) => {
      const b = new TokenBucket(rate, burst, start);
      let latest = start;
      let accepted = 0;
      for (const off of offsets) {
        latest = Math.max(latest, start + off);
        if (b.take(start + off)) accepted += 1;
        assert.ok(accepted <= burst + (rate * (latest - start)) / 1000 + 1e-9, `${accepted} accepted by ${latest - start} ms`);
      }
    }),
  );
});

test('property: after the burst, a sender spaced at least 1/rate apart is never refused', () => {
  fc.assert(
    fc.property(params, fc.integer({ min: 1, max: 200 }), ({ rate, burst, start }, n) => {
      const b = new TokenBucket(rate, burst, start);
      assert.equal(takeN(b, burst + 1, start), burst, 'the burst, then one refusal');
      // One whole millisecond over the period absorbs float rounding of rate * elapsed.
      const gap = Math.ceil(1000 / rate) + 1;
      for (let i = 1; i <= n; i++) assert.equal(b.take(start + i * gap), true, `message ${i} after ${i * gap} ms`);
    }),
  );
});
