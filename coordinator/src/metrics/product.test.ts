import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../metrics.ts';
import type { MachineRecord } from '../model/machine.ts';
import { sampleReport } from '../store/test-support.ts';
import { FINISHED_ROLLOUT_KEEP_MS, MAX_VERSIONS_PER_PACKAGE, productSeries, registerProductMetrics, type ProductSources } from './product.ts';

const counters = { total: 3, waiting: 1, inProgress: 1, succeeded: 1, failed: 0, rollingBack: 0, rolledBack: 0, skipped: 0 };

function machine(name: string, kubelet: string, state: MachineRecord['liveness']['state']): MachineRecord {
  const r = sampleReport(name);
  return {
    name, machineId: `mid-${name}`, credentialId: 'c', labels: {}, zone: null, addresses: [], enrolledAt: 0, revokedAt: null,
    report: { ...r, kubelet: { ...r.kubelet, version: { raw: `Kubernetes v${kubelet}`, semver: kubelet, source: 'binary' } } },
    reportChangedAt: 0, lastSeenAt: 0, liveness: { state, since: 0, reason: '', message: '' } as MachineRecord['liveness'],
    conditions: [{ type: 'Ready', status: state === 'Ready' ? 'True' : 'False', reason: '', message: '', lastTransitionTime: 0 } as unknown as MachineRecord['conditions'][number]],
    agentVersion: '0.2.0',
  };
}

function sources(over: Partial<ProductSources> = {}): ProductSources {
  const machines = [machine('a', '1.31.3', 'Ready'), machine('b', '1.31.2', 'Ready'), machine('c', '1.31.2', 'NotReady')];
  return {
    clock: () => 10_000_000, wallClock: () => 2_000_000_000_000, startedAt: 1_999_999_000_000,
    machines: () => machines,
    faults: (m) => (m === 'c' ? [{ type: 'KubeletUnhealthy', status: 'Active' }] : []),
    remediationPhases: () => ['Idle', 'NeedsHuman'],
    guard: () => 'partition',
    rollouts: () => [
      { name: 'kubelet-g2', phase: 'Progressing', reason: 'BatchStarted', since: 9_000_000, counters },
      { name: 'kubelet-g1', phase: 'Completed', reason: 'AllSucceeded', since: 10_000_000 - FINISHED_ROLLOUT_KEEP_MS - 1, counters },
    ],
    desired: () => ({ packages: [{ name: 'kubelet', version: '1.31.3', artifact: { url: 'https://a.invalid/k', sha256: 'a'.repeat(64), size: 1 } }], generation: 4, createdAt: 0, updatedAt: 0 }),
    host: () => null,
    certificates: () => ({ serving: 2_000_086_400_000, ca: null }),
    backupIntervalSeconds: null,
    ready: () => true,
    ...over,
  };
}

const value = (s: ReturnType<typeof productSeries>, name: string, labels: Record<string, string> = {}) =>
  s[name]?.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;

test('the fleet by liveness, condition, fault and remediation phase; the guards', () => {
  const s = productSeries(sources());
  assert.equal(value(s, 'nodekeeper_machines', { state: 'Ready' }), 2);
  assert.equal(value(s, 'nodekeeper_machines', { state: 'Unknown' }), 0, 'every state is exposed, 0 included');
  assert.equal(value(s, 'nodekeeper_machine_conditions', { type: 'Ready', status: 'False' }), 1);
  assert.equal(value(s, 'nodekeeper_faults', { type: 'KubeletUnhealthy', status: 'Active' }), 1);
  assert.equal(value(s, 'nodekeeper_remediation_machines', { phase: 'NeedsHuman' }), 1);
  assert.equal(value(s, 'nodekeeper_remediation_machines', { phase: 'Running' }), 0);
  assert.equal(value(s, 'nodekeeper_remediation_guard_active', { guard: 'partition' }), 1);
  assert.equal(value(s, 'nodekeeper_remediation_guard_active', { guard: 'storm' }), 0);
});

test('rollouts: every phase counted; per-rollout series only for rollouts in flight or finished within the hour', () => {
  const s = productSeries(sources());
  assert.equal(value(s, 'nodekeeper_rollouts', { phase: 'Completed' }), 1);
  assert.equal(value(s, 'nodekeeper_rollouts', { phase: 'Failed' }), 0);
  assert.deepEqual(s['nodekeeper_rollout_info']!.map((x) => x.labels), [{ rollout: 'kubelet-g2', phase: 'Progressing', reason: 'BatchStarted' }]);
  assert.equal(value(s, 'nodekeeper_rollout_machines', { rollout: 'kubelet-g2', state: 'in_progress' }), 1);
  assert.equal(s['nodekeeper_rollout_machines']!.length, 7, 'one series per state, no total');
});

