import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { API_VERSION, toEventList, toMachineList, toMachineObject, toTokenObject, tokenObject } from './objects.ts';
import { NOW, brokenCniRecord, events, machineRecord, pendingRecord, revokedRecord, tokens } from './test-support.ts';

describe('toMachineObject', () => {
  it('builds a Kubernetes-style Machine with spec, conditions and component status', () => {
    const m = toMachineObject(machineRecord('node-1'), NOW);
    assert.equal(m.apiVersion, API_VERSION);
    assert.equal(m.kind, 'Machine');
    assert.deepEqual(m.metadata, {
      name: 'node-1',
      uid: 'mid-node-1',
      creationTimestamp: '2026-04-30T12:00:00.000Z',
      labels: { role: 'worker', zone: 'zone-a' },
    });
    assert.deepEqual(m.spec, {
      machineId: 'mid-node-1',
      hostname: 'node-1',
      addresses: ['10.0.0.11'],
      zone: 'zone-a',
      labels: { role: 'worker', zone: 'zone-a' },
    });
    assert.equal(m.status.phase, 'Ready');
    assert.equal(m.status.lastSeenTime, '2026-05-04T11:59:57.000Z');
    assert.equal(m.status.agentVersion, '0.1.0');
    assert.deepEqual(m.status.conditions[0], {
      type: 'Ready',
      status: 'True',
      reason: 'AgentConnected',
      message: 'agent connected',
      lastTransitionTime: '2026-04-30T12:00:00.000Z',
    });
    assert.equal(m.status.kubelet?.version, 'Kubernetes v1.31.2');
    assert.equal(m.status.kubelet?.semver, '1.31.2');
    assert.equal(m.status.kubelet?.service?.activeState, 'active');
    assert.equal(m.status.containerd?.version, '1.6.20~ds1');
    assert.equal(m.status.containerd?.runtimeName, 'containerd');
    assert.equal(m.status.containerd?.conditions.length, 2);
    assert.equal(m.status.cni?.configFile, '/etc/cni/net.d/10-bridge.conflist');
    assert.deepEqual(m.status.cni?.plugins[0], {
      type: 'bridge',
      binary: '/usr/lib/cni/bridge',
      version: 'version unknown',
      versionSource: 'binary',
      supportedVersions: ['0.3.1', '0.4.0', '1.0.0'],
    });
    assert.equal(m.status.cni?.plugins[1]?.semver, '1.1.1');
    assert.deepEqual(m.status.host?.memory, { totalBytes: 8 * 1024 ** 3, availableBytes: 5 * 1024 ** 3 });
    assert.equal(m.status.revoked, undefined);
    assert.ok(!('revoked' in m.status), 'revoked is absent, not undefined, on a live machine');
  });

  it('keeps the reasons of an unhealthy component', () => {
    const m = toMachineObject(brokenCniRecord('node-2'), NOW);
    assert.equal(m.status.cni?.health, 'unhealthy');
    assert.equal(m.status.cni?.reason, 'NoNetworkConfig');
    assert.equal(m.status.cni?.version, null);
    assert.ok(!('semver' in (m.status.cni ?? {})));
    const cond = m.status.conditions.find((c) => c.type === 'CniHealthy');
    assert.equal(cond?.status, 'False');
    assert.equal(cond?.message, 'no network config found in /etc/cni/net.d');
  });

  it('leaves component sections out before the first report', () => {
    const m = toMachineObject(pendingRecord('node-3'), NOW);
    assert.equal(m.status.phase, 'Pending');
    assert.equal(m.status.lastSeenTime, null);
    for (const k of ['kubelet', 'containerd', 'cni', 'host']) assert.ok(!(k in m.status), k);
  });

  it('marks a revoked machine with the time', () => {
    const m = toMachineObject(revokedRecord('node-4'), NOW);
    assert.equal(m.status.revoked, true);
    assert.equal(m.status.revokedTime, '2026-05-04T11:00:00.000Z');
  });

  it('rejects a non-finite clock (misuse)', () => {
    assert.throws(() => toMachineObject(machineRecord('x'), Number.NaN), RangeError);
  });

  it('survives JSON and YAML round trips for any labels, names and times', () => {
    const str = fc.string({ maxLength: 20 });
    const time = fc.integer({ min: 0, max: 4_102_444_800_000 });
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), str, { maxKeys: 5 }),
        fc.string({ minLength: 1, maxLength: 30 }),
        time,
        fc.option(time, { nil: null }),
        fc.option(time, { nil: null }),
        fc.constantFrom(machineRecord, brokenCniRecord, pendingRecord, revokedRecord),
        (labels, name, enrolledAt, lastSeenAt, revokedAt, make) => {
          const m = toMachineObject({ ...make(name), labels, enrolledAt, lastSeenAt, revokedAt }, NOW);
          assert.deepEqual(JSON.parse(JSON.stringify(m)), m);
          assert.deepEqual(parseYaml(stringifyYaml(m)), m);
          assert.equal(m.metadata.name, name);
          assert.equal('revoked' in m.status, revokedAt !== null);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('lists, events and tokens', () => {
  it('sorts a MachineList by name', () => {
    const list = toMachineList([machineRecord('b'), machineRecord('a'), machineRecord('c')], NOW);
    assert.equal(list.kind, 'MachineList');
    assert.deepEqual(list.items.map((i) => i.metadata.name), ['a', 'b', 'c']);
  });

  it('serves events with RFC 3339 times', () => {
    const list = toEventList(events);
    assert.equal(list.kind, 'EventList');
    assert.deepEqual(list.items[1], {
      id: 7,
      at: '2026-05-04T11:58:00.000Z',
      object: 'machine/node-2',
      type: 'Warning',
      reason: 'CniUnhealthy',
      message: 'no network config found in /etc/cni/net.d',
    });
  });

  it('never carries a secret, even when the record has extra fields', () => {
    const first = tokens[0];
    assert.ok(first);
    const leaky = { ...first, secret: 's3cr3t', secretHash: 'h' } as typeof first;
    const t = toTokenObject(leaky);
    assert.deepEqual(t, {
      id: 'abcdef',
      description: 'rack 12',
      createdAt: '2026-05-04T11:00:00.000Z',
      expiresAt: '2026-05-05T11:00:00.000Z',
      uses: 10,
      used: 3,
      revoked: false,
      revokedAt: null,
    });
    assert.ok(!JSON.stringify(t).includes('s3cr3t'));
  });
});

describe('object metadata from the store', () => {
  const meta = { uid: '6f1c1e52-1c2a-4b8e-9a55-0d0c7c1e2f00', resourceVersion: '42', generation: 3, createdAt: 0 };

  it('a Machine carries the store uid, generation and resourceVersion; status and conditions observe the generation', () => {
    const m = toMachineObject(machineRecord('node-1'), NOW, meta);
    assert.equal(m.metadata.uid, meta.uid);
    assert.equal(m.metadata.resourceVersion, '42');
    assert.equal(m.metadata.generation, 3);
    assert.equal(m.metadata.creationTimestamp, '2026-04-30T12:00:00.000Z', 'enrollment time, as before');
    assert.equal(m.status.observedGeneration, 3);
    assert.ok(m.status.conditions.every((c) => (c as { observedGeneration?: number }).observedGeneration === 3));
    const list = toMachineList([machineRecord('node-1'), machineRecord('node-2')], NOW, new Map([['node-2', meta]]));
    assert.equal(list.items[0]?.metadata.resourceVersion, undefined, 'no metadata known: the fields are left out');
    assert.equal(list.items[1]?.metadata.resourceVersion, '42');
  });

  it('a token with metadata says whether it is Usable, and why not', () => {
    const t = tokens[0]!;
    assert.equal(toTokenObject(t).metadata, undefined, 'the one-argument form is unchanged');
    const usable = tokenObject({ ...t, revokedAt: null, used: 0, expiresAt: NOW + 1000 }, meta, NOW);
    assert.deepEqual([usable.metadata?.name, usable.metadata?.resourceVersion, usable.status?.conditions[0]?.status], [t.id, '42', 'True']);
    assert.equal(tokenObject({ ...t, revokedAt: null, used: 0, expiresAt: NOW - 1 }, meta, NOW).status?.conditions[0]?.reason, 'Expired');
    assert.equal(tokenObject({ ...t, revokedAt: NOW, used: 0, expiresAt: NOW + 1000 }, meta, NOW).status?.conditions[0]?.reason, 'Revoked');
    assert.equal(tokenObject({ ...t, revokedAt: null, used: t.maxUses, expiresAt: NOW + 1000 }, meta, NOW).status?.conditions[0]?.reason, 'Exhausted');
  });
});
