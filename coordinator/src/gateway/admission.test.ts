/**
 * Admission control on the upgrade path: the pure verdict (properties), and the
 * admitter's bookkeeping driven with explicit times.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_RETRY_AFTER_S, UpgradeAdmission, judgeUpgrade, retryAfterBoundS, type AdmissionOptions, type LoopSignal } from './admission.ts';
import { backoffDelay } from '@nodekeeper/common';
import { prng } from '../testing/prng.ts';

const opts: AdmissionOptions = { maxPending: 50, perSecond: 10, maxLoopDelayMs: 200, maxLoopUtilization: 0.9 };
const input = fc.record({
  pending: fc.integer({ min: 0, max: 200 }),
  loopDelayMs: fc.integer({ min: 0, max: 5000 }),
  loopUtilization: fc.double({ min: 0, max: 1, noNaN: true }),
  recentlyRefused: fc.integer({ min: 0, max: 100_000 }),
  admittedPerSecond: fc.option(fc.double({ min: 0, max: 5000, noNaN: true }), { nil: undefined }),
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

test('a refusal always says when to come back: 1 s to the cap, later for a bigger crowd or a slower door', () => {
  fc.assert(fc.property(input, fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (i, more, slower) => {
    const blocked = { ...i, tokenAvailable: false };
    const v = judgeUpgrade(blocked, opts);
    const w = judgeUpgrade({ ...blocked, recentlyRefused: i.recentlyRefused + more }, opts);
    const x = judgeUpgrade({ ...blocked, admittedPerSecond: (i.admittedPerSecond ?? opts.perSecond) * slower }, opts);
    assert.ok(!v.admit && !w.admit);
    assert.ok(v.retryAfterS >= 1 && v.retryAfterS <= MAX_RETRY_AFTER_S && Number.isInteger(v.retryAfterS));
    assert.ok(w.retryAfterS >= v.retryAfterS, 'a bigger crowd is never told to come back sooner');
    assert.ok(!x.admit && x.retryAfterS >= v.retryAfterS, 'nor is a crowd at a door that admits fewer');
    const bound = Math.ceil((i.pending + i.recentlyRefused) / (opts.perSecond / 10));
    assert.ok(v.retryAfterS <= Math.max(1, bound), 'never beyond the crowd at the trickle');
  }));
});

/** A loop that keeps up (or not): admission's view of it, fixed. */
const loop = (busy = 0): LoopSignal => ({ delayMs: 0, utilization: busy, stop: () => {} });

test('the admitter lets a burst of one second through, then refuses until the rate allows', () => {
  const a = new UpgradeAdmission({ ...opts, maxPending: 1000 }, 0, loop());
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
  const a = new UpgradeAdmission({ ...opts, maxPending: 3, perSecond: 1000 }, 0, loop());
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

test('a full door refuses before any credential is checked, and counts the refusal in the crowd', () => {
  const a = new UpgradeAdmission({ ...opts, maxPending: 2, perSecond: 1000 }, 0, loop());
  try {
    assert.equal(a.refuseIfFull(0), null, 'room: the credential is checked, then judge() decides');
    assert.equal(a.judge(0).admit, true);
    assert.equal(a.refuseIfFull(0), null);
    assert.equal(a.judge(0).admit, true);
    const first = a.refuseIfFull(0);
    assert.ok(first !== null && !first.admit && first.reason === 'pending');
    for (let i = 0; i < 5000; i += 1) a.refuseIfFull(0);
    const later = a.refuseIfFull(0);
    assert.ok(later !== null && !later.admit && later.retryAfterS > first.retryAfterS, 'the crowd refused before the check makes Retry-After grow');
    assert.equal(a.pending, 2, 'nothing taken');
    a.settled();
    assert.equal(a.refuseIfFull(1), null);
  } finally {
    a.stop();
  }
});

/**
 * A crowd redialling as agents do (packages/common backoffDelay: the Retry-After plus up
 * to as much again) at a door configured for `perSecond` whose coordinator can welcome
 * only `capacity` a second (each admitted connection is pending for 1/capacity x
 * maxPending seconds). Time moves in 100 ms steps. Returns refusals per agent.
 */
function crowdAtTheDoor(crowd: number, perSecond: number, capacity: number): number {
  const maxPending = 50;
  const a = new UpgradeAdmission({ maxPending, perSecond, maxLoopDelayMs: 500, maxLoopUtilization: 0.9 }, 0, loop());
  const random = prng(7);
  const dialAt = Array.from({ length: crowd }, () => Math.floor(random() * 1000));
  const welcomes: number[] = [];
  let refusals = 0;
  let admitted = 0;
  for (let t = 0; admitted < crowd; t += 100) {
    assert.ok(t < 3_600_000, `all admitted within an hour (${admitted} of ${crowd})`);
    while (welcomes.length > 0 && welcomes[0]! <= t) {
      welcomes.shift();
      a.settled();
    }
    for (let i = 0; i < crowd; i += 1) {
      if (dialAt[i]! < 0 || dialAt[i]! > t) continue;
      const v = a.judge(t);
      if (v.admit) {
        admitted += 1;
        dialAt[i] = -1;
        welcomes.push(Math.max(t, welcomes.at(-1) ?? 0) + 1000 / capacity);
      } else {
        refusals += 1;
        dialAt[i] = t + backoffDelay({ baseMs: 500, capMs: 30_000 }, 5, random, v.retryAfterS * 1000);
      }
    }
  }
  return refusals / crowd;
}

test('a crowd at a door slower than its configured rate is told to come back when it can be let in, not again and again', () => {
  // 5,000 agents, a door configured for 1,000 a second that welcomes 100: sized to the
  // configured rate, Retry-After sent the crowd back ten times too soon (5.7
  // refusals an agent in this model; 66,000 for 19,000 agents in the 19 k wss storm).
  const slow = crowdAtTheDoor(5000, 1000, 100);
  assert.ok(slow < 4, `${slow.toFixed(1)} refusals an agent at a slow door`);
  // A door as fast as configured refuses about as little.
  const fast = crowdAtTheDoor(5000, 100, 100);
  assert.ok(fast < 4, `${fast.toFixed(1)} refusals an agent at a door as fast as configured`);
});

test('the longest Retry-After stays within retryAfterBoundS for any crowd that redials no sooner than told', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 10, max: 2000 }), (machines, perSecond) => {
    const a = new UpgradeAdmission({ maxPending: machines, perSecond, maxLoopDelayMs: 500, maxLoopUtilization: 0.9 }, 0, loop(1));
    const bound = retryAfterBoundS(machines, perSecond);
    // Every machine admitted and none welcomed (pending full), then each redials once a second.
    for (let t = 0; t < 4000; t += 1000) {
      for (let i = 0; i < machines; i += 1) {
        const v = a.judge(t);
        if (!v.admit) assert.ok(v.retryAfterS <= bound, `${v.retryAfterS} s > ${bound} s`);
      }
    }
  }), { numRuns: 40 });
});
