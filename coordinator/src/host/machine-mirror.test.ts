import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeReport } from '@nodekeeper/protocol';
import { toMachineObject } from '../api/objects.ts';
import { deriveConditions } from '../fleet/conditions.ts';
import type { Liveness, MachineRecord } from '../model/machine.ts';
import { sampleReport } from '../store/test-support.ts';
import { hostMachine } from './cluster-status.ts';
import { mirrorFingerprints, statusPatch } from './machine-mirror.ts';

const NOW = Date.parse('2026-12-04T03:00:00Z');
const ready: Liveness = { state: 'Ready', since: NOW - 60_000, reason: 'AgentHeartbeat', message: 'agent is reporting and the node is healthy' };

/** The Machine the mirror would write for a report, as the coordinator builds it. */
function mirrored(report: NodeReport, opts: { now?: number; liveness?: Liveness; labels?: Record<string, string> } = {}) {
  const now = opts.now ?? NOW;
  const liveness = opts.liveness ?? ready;
  const record: MachineRecord = {
    name: 'node-1', machineId: 'm-1', credentialId: 'c-1', labels: opts.labels ?? { pool: 'a' }, zone: 'z-1', addresses: ['10.0.0.1'],
    enrolledAt: NOW - 86_400_000, revokedAt: null, report, reportChangedAt: now, lastSeenAt: now, liveness,
    conditions: deriveConditions([], report, liveness, NOW - 60_000), agentVersion: '0.9.0',
  };
  return hostMachine(toMachineObject(record, now), 'alpha', 'nodekeeper-alpha');
}

const pressured = (r: NodeReport, freeGiB: number): NodeReport => ({
  ...r, host: { ...r.host, memoryAvailableBytes: freeGiB * 2 ** 30, pressure: { ...r.host.pressure, memory: true } },
});

test('heartbeats, probe times and free memory under pressure change no fingerprint: a quiet fleet writes nothing', () => {
  const base = sampleReport();
  const a = mirrored(pressured(base, 1.2));
  const later = new Date(NOW + 30_000).toISOString();
  const moved: NodeReport = { ...base, kubelet: { ...base.kubelet, observedAt: later }, host: { ...base.host, observedAt: later, uptimeSeconds: base.host.uptimeSeconds + 30 } };
  const b = mirrored(pressured(moved, 1.7), { now: NOW + 30_000 });
  // The message moved (it says how much is free); nothing the host compares on did.
  assert.notEqual(a.status.conditions.find((c) => c.type === 'MemoryPressure')!.message, b.status.conditions.find((c) => c.type === 'MemoryPressure')!.message);
  assert.deepEqual(mirrorFingerprints(a), mirrorFingerprints(b));
});

test('a condition turning, a reason or a version changing is a status write, and only that', () => {
  const base = sampleReport();
  const a = mirrorFingerprints(mirrored(base));
  const broken: NodeReport = { ...base, kubelet: { ...base.kubelet, health: 'unhealthy', reason: 'HealthzRefused', message: 'connect ECONNREFUSED 127.0.0.1:10248' } };
  const b = mirrorFingerprints(mirrored(broken, { liveness: { state: 'NotReady', since: NOW, reason: 'NodeUnhealthy', message: 'x' } }));
  assert.notEqual(a.status, b.status);
  assert.equal(a.spec, b.spec, 'a status change does not rewrite the spec');
  const upgraded: NodeReport = { ...base, kubelet: { ...base.kubelet, version: { raw: 'Kubernetes v1.99.0', semver: '1.99.0', source: 'binary' } } };
  assert.notEqual(mirrorFingerprints(mirrored(upgraded)).status, a.status);
});

test('a label change is a spec write; the host copy read back (labels, spec and status) fingerprints as written', () => {
  const base = sampleReport();
  const m = mirrored(base);
  const relabelled = mirrorFingerprints(mirrored(base, { labels: { pool: 'b' } }));
  assert.notEqual(relabelled.spec, mirrorFingerprints(m).spec);
  assert.equal(relabelled.status, mirrorFingerprints(m).status);
  // As listed from the host: keys reordered, nulls dropped (a merge patch's null means absent).
  const fromHost = JSON.parse(JSON.stringify({ status: m.status, spec: m.spec, metadata: { labels: m.metadata.labels, name: 'node-1', resourceVersion: '7' } }), (_k, v: unknown) => (v === null ? undefined : v));
  assert.deepEqual(mirrorFingerprints(fromHost), mirrorFingerprints(m));
});

test('the status patch removes the sections the member no longer has (a merge patch keeps what it leaves out)', () => {
  const m = mirrored(sampleReport());
  const patch = statusPatch(m.status);
  assert.equal(patch['remediation'], null, 'no remediation now: removed on the host');
  assert.equal(patch['node'], null);
  assert.deepEqual(patch['kubelet'], m.status.kubelet, 'present sections are sent as they are');
  assert.equal(patch['phase'], m.status.phase);
  // Nulls are not part of the comparison: the host copy without them fingerprints the same.
  assert.equal(mirrorFingerprints({ metadata: {}, status: patch }).status, mirrorFingerprints({ metadata: {}, status: m.status }).status);
});
