import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { V1Pod } from '@kubernetes/client-node';
import { blockingBudget, classifyPod, drainOptionsOf, MIRROR_POD_ANNOTATION, planDrain } from './drain-rules.ts';

const pod = (name: string, o: { owner?: string; mirror?: boolean; phase?: string; emptyDir?: boolean; deleting?: boolean } = {}): V1Pod => ({
  metadata: {
    name, namespace: 'default', uid: `uid-${name}`,
    ...(o.owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: o.owner, name: `${o.owner.toLowerCase()}-x`, uid: 'u', controller: true }] }),
    ...(o.mirror ? { annotations: { [MIRROR_POD_ANNOTATION]: 'hash' } } : {}),
    ...(o.deleting ? { deletionTimestamp: new Date(0) } : {}),
  },
  spec: { containers: [], ...(o.emptyDir ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}) },
  status: { phase: o.phase ?? 'Running' },
});
const noDs = () => false;
const anyDs = () => true;
const strict = { force: false, deleteEmptyDirData: false };

test('kubectl drain rules, pod by pod', () => {
  assert.deepEqual(classifyPod(pod('s', { mirror: true }), strict, noDs), { kind: 'skip', id: 'default/s', reason: 'static pod' });
  assert.equal(classifyPod(pod('f', { phase: 'Succeeded', emptyDir: true }), strict, noDs).kind, 'skip');
  assert.deepEqual(classifyPod(pod('d', { owner: 'DaemonSet' }), strict, anyDs), { kind: 'skip', id: 'default/d', reason: 'DaemonSet pod' });
  // An orphan: its DaemonSet is gone. Refused without force, evicted with it.
  const orphan = classifyPod(pod('o', { owner: 'DaemonSet' }), strict, noDs);
  assert.equal(orphan.kind, 'refuse');
  assert.match(orphan.kind === 'refuse' ? orphan.reasons.join() : '', /DaemonSet default\/daemonset-x does not exist/);
  assert.equal(classifyPod(pod('o', { owner: 'DaemonSet' }), { ...strict, force: true }, noDs).kind, 'evict');
  assert.equal(classifyPod(pod('r', { owner: 'ReplicaSet' }), strict, noDs).kind, 'evict');
  const both = classifyPod(pod('b', { emptyDir: true }), strict, noDs);
  assert.deepEqual(both.kind === 'refuse' ? both.reasons.length : 0, 2, 'every reason is named at once');
  assert.equal(classifyPod(pod('b', { emptyDir: true }), { force: true, deleteEmptyDirData: false }, noDs).kind, 'refuse');
  const allowed = classifyPod(pod('b', { emptyDir: true }), { force: true, deleteEmptyDirData: true }, noDs);
  assert.equal(allowed.kind, 'evict');
  assert.match(allowed.kind === 'evict' ? allowed.note ?? '' : '', /emptyDir scratch deleted.*no controller/);
  assert.equal(classifyPod(pod('t', { deleting: true }), strict, noDs).kind, 'wait', 'a terminating pod is waited for, not evicted again');
});

test('drain options: stored specs without drain fields get kubectl defaults and --drain-timeout', () => {
  assert.deepEqual(drainOptionsOf(undefined, 300_000), { force: false, deleteEmptyDirData: false, timeoutMs: 300_000, gracePeriodSeconds: null });
  assert.deepEqual(drainOptionsOf({ force: true, timeoutSeconds: 30, gracePeriodSeconds: 0 }, 300_000), { force: true, deleteEmptyDirData: false, timeoutMs: 30_000, gracePeriodSeconds: 0 });
});

test('the budget a 429 names', () => {
  assert.equal(blockingBudget({ details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] } }), 'web');
  assert.equal(blockingBudget({ message: 'Cannot evict pod' }), null);
  assert.equal(blockingBudget('nope'), null);
});

const podArb = fc.record({
  owner: fc.option(fc.constantFrom('ReplicaSet', 'StatefulSet', 'Job', 'DaemonSet', 'ReplicationController', 'Custom'), { nil: undefined }),
  ownerIsController: fc.boolean(),
  mirror: fc.boolean(),
  phase: fc.constantFrom('Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'),
  emptyDir: fc.boolean(),
  deleting: fc.boolean(),
  dsExists: fc.boolean(),
});

test('property: no DaemonSet pod whose DaemonSet exists and no mirror pod is ever evicted; without force no unmanaged pod, without deleteEmptyDirData no emptyDir pod; a refusal names every refused pod', () => {
  fc.assert(fc.property(fc.array(podArb, { maxLength: 30 }), fc.boolean(), fc.boolean(), (specs, force, deleteEmptyDirData) => {
    const pods = specs.map((s, i) => {
      const p = pod(`p${i}`, { ...(s.owner === undefined ? {} : { owner: s.owner }), mirror: s.mirror, phase: s.phase, emptyDir: s.emptyDir, deleting: s.deleting });
      // A non-controller owner reference manages nothing (metav1.GetControllerOf).
      if (!s.ownerIsController) for (const r of p.metadata?.ownerReferences ?? []) r.controller = false;
      return p;
    });
    const exists = new Set(specs.flatMap((s, i) => (s.dsExists ? [`default/${pods[i]!.metadata!.ownerReferences?.[0]?.name ?? ''}`] : [])));
    const plan = planDrain(pods, { force, deleteEmptyDirData }, (k) => exists.has(k));
    assert.equal(plan.evict.length + plan.wait.length + plan.skip.length + plan.refuse.length, pods.length, 'every pod has one verdict');
    for (const e of plan.evict) {
      const i = Number(e.id.slice('default/p'.length));
      const s = specs[i]!;
      const controller = s.owner !== undefined && s.ownerIsController;
      assert.ok(!s.mirror, `mirror pod ${e.id} evicted`);
      assert.ok(!(controller && s.owner === 'DaemonSet' && s.dsExists), `DaemonSet pod ${e.id} evicted`);
      if (!force) assert.ok(controller && !(s.owner === 'DaemonSet' && !s.dsExists), `unmanaged or orphaned ${e.id} evicted without force`);
      if (!deleteEmptyDirData) assert.ok(!s.emptyDir, `emptyDir pod ${e.id} evicted without deleteEmptyDirData`);
      assert.ok(!s.deleting && s.phase !== 'Succeeded' && s.phase !== 'Failed');
    }
    for (const r of plan.refuse) assert.ok(r.reasons.length > 0 && r.id.startsWith('default/p'));
  }), { numRuns: 500 });
});