test('packages: versions, reporting and desired machines, the desired version', () => {
  const s = productSeries(sources());
  assert.equal(value(s, 'nodekeeper_package_machines', { package: 'kubelet', version: '1.31.2' }), 2);
  assert.equal(value(s, 'nodekeeper_package_machines', { package: 'kubelet', version: '1.31.3' }), 1);
  assert.equal(value(s, 'nodekeeper_package_reporting_machines', { package: 'kubelet' }), 3);
  assert.equal(value(s, 'nodekeeper_package_desired_machines', { package: 'kubelet' }), 1);
  assert.equal(value(s, 'nodekeeper_package_desired_machines', { package: 'containerd' }), undefined, 'no desired version, no series');
  assert.equal(value(s, 'nodekeeper_package_desired_info', { package: 'kubelet', version: '1.31.3' }), 1);
  assert.equal(value(s, 'nodekeeper_cluster_package_version_generation'), 4);
});

test('host ages absent when not registered; counted from start before the first sync', () => {
  assert.deepEqual(productSeries(sources())['nodekeeper_host_sync_age_seconds'], []);
  const s = productSeries(sources({ host: () => ({ lastSync: null, lastLease: 1_999_999_990_000 }) }));
  assert.equal(value(s, 'nodekeeper_host_sync_age_seconds'), 1000);
  assert.equal(value(s, 'nodekeeper_host_lease_age_seconds'), 10);
  assert.equal(value(s, 'nodekeeper_host_registered'), 1);
});

test('certificates, backups and readiness', () => {
  const s = productSeries(sources());
  assert.equal(value(s, 'nodekeeper_tls_certificate_expiry_timestamp_seconds', { certificate: 'serving' }), 2_000_086_400);
  assert.equal(s['nodekeeper_tls_certificate_expiry_timestamp_seconds']!.length, 1, 'no CA, no ca series');
  assert.deepEqual(s['nodekeeper_backup_schedule_interval_seconds'], []);
  assert.equal(value(productSeries(sources({ backupIntervalSeconds: 3600 })), 'nodekeeper_backup_schedule_interval_seconds'), 3600);
  assert.equal(value(productSeries(sources({ ready: () => false })), 'nodekeeper_coordinator_ready'), 0);
});

test('one computation per scrape; a gauge with no sample is absent from the exposition, and a gone label set goes', async () => {
  let reads = 0;
  let registered = true;
  const metrics = createMetrics();
  registerProductMetrics(metrics, sources({
    machines: () => (reads++, []),
    host: () => (registered ? { lastSync: null, lastLease: null } : null),
  }));
  const first = await metrics.registry.metrics();
  assert.equal(reads, 1, 'every product gauge read the same series');
  assert.match(first, /^nodekeeper_host_sync_age_seconds \d+/m);
  assert.match(first, /^# TYPE nodekeeper_rollout_info gauge$/m);
  registered = false;
  const second = await metrics.registry.metrics();
  assert.equal(reads, 2, 'the next scrape computes afresh');
  assert.doesNotMatch(second, /^nodekeeper_host_sync_age_seconds /m);
  assert.match(second, /^# TYPE nodekeeper_host_sync_age_seconds gauge$/m, 'the family stays declared');
});

test('the series count does not grow with the fleet: no label names a machine', () => {
  const fleet = (n: number) => Array.from({ length: n }, (_, i) => machine(`m-${i}`, i % 2 === 0 ? '1.31.3' : '1.31.2', i % 3 === 0 ? 'NotReady' : 'Ready'));
  const count = (n: number) => {
    const machines = fleet(n);
    const s = productSeries(sources({ machines: () => machines, faults: (m) => (m.endsWith('7') ? [{ type: 'KubeletUnhealthy', status: 'Active' }] : []) }));
    for (const samples of Object.values(s)) for (const x of samples) assert.ok(!Object.values(x.labels).some((v) => v.startsWith('m-')), JSON.stringify(x.labels));
    return Object.values(s).reduce((a, x) => a + x.length, 0);
  };
  assert.equal(count(30), count(3_000));
});

test('versions of a package: the most common one by one, the rarer rest as "other"', () => {
  const machines = Array.from({ length: 100 }, (_, i) => machine(`m-${i}`, i < 50 ? '1.31.3' : `1.31.${100 + i}`, 'Ready'));
  const s = productSeries(sources({ machines: () => machines }));
  const kubelet = s['nodekeeper_package_machines']!.filter((x) => x.labels['package'] === 'kubelet');
  assert.equal(kubelet.length, MAX_VERSIONS_PER_PACKAGE + 1);
  assert.equal(value(s, 'nodekeeper_package_machines', { package: 'kubelet', version: '1.31.3' }), 50);
  assert.equal(value(s, 'nodekeeper_package_machines', { package: 'kubelet', version: 'other' }), 50 - (MAX_VERSIONS_PER_PACKAGE - 1));
  assert.equal(kubelet.reduce((a, x) => a + x.value, 0), 100, 'no machine lost');
});
