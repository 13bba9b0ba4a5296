/**
 * Admission control on the upgrade path: the pure verdict (properties), and the
 * admitter's bookkeeping driven with explicit times.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_RETRY_AFTER_S, UpgradeAdmission, judgeUpgrade, type AdmissionOptions } from './admission.ts';

const opts: AdmissionOptions = { maxPending: 50, perSecond: 10, maxLoopDelayMs: 200, maxLoopUtilization: 0.9 };
const input = fc.record({
  pending: fc.integer({ min: 0, max: 200 }),
  loopDelayMs: fc.integer({ min: 0, max: 5000 }),
  loopUtilization: fc.double({ min: 0, max: 1, noNaN: true }),
  recentlyRefused: fc.integer({ min: 0, max: 100_000 }),
  tokenAvailable: fc.boolean(),
  trickleAvailable: fc.boolean(),
});

test('admits exactly when there is room, the loop keeps up (or the trickle allows) and the rate allows', () => {
  fc.assert(fc.property(input, (i) => {
    const v = judgeUpgrade(i, opts);
    const loopOk = (i.loopDelayMs <= opts.maxLoopDelayMs && i.loopUtilization <= opts.maxLoopUtilization) || i.trickleAvailable;
    const room = i.pending < opts.maxPending && loopOk && i.tokenAvailable;
    assert.equal(v.admit, room);
  }));
});

test('a loop busy over the bound, or stalled, lets only the trickle in, whatever the other', () => {
  fc.assert(fc.property(input, (i) => {
    const saturated = judgeUpgrade({ ...i, pending: 0, tokenAvailable: true, trickleAvailable: false, loopUtilization: Math.max(i.loopUtilization, 0.91) }, opts);
    const stalled = judgeUpgrade({ ...i, pending: 0, tokenAvailable: true, trickleAvailable: false, loopDelayMs: Math.max(i.loopDelayMs, 201) }, opts);
    assert.ok(!saturated.admit && saturated.reason === 'loop-delay');
    assert.ok(!stalled.admit && stalled.reason === 'loop-delay');
  }));
});

test('a refusal always says when to come back: 1 s to the cap, later for a bigger crowd', () => {
  fc.assert(fc.property(input, fc.integer({ min: 1, max: 10_000 }), (i, more) => {
    const blocked = { ...i, tokenAvailable: false };
    const v = judgeUpgrade(blocked, opts);
    const w = judgeUpgrade({ ...blocked, recentlyRefused: i.recentlyRefused + more }, opts);
    assert.ok(!v.admit && !w.admit);
    assert.ok(v.retryAfterS >= 1 && v.retryAfterS <= MAX_RETRY_AFTER_S && Number.isInteger(v.retryAfterS));
    assert.ok(w.retryAfterS >= v.retryAfterS, 'a bigger crowd is never told to come back sooner');
  }));
});

test('the admitter lets a burst of one second through, then refuses until the rate allows', () => {
  const a = new UpgradeAdmission({ ...opts, maxPending: 1000 }, 0);
  try {
    const first = Array.from({ length: 30 }, () => a.judge(0));
    assert.equal(first.filter((v) => v.admit).length, 10);
    const refused = first.filter((v) => !v.admit);
    assert.ok(refused.every((v) => !v.admit && v.reason === 'rate'));
    assert.equal(a.pending, 10);
    // Half a second later: five more tokens.
    assert.equal(Array.from({ length: 30 }, () => a.judge(500)).filter((v) => v.admit).length, 5);
  } finally {
    a.stop();
  }
});

test('connections between upgrade and welcome are bounded; a welcome frees a slot', () => {
  const a = new UpgradeAdmission({ ...opts, maxPending: 3, perSecond: 1000 }, 0);
  try {
    assert.deepEqual([1, 2, 3, 4].map(() => a.judge(0).admit), [true, true, true, false]);
    const v = a.judge(0);
    assert.ok(!v.admit && v.reason === 'pending');
    a.settled();
    assert.equal(a.judge(1).admit, true);
    assert.equal(a.pending, 3);
  } finally {
    a.stop();
  }
});
