import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@nodekeeper/common';
import { newRolloutState } from './create.ts';
import { parseRollout, type RolloutSpec } from './spec.ts';
import { planSpecUpdate } from './spec-update.ts';
import type { MachineView } from './types.ts';

const machines: MachineView[] = ['a', 'b', 'c', 'd'].map((name) => ({
  name, labels: {}, zone: null, liveness: { state: 'Ready', since: 0 }, connected: true, versions: { containerd: '1.7.0' }, healthy: true, healthySince: 0,
}) as unknown as MachineView);
const spec = (s: Record<string, unknown> = {}): RolloutSpec => parseRollout({
  apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'r' },
  spec: { packages: [{ package: 'containerd', version: '1.7.1' }], strategy: { canary: { count: 1 }, batches: [50, 100] }, ...s },
}).spec;
const current = () => {
  const s = spec();
  return { spec: s, state: newRolloutState({ name: 'r', spec: s, machines, controlPlaneVersion: null, now: 0 }) };
};

test('the same spec is unchanged; spec.paused false and absent are the same', () => {
  assert.equal(planSpecUpdate('r', current(), spec()).kind, 'unchanged');
  assert.equal(planSpecUpdate('r', current(), spec({ paused: false })).kind, 'unchanged');
});

test('packages, reboot and selector are immutable, naming the field', () => {
  for (const [change, field] of [
    [{ packages: [{ package: 'containerd', version: '1.7.2' }] }, 'spec.packages'],
    [{ selector: { matchLabels: { pool: 'x' } } }, 'spec.selector'],
  ] as const) {
    assert.throws(() => planSpecUpdate('r', current(), spec(change)), (err) => hasCode(err, 'NK_ROLLOUT_FIELD_IMMUTABLE') && err.message.includes(field));
  }
});

test('strategy changes update the spec; new batches are cut over the same candidates and canaries; paused becomes a request', () => {
  const c = current();
  const soak = planSpecUpdate('r', c, spec({ strategy: { canary: { count: 1 }, batches: [50, 100], soakSeconds: 5 } }));
  assert.equal(soak.kind, 'update');
  if (soak.kind !== 'update') return;
  assert.equal(soak.state, c.state, 'no new cut when the batches stay');
  assert.equal(soak.request, null);
  const cut = planSpecUpdate('r', c, spec({ strategy: { canary: { count: 1 }, batchSize: 1 } }));
  assert.ok(cut.kind === 'update');
  if (cut.kind !== 'update') return;
  assert.deepEqual(cut.state.waves, [1, 2, 3, 4]);
  assert.deepEqual(cut.state.candidates, c.state.candidates);
  const pause = planSpecUpdate('r', c, spec({ paused: true }));
  assert.ok(pause.kind === 'update' && pause.request === 'pause');
  const resume = planSpecUpdate('r', { ...c, spec: spec({ paused: true }) }, spec());
  assert.ok(resume.kind === 'update' && resume.request === 'resume');
});
