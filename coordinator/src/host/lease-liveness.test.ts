import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { judgeLease, sight, type LeaseSighting } from './lease-liveness.ts';


test('a member is Unknown only after the observer has not seen its Lease change for the grace period', () => {
  let s = sight(undefined, '2026-01-01T00:00:00.000000Z', 1000);
  assert.deepEqual(judgeLease(s, 41_000, 40_000), { fresh: true });
  assert.deepEqual(judgeLease(s, 41_001, 40_000), { fresh: false, silentMs: 40_001 });
  s = sight(s, '2026-01-01T00:00:10.000000Z', 41_001);
  assert.deepEqual(judgeLease(s, 41_002, 40_000), { fresh: true });
});

test('an observer that starts late sees every Lease as fresh at first (its restart is not a member fault)', () => {
  const s = sight(undefined, '2020-01-01T00:00:00Z', 5_000_000);
  assert.deepEqual(judgeLease(s, 5_000_000, 40_000), { fresh: true });
});

test('property: the verdict depends on when renewTime changed on the observer clock, never on its value', () => {
  fc.assert(
    fc.property(
      // Renew times as a skewed member clock writes them: any strings, any order.
      fc.array(fc.record({ renewTime: fc.oneof(fc.constant(null), fc.string({ maxLength: 30 })), advanceMs: fc.integer({ min: 0, max: 60_000 }) }), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 1000, max: 120_000 }),
      (reads, graceMs) => {
        let now = 0;
        let s: LeaseSighting | undefined;
        let lastChange = 0;
        let prevRenew: string | null | undefined;
        for (const r of reads) {
          now += r.advanceMs;
          s = sight(s, r.renewTime, now);
          if (prevRenew === undefined || r.renewTime !== prevRenew) lastChange = now;
          prevRenew = r.renewTime;
          const v = judgeLease(s, now, graceMs);
          assert.equal(v.fresh, now - lastChange <= graceMs);
        }
      },
    ),
    { numRuns: Number(process.env.NK_PROPERTY_RUNS ?? 200), seed: Number(process.env.NK_PROPERTY_SEED ?? 20261124) },
  );
});
