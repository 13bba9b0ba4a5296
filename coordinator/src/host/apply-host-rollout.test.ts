import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '@nodekeeper/common';
import { validateRollout } from '../rollout/spec.ts';
import { applyHostRollout } from './apply-host-rollout.ts';

const object = (spec: unknown) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'r' }, spec });
const base = { packages: [{ package: 'kubelet', version: '1.36.1' }], strategy: { soakSeconds: 5 } };
const stored = () => {
  const v = validateRollout(object(base));
  assert.ok(v.ok);
  return { name: 'r', spec: v.spec, state: {}, createdAt: 0, updatedAt: 0 };
};
const field = (fn: () => void) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AppError && err.code === 'NK_ROLLOUT_FIELD_IMMUTABLE', String(err));
    return (err.context as { field: string }).field;
  }
  return null;
};

test('the same spec (defaults written out or not) changes nothing', () => {
  assert.equal(field(() => applyHostRollout(object(base), stored())), null);
  assert.equal(field(() => applyHostRollout(object({ ...base, strategy: { soakSeconds: 5, canary: { count: 1 } } }), stored())), null);
});

test('a changed spec is refused naming the field, the immutable ones first', () => {
  assert.equal(field(() => applyHostRollout(object({ ...base, packages: [{ package: 'kubelet', version: '1.36.2' }], strategy: { soakSeconds: 9 } }), stored())), 'spec.packages');
  assert.equal(field(() => applyHostRollout(object({ ...base, selector: { matchLabels: { a: 'b' } } }), stored())), 'spec.selector');
  assert.equal(field(() => applyHostRollout(object({ ...base, strategy: { soakSeconds: 9 } }), stored())), 'spec.strategy');
});
