import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { newRolloutState } from './create.ts';
import { planStep } from './planner.ts';
import { sameJson } from './same-state.ts';
import { validateRolloutSpec } from './spec.ts';
import { SimFleet } from './test-support.ts';

/** JSON with keys sorted at every level: equal exactly when the values are. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x !== null && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

test('sameJson says what comparing the JSON would, key order aside', () => {
  fc.assert(fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
    assert.equal(sameJson(a, b), canonical(a) === canonical(b));
    assert.ok(sameJson(a, JSON.parse(JSON.stringify(a))));
  }), { numRuns: 500 });
});

test('sameJson tells apart values JSON tells apart, and ignores undefined properties', () => {
  assert.ok(!sameJson({ a: 1 }, { a: 1, b: null }));
  assert.ok(!sameJson({ a: [1, 2] }, { a: [2, 1] }));
  assert.ok(!sameJson([], {}));
  assert.ok(!sameJson({ a: '1' }, { a: 1 }));
  assert.ok(!sameJson({ m: { x: { phase: 'Waiting' } } }, { m: { x: { phase: 'Installing' } } }));
  assert.ok(sameJson({ a: 1, b: undefined }, { a: 1 }));
  assert.ok(sameJson({ b: 2, a: 1 }, { a: 1, b: 2 }));
});

test('a step that touches no machine hands back the machines record it was given', () => {
  const r = validateRolloutSpec({ selector: {}, packages: [{ package: 'kubelet', version: '1.31.3' }], strategy: { canary: { count: 1 }, maxUnavailable: 1 } });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const fleet = new SimFleet();
  for (let i = 0; i < 5; i++) fleet.add({ name: `node-${i}`, labels: {}, zone: null, versions: { kubelet: '1.31.2' } });
  const input = (state: ReturnType<typeof newRolloutState>, now: number) => ({ rollout: { name: 'r', spec: r.spec, state }, machines: fleet.views(), budget: { maxUnavailable: 1, unavailableNow: [] }, controlPlaneVersion: '1.31.5', now });
  const first = planStep(input(newRolloutState({ name: 'r', spec: r.spec, machines: fleet.views(), controlPlaneVersion: '1.31.5', now: 0 }), 1000));
  assert.ok(first.actions.some((a) => a.kind === 'install'), 'the canary starts');
  // No result yet: the canary is installing, the budget is full, nothing moves.
  const quiet = planStep(input(first.state, 2000));
  assert.equal(quiet.actions.length, 0);
  assert.equal(quiet.state.machines, first.state.machines);
  assert.ok(sameJson(quiet.state, first.state));
  assert.equal(JSON.stringify(quiet.state), JSON.stringify(first.state));
  // The same step from the stored (parsed) state plans the same JSON.
  const fromStore = planStep(input(JSON.parse(JSON.stringify(first.state)), 2000));
  assert.equal(JSON.stringify(fromStore.state), JSON.stringify(quiet.state));
});
