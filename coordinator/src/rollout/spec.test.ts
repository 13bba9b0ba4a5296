import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@nodekeeper/common';
import { resolveIntOrPercent } from '../budget/int-or-percent.ts';
import { parseRollout, SPEC_DEFAULTS, validateRollout, validateRolloutSpec } from './spec.ts';

const minimal = { packages: [{ package: 'kubelet', version: '1.31.2' }], selector: { matchLabels: { pool: 'web' } } };

test('a minimal spec gets every default', () => {
  const r = validateRolloutSpec(minimal);
  assert.ok(r.ok);
  assert.deepEqual(r.spec.strategy, { canary: { count: 1 }, soakSeconds: 300, batches: [10, 50, 100], maxUnavailable: 1, maxFailures: 1, onFailure: 'Pause' });
  assert.equal(r.spec.allowDowngrade, false);
  assert.deepEqual(r.spec.strategy.batches, [...SPEC_DEFAULTS.batches]);
  // kubectl drain's defaults: refuse unmanaged and emptyDir pods; --drain-timeout and each pod's own grace apply.
  assert.deepEqual(r.spec.drain, { force: false, deleteEmptyDirData: false });
});

test('drain options are kept as given', () => {
  const r = validateRolloutSpec({ ...minimal, drain: { force: true, deleteEmptyDirData: true, timeoutSeconds: 600, gracePeriodSeconds: 0 } });
  assert.ok(r.ok);
  assert.deepEqual(r.spec.drain, { force: true, deleteEmptyDirData: true, timeoutSeconds: 600, gracePeriodSeconds: 0 });
});

test('explicit fields are kept; batchSize replaces the default batches', () => {
  const r = validateRolloutSpec({ ...minimal, strategy: { canary: { percent: 5 }, soakSeconds: 0, batchSize: 3, maxUnavailable: '20%', maxFailures: 2, onFailure: 'Rollback', maxPerZone: 1, window: { days: ['Sat', 'Sun'], start: '22:00', end: '04:00', timeZone: 'UTC' } }, allowDowngrade: true });
  assert.ok(r.ok);
  assert.equal(r.spec.strategy.batches, undefined);
  assert.equal(r.spec.strategy.batchSize, 3);
  assert.deepEqual(r.spec.strategy.canary, { percent: 5 });
  assert.equal(r.spec.strategy.window?.end, '04:00');
  assert.equal(r.spec.allowDowngrade, true);
});

test('every problem is reported with its path', () => {
  const cases: [unknown, string][] = [
    [{ ...minimal, packages: [] }, '/spec/packages'],
    [{ ...minimal, packages: [{ package: 'kubelet', version: 'latest' }] }, '/spec/packages/0/version'],
    [{ ...minimal, packages: [{ package: 'kubelet', version: '1.31.2' }, { package: 'kubelet', version: '1.31.3' }] }, '/spec/packages/1/package'],
    [{ ...minimal, strategy: { batches: [50, 40, 100] } }, '/spec/strategy/batches/1'],
    [{ ...minimal, strategy: { batches: [10, 50] } }, '/spec/strategy/batches'],
    [{ ...minimal, strategy: { batches: [100], batchSize: 2 } }, '/spec/strategy'],
    [{ ...minimal, strategy: { canary: { count: 1, percent: 5 } } }, '/spec/strategy/canary'],
    [{ ...minimal, strategy: { maxUnavailable: '0%' } }, '/spec/strategy/maxUnavailable'],
    [{ ...minimal, strategy: { maxFailures: 0 } }, '/spec/strategy/maxFailures'],
    [{ ...minimal, strategy: { onFailure: 'Ignore' } }, '/spec/strategy/onFailure'],
    [{ ...minimal, strategy: { window: { start: '25:00', end: '04:00' } } }, '/spec/strategy/window/start'],
    [{ ...minimal, strategy: { window: { start: '02:00', end: '02:00' } } }, '/spec/strategy/window'],
    [{ ...minimal, strategy: { surprise: 1 } }, '/spec/strategy/surprise'],
    [{ ...minimal, drain: { force: 'yes' } }, '/spec/drain/force'],
    [{ ...minimal, drain: { timeoutSeconds: 0 } }, '/spec/drain/timeoutSeconds'],
    [{ ...minimal, drain: { gracePeriodSeconds: -1 } }, '/spec/drain/gracePeriodSeconds'],
    [{ ...minimal, drain: { ignoreDaemonSets: true } }, '/spec/drain/ignoreDaemonSets'],
  ];
  for (const [input, path] of cases) {
    const r = validateRolloutSpec(input);
    assert.ok(!r.ok, `accepted ${JSON.stringify(input)}`);
    assert.ok(r.errors.some((e) => e.path.startsWith(path)), `${JSON.stringify(r.errors)} lacks ${path}`);
  }
});

test('a whole Rollout object is checked, and parseRollout throws NK_ROLLOUT_INVALID', () => {
  const obj = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web-kubelet' }, spec: minimal };
  const r = validateRollout(obj);
  assert.ok(r.ok);
  assert.equal(r.name, 'web-kubelet');
  assert.equal(validateRollout({ ...obj, kind: 'Deployment' }).ok, false);
  assert.throws(() => parseRollout({ ...obj, spec: { ...minimal, strategy: { batches: [10] } } }), (e) => hasCode(e, 'NK_ROLLOUT_INVALID') && /\/spec\/strategy\/batches/.test(e.message));
});

test('percents resolve down for budgets, up for failures, never below one', () => {
  assert.equal(resolveIntOrPercent('25%', 10, false), 2);
  assert.equal(resolveIntOrPercent('25%', 10, true), 3);
  assert.equal(resolveIntOrPercent('1%', 10, false), 1);
  assert.equal(resolveIntOrPercent(4, 10, false), 4);
});
