/**
 * Properties of the Node condition diff (node-conditions.ts), on random Nodes (the
 * kubelet's conditions, other controllers', garbage, and ours in any state, with good
 * and bad times) and random sequences of desired conditions over time:
 *   - a type nodekeeper does not own is never sent, so after the patch every other
 *     entry is byte-identical and in place;
 *   - lastTransitionTime moves only when status changes (or was not a true time);
 *   - idempotent: planning against the patched Node gives an empty patch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyConditionPatch, kubeTime, NODE_CONDITION_TYPES, ownsConditionType, planConditionPatch, type DesiredCondition } from './node-conditions.ts';

const T0 = Date.parse('2026-12-03T10:00:00Z');
const status = fc.constantFrom('True', 'False', 'Unknown');
const time = fc.oneof(
  fc.integer({ min: T0 - 86_400_000 * 30, max: T0 }).map((ms) => kubeTime(ms)),
  fc.constantFrom(undefined, '', 'garbage', '2999-01-01T00:00:00Z', '0001-01-01T00:00:00Z', 17),
  fc.integer({ min: T0 - 86_400_000, max: T0 }).map((ms) => new Date(ms)),
);
const foreignType = fc.oneof(fc.constantFrom('Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable', 'KernelDeadlock', 'CorruptDockerOverlay2'), fc.string({ maxLength: 12 }));
const condition = (type: fc.Arbitrary<unknown>) => fc.record({ type, status, reason: fc.string({ maxLength: 10 }), message: fc.string({ maxLength: 20 }), lastTransitionTime: time, lastHeartbeatTime: time }, { requiredKeys: ['type'] });
const entry = fc.oneof(
  { weight: 4, arbitrary: condition(foreignType) },
  { weight: 4, arbitrary: condition(fc.constantFrom(...NODE_CONDITION_TYPES)) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.constant([]), fc.record({ status })) },
);
const desiredSet = fc.tuple(...NODE_CONDITION_TYPES.map((type) => fc.record({ status, reason: fc.constantFrom('A', 'B'), message: fc.constantFrom('x', 'y') }).map((d) => ({ type, ...d }) as DesiredCondition)));

const isOurs = (c: unknown) => c !== null && typeof c === 'object' && ownsConditionType((c as { type?: unknown }).type);
const firstOf = (list: readonly unknown[], type: string) => list.find((c) => isOurs(c) && (c as { type: string }).type === type) as Record<string, unknown> | undefined;

test('never touches a type it does not own; entries not ours stay byte-identical and in place', () => {
  fc.assert(fc.property(fc.array(entry, { maxLength: 40 }), fc.array(desiredSet, { minLength: 1, maxLength: 6 }), (node, steps) => {
    let current: unknown[] = node;
    for (const [i, desired] of steps.entries()) {
      const patch = planConditionPatch(current, desired, T0 + i * 1000);
      assert.ok(patch.every((p) => ownsConditionType(p.type)));
      const next = applyConditionPatch(current, patch);
      for (const [j, c] of current.entries()) if (!isOurs(c)) assert.equal(JSON.stringify(next[j]), JSON.stringify(c));
      current = next;
    }
  }), { numRuns: 300 });
});

test('lastTransitionTime moves only on a status change (or when it was not a true time); the patch is idempotent', () => {
  fc.assert(fc.property(fc.array(entry, { maxLength: 40 }), fc.array(desiredSet, { minLength: 1, maxLength: 8 }), (node, steps) => {
    let current: unknown[] = node;
    for (const [i, desired] of steps.entries()) {
      const now = T0 + (i + 1) * 61_000;
      const patch = planConditionPatch(current, desired, now);
      const next = applyConditionPatch(current, patch);
      for (const d of desired) {
        const before = firstOf(current, d.type);
        const after = firstOf(next, d.type)!;
        assert.equal(after['status'], d.status);
        assert.equal(after['reason'], d.reason);
        const t = before?.['lastTransitionTime'];
        const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : NaN;
        const trueTime = Number.isFinite(ms) && ms <= now;
        if (before !== undefined && before['status'] === d.status && trueTime) assert.equal(after['lastTransitionTime'], kubeTime(ms));
        else assert.equal(after['lastTransitionTime'], kubeTime(now));
      }
      assert.deepEqual(planConditionPatch(next, desired, now + 5000), [], 'the patched Node needs no further patch');
      current = next;
    }
  }), { numRuns: 300 });
});
