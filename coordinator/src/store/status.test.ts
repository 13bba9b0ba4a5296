import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from './db.ts';
import type { StatusWrite } from './status.ts';
import { identity, sampleReport, tempDir } from './test-support.ts';

const tmp = tempDir();
after(() => tmp.remove());

test('saveStatus writes the status and only changed components into the history', () => {
  let clock = 1000;
  const file = tmp.file('status.db');
  const store = openStore(file, { now: () => clock });
  const { token } = store.createToken({ ttlMs: 60_000, maxUses: 1, description: '' });
  store.enroll({ token, identity: identity('node-1'), agentVersion: '0.1.0' });
  const report = sampleReport('node-1');
  const write: StatusWrite = {
    report,
    reportChangedAt: 1500,
    liveness: { state: 'Ready', since: 1500, reason: 'AgentHeartbeat', message: 'ok' },
    conditions: [],
    agentVersion: null, // null keeps the version recorded at enrollment
  };
  assert.deepEqual(store.saveStatus('node-1', write), { observationRows: 4 });
  clock = 2000;
  assert.deepEqual(store.saveStatus('node-1', { ...write, reportChangedAt: 1900 }), { observationRows: 0 });
  const cni = { ...report.cni, health: 'unhealthy' as const, reason: 'NoNetworkConfig' };
  assert.deepEqual(store.saveStatus('node-1', { ...write, report: { ...report, cni }, reportChangedAt: 2000 }), { observationRows: 1 });
  assert.equal(store.saveLastSeen([['node-1', 2100], ['ghost', 5]]), 1);
  store.close();

  const again = openStore(file);
  const m = again.getMachine('node-1');
  assert.equal(m?.agentVersion, '0.1.0');
  assert.equal(m?.lastSeenAt, 2100);
  assert.equal(m?.report?.cni.reason, 'NoNetworkConfig');
  assert.deepEqual(again.machineObservations('node-1', 10, 'cni').map((o) => [o.at, o.health, o.versionRaw]), [[1500, 'healthy', '1.1.1'], [2000, 'unhealthy', '1.1.1']]);
  assert.deepEqual(again.machineObservations('node-1', 10).map((o) => o.component), ['kubelet', 'runtime', 'cni', 'host', 'cni']);
  assert.throws(() => again.machineObservations('node-1', 0), RangeError);
  assert.throws(() => again.saveLastSeen([['node-1', Number.NaN]]), TypeError);
  again.close();
});

test('fractional times from a fine-grained clock are stored as whole milliseconds', () => {
  const file = tmp.file('fraction.db');
  const store = openStore(file, { now: () => 1000.75 });
  const { token } = store.createToken({ ttlMs: 60_000.5, maxUses: 1, description: '' });
  const { machine } = store.enroll({ token, identity: identity('node-1'), agentVersion: '0.1.0' });
  assert.equal(machine.enrolledAt, 1000);
  store.saveStatus('node-1', { report: sampleReport('node-1'), reportChangedAt: 1200.5, liveness: { state: 'Ready', since: 1200.9, reason: 'AgentHeartbeat', message: '' }, conditions: [], agentVersion: null });
  store.saveLastSeen([['node-1', 1300.2]]);
  const m = store.getMachine('node-1');
  assert.deepEqual([m?.reportChangedAt, m?.liveness.since, m?.lastSeenAt], [1200, 1200, 1300]);
  store.close();
});
