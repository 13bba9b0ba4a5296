/**
 * `updateStrategy` on the ClusterPackageVersion: validated with paths as the rest of the
 * object (the Rollout strategy's own rules reused), merged per package field by field,
 * stored in the spec so the generation moves when it changes, and only then.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError, createLogger } from '@nodekeeper/common';
import { effectiveUpdateStrategy, parseClusterPackageVersionSpec, parseClusterPackageVersion } from '../packages/cluster-package-version.ts';
import { openStore } from '../store/db.ts';

const artifact = { url: 'https://example.invalid/k.tgz', sha256: 'a'.repeat(64), size: 10 };
const cpv = (spec: Record<string, unknown>) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'kubelet', version: '1.31.2', artifact }], ...spec } });

function refusal(value: unknown): string {
  try {
    parseClusterPackageVersionSpec(value);
  } catch (err) {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'NK_CPV_INVALID');
    return err.message;
  }
  assert.fail('accepted');
}

test('a valid default and per-package updateStrategy parse; absent means no convergence', () => {
  const r = parseClusterPackageVersionSpec(cpv({ updateStrategy: { paused: false, onSupersede: 'Rollback', selector: { matchLabels: { pool: 'web' } }, soakSeconds: 30, batches: [50, 100] } }));
  assert.equal(r.updateStrategy?.onSupersede, 'Rollback');
  assert.equal(parseClusterPackageVersionSpec(cpv({})).updateStrategy, undefined);
  assert.deepEqual(parseClusterPackageVersion(cpv({})).map((p) => p.name), ['kubelet'], 'the packages-only reader is unchanged');
  const own = parseClusterPackageVersionSpec(cpv({ packages: [{ name: 'kubelet', version: '1.31.2', artifact, updateStrategy: { batchSize: 2 } }], updateStrategy: { batches: [50, 100], soakSeconds: 5 } }));
  assert.deepEqual(effectiveUpdateStrategy(own.updateStrategy, own.packages[0]?.updateStrategy), { soakSeconds: 5, batchSize: 2 }, 'own fields replace the default field by field');
  assert.equal(effectiveUpdateStrategy(undefined, undefined), null);
});

test('bad updateStrategies are refused with NK_CPV_INVALID and the path of the problem', () => {
  assert.match(refusal(cpv({ updateStrategy: { onSupersede: 'Sideways' } })), /\/spec\/updateStrategy\/onSupersede/);
  assert.match(refusal(cpv({ updateStrategy: { paused: 'yes' } })), /\/spec\/updateStrategy\/paused/);
  assert.match(refusal(cpv({ updateStrategy: { selector: { names: ['n1'] } } })), /\/spec\/updateStrategy\/selector/);
  assert.match(refusal(cpv({ updateStrategy: { surprise: 1 } })), /\/spec\/updateStrategy/);
  assert.match(refusal(cpv({ updateStrategy: { batches: [50, 40, 100] } })), /\/spec\/updateStrategy\/batches\/1: batches are cumulative percents and must increase/);
  assert.match(refusal(cpv({ updateStrategy: { maxUnavailable: '0%' } })), /\/spec\/updateStrategy\/maxUnavailable/);
  assert.match(refusal(cpv({ updateStrategy: { window: { start: '01:00', end: '02:00', timeZone: 'Mars/Olympus' } } })), /\/spec\/updateStrategy\/window\/timeZone: unknown time zone/);
  assert.match(refusal(cpv({ packages: [{ name: 'kubelet', version: '1.31.2', artifact, updateStrategy: { canary: { count: 1, percent: 5 } } }] })), /\/spec\/packages\/0\/updateStrategy\/canary: give count or percent/);
  assert.match(refusal(cpv({ packages: [{ name: 'kubelet', version: '1.31.2', artifact, updateStrategy: { onFailure: 'Explode' } }] })), /\/spec\/packages\/0\/updateStrategy\/onFailure/);
});

const dir = mkdtempSync(join(tmpdir(), 'nk-update-strategy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the generation moves when the updateStrategy changes, and only then', () => {
  const store = openStore(join(dir, 'state.db'), { log: createLogger({ name: 'test', level: 'silent' }) });
  try {
    const packages = [{ name: 'kubelet', version: '1.31.2', artifact }];
    assert.equal(store.putClusterPackageVersion(packages).generation, 1);
    assert.equal(store.putClusterPackageVersion(packages, { soakSeconds: 5 }).generation, 2);
    assert.equal(store.putClusterPackageVersion(packages, { soakSeconds: 5 }).generation, 2, 'the same spec again: no new generation');
    assert.deepEqual(store.getClusterPackageVersion()?.updateStrategy, { soakSeconds: 5 });
    assert.equal(store.putClusterPackageVersion(packages, { soakSeconds: 5, paused: true }).generation, 3);
    assert.equal(store.putClusterPackageVersion(packages).generation, 4, 'removing it is a change');
    assert.equal(store.getClusterPackageVersion()?.updateStrategy, undefined);
  } finally {
    store.close();
  }
});
