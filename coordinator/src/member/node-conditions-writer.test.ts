/**
 * The writer's bounds, with the member API as the only fake (the true edge): a fleet of
 * 5,000 machines, a server that applies the strategic merge and whose watch lags behind
 * its writes. Against the reference kube-apiserver: test/node-conditions.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from '@nodekeeper/common';
import { initialFaultState } from '../remediation/faults.ts';
import { sampleReport } from '../store/test-support.ts';
import type { MachineRecord } from '../model/machine.ts';
import { applyConditionPatch, type ConditionFacts, type ConditionRemoval, type WrittenCondition } from './node-conditions.ts';
import { NodeConditionsWriter } from './node-conditions-writer.ts';

const T0 = Date.parse('2026-12-03T10:00:00Z');

function fleet(size: number, o: { maxConcurrent: number; minIntervalMs: number; watchLagMs: number }) {
  let now = T0;
  const machines = new Map<string, MachineRecord>();
  const versions = new Map<string, string>();
  const server = new Map<string, V1Node>();
  const cache = new Map<string, V1Node>();
  const report = sampleReport('node');
  const faults = Object.values(initialFaultState(T0).faults);
  for (let i = 0; i < size; i++) {
    const name = `node-${String(i).padStart(5, '0')}`;
    machines.set(name, { name, machineId: null, revokedAt: null } as unknown as MachineRecord);
    versions.set(name, '1.0.0');
    const node: V1Node = { metadata: { name, resourceVersion: '1' }, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] } };
    server.set(name, node);
    cache.set(name, node);
  }
  let rv = 1;
  let inFlight = 0;
  const stats = { maxInFlight: 0, writes: new Map<string, number>(), failNext: new Set<string>(), bodies: new Map<string, WrittenCondition[]>() };
  const warns: unknown[][] = [];
  const log = { warn: (...a: unknown[]) => warns.push(a), info: () => {}, debug: () => {}, error: () => {}, child: () => log } as unknown as Logger;
  const writer = new NodeConditionsWriter({
    machines: () => machines.values(),
    machine: (name) => machines.get(name),
    facts: (m): ConditionFacts => ({ revoked: false, liveness: 'Ready', report, faults, remediation: null, agentVersion: versions.get(m.name)! }),
    findNode: (name) => cache.get(name) ?? null,
    patchStatus: async (name, body) => {
      inFlight += 1;
      stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 1));
        if (stats.failNext.delete(name)) throw Object.assign(new Error('nodes "x" is forbidden'), { code: 'NK_MEMBER_API_ERROR' });
        const sent = (body as { status: { conditions: Array<WrittenCondition | ConditionRemoval> } }).status.conditions;
        stats.writes.set(name, (stats.writes.get(name) ?? 0) + 1);
        stats.bodies.set(name, sent as WrittenCondition[]);
        const before = server.get(name)!;
        const after: V1Node = { metadata: { name, resourceVersion: String(++rv) }, status: { conditions: applyConditionPatch(before.status!.conditions!, sent) as NonNullable<NonNullable<V1Node['status']>['conditions']> } };
        server.set(name, after);
        // The watch delivers the new version later.
        setTimeout(() => cache.set(name, server.get(name)!), o.watchLagMs);
        return after;
      } finally {
        inFlight -= 1;
      }
    },
    wallClock: () => now,
    log,
  }, { minIntervalMs: o.minIntervalMs, maxConcurrent: o.maxConcurrent, tickMs: 1000 });
  return { writer, stats, warns, versions, server, machines, advance: (ms: number) => (now += ms) };
}

test('5,000 Nodes: every one written once, never more than maxConcurrent writes in flight, and a lagging watch causes no second write', async () => {
  const f = fleet(5000, { maxConcurrent: 8, minIntervalMs: 10_000, watchLagMs: 50 });
  f.writer.tick();
  await f.writer.idle();
  assert.equal(f.stats.writes.size, 5000);
  assert.ok([...f.stats.writes.values()].every((n) => n === 1));
  assert.equal(f.stats.maxInFlight, 8);
  // Ticks while the watch still shows the old Nodes, and after: nothing more to write.
  for (let i = 0; i < 3; i++) {
    f.advance(11_000);
    f.writer.tick();
    await f.writer.idle();
    await new Promise((r) => setTimeout(r, 30));
  }
  assert.equal([...f.stats.writes.values()].reduce((a, b) => a + b, 0), 5000);
  assert.equal(f.writer.counters.writes, 5000);
  const kept = f.server.get('node-00042')!.status!.conditions!;
  assert.deepEqual(kept[0], { type: 'Ready', status: 'True', reason: 'KubeletReady' });
  assert.equal(kept.length, 10);
});

test('per-node rate limit: changes within the interval coalesce into one write with the latest facts', async () => {
  const f = fleet(3, { maxConcurrent: 2, minIntervalMs: 10_000, watchLagMs: 0 });
  f.writer.tick();
  await f.writer.idle();
  await new Promise((r) => setTimeout(r, 5));
  for (const v of ['1.0.1', '1.0.2', '1.0.3']) {
    f.versions.set('node-00001', v);
    f.advance(2000);
    f.writer.tick();
    await f.writer.idle();
  }
  assert.equal(f.stats.writes.get('node-00001'), 1, 'held by the rate limit');
  f.advance(5000);
  f.writer.tick();
  await f.writer.idle();
  assert.equal(f.stats.writes.get('node-00001'), 2);
  const managed = f.stats.bodies.get('node-00001')!;
  assert.deepEqual(managed.map((c) => c.type), ['NodekeeperManaged']);
  assert.match(managed[0]!.message, /^agent 1\.0\.3,/, 'the latest wins');
  assert.equal(f.stats.writes.get('node-00000'), 1);
});

test('a failed write is logged once per change of error and retried after a backoff', async () => {
  const f = fleet(1, { maxConcurrent: 1, minIntervalMs: 1000, watchLagMs: 0 });
  f.stats.failNext.add('node-00000');
  f.writer.tick();
  await f.writer.idle();
  assert.equal(f.warns.length, 1);
  assert.equal((f.warns[0]![0] as { code: string }).code, 'NK_MEMBER_API_ERROR');
  f.advance(500);
  f.writer.tick();
  await f.writer.idle();
  assert.equal(f.stats.writes.get('node-00000'), undefined, 'not retried before the backoff');
  f.stats.failNext.add('node-00000');
  f.advance(1500);
  f.writer.tick();
  await f.writer.idle();
  assert.equal(f.warns.length, 1, 'the same error again is not logged again');
  assert.equal(f.writer.counters.failures, 2);
  f.advance(3000);
  f.writer.tick();
  await f.writer.idle();
  assert.equal(f.stats.writes.get('node-00000'), 1, 'retried, and written');
});

test('a deleted machine: its Node loses our conditions (and only ours), once', async () => {
  const f = fleet(2, { maxConcurrent: 1, minIntervalMs: 1000, watchLagMs: 0 });
  f.writer.tick();
  await f.writer.idle();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(f.server.get('node-00001')!.status!.conditions!.length, 10);
  f.machines.delete('node-00001');
  f.advance(2000);
  f.writer.tick();
  await f.writer.idle();
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(f.server.get('node-00001')!.status!.conditions, [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }]);
  assert.equal(f.server.get('node-00000')!.status!.conditions!.length, 10, 'the other Node keeps them');
  for (let i = 0; i < 3; i++) {
    f.advance(2000);
    f.writer.tick();
    await f.writer.idle();
  }
  assert.equal(f.stats.writes.get('node-00001'), 2, 'one write to add, one to remove, nothing after');
});
