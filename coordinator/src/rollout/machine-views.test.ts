import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleReport } from '../store/test-support.ts';
import type { MachineRecord } from '../model/machine.ts';
import { MachineViews } from './machine-views.ts';

const healthy = (at: number) => ['KubeletHealthy', 'RuntimeReady', 'NetworkReady'].map((type) => ({ type, status: 'True', reason: '', message: '', lastTransitionTime: at })) as unknown as MachineRecord['conditions'];

function record(name: string, patch: Partial<MachineRecord> = {}): MachineRecord {
  return {
    name, machineId: `mid-${name}`, credentialId: `c-${name}`, labels: { pool: 'web' }, zone: 'z1', addresses: [], enrolledAt: 0, revokedAt: null,
    report: sampleReport(name), reportChangedAt: 0, lastSeenAt: 0,
    liveness: { state: 'Ready', since: 5, reason: 'Healthy', message: '' },
    conditions: healthy(7), agentVersion: 't',
    ...patch,
  } as MachineRecord;
}

test('an unchanged machine keeps its view object; a change rebuilds only that one', () => {
  const views = new MachineViews();
  const a = record('a');
  const b = record('b');
  const first = new Map(views.refresh([a, b], () => true));
  assert.deepEqual(first.get('a'), {
    name: 'a', labels: { pool: 'web' }, zone: 'z1', liveness: { state: 'Ready', since: 5 }, connected: true,
    versions: { kubelet: 'Kubernetes v1.31.2', containerd: '1.6.20~ds1', 'cni-plugins': '1.1.1', 'nodekeeper-agent': 't' }, healthy: true, healthySince: 7, rebootRequired: null,
  });
  // The fleet view hands out fresh snapshots (and fresh conditions) every time.
  let second = views.refresh([{ ...a, conditions: healthy(7) }, { ...b }], () => true);
  assert.equal(second.get('a'), first.get('a'));
  assert.equal(second.get('b'), first.get('b'));

  const report = sampleReport('b');
  report.kubelet.version = { raw: 'Kubernetes v1.31.3', semver: '1.31.3', source: 'binary' };
  second = views.refresh([{ ...a, liveness: { state: 'Unknown', since: 9, reason: 'Silent', message: '' } }, { ...b, report }], (n) => n === 'b');
  assert.deepEqual(second.get('a')?.liveness, { state: 'Unknown', since: 9 });
  assert.equal(second.get('a')?.connected, false);
  assert.equal(second.get('a')?.healthy, false);
  assert.equal(second.get('b')?.versions['kubelet'], 'Kubernetes v1.31.3');
  assert.notEqual(second.get('b'), first.get('b'));

  second = views.refresh([{ ...a, conditions: [] }, { ...b, report }], () => true);
  assert.equal(second.get('a')?.healthySince, null);
});

test('revoked and vanished machines leave the views', () => {
  const views = new MachineViews();
  views.refresh([record('a'), record('b'), record('c')], () => true);
  const now = views.refresh([record('a', { revokedAt: 1 }), record('c'), record('d')], () => true);
  assert.deepEqual([...now.keys()].sort(), ['c', 'd']);
});

test('the agent package\'s version is the hello\'s: a new agent version alone rebuilds the view', () => {
  const views = new MachineViews();
  const a = record('a', { agentVersion: '1.0.0' });
  const first = views.refresh([a], () => true).get('a');
  assert.equal(first?.versions['nodekeeper-agent'], '1.0.0');
  // Same report object, new hello (the agent restarted into its new version).
  const second = views.refresh([{ ...a, agentVersion: '2.0.0' }], () => true).get('a');
  assert.equal(second?.versions['nodekeeper-agent'], '2.0.0');
  assert.equal(second?.versions['kubelet'], first?.versions['kubelet']);
});
