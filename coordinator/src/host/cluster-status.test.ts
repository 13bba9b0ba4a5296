import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterStatus, sameClusterStatus, withTransitions, type ClusterStatusInput } from './cluster-status.ts';
import type { Machine as MachineObject } from '@nodekeeper/api';

const machine = (name: string, ready: boolean) => ({
  metadata: { name },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: '', message: '', lastTransitionTime: '' }] },
}) as unknown as MachineObject;

const input = (machines: MachineObject[], extra: Partial<ClusterStatusInput> = {}): ClusterStatusInput => ({
  machines, connected: machines.length, packages: [], rolloutPhases: ['Completed', 'Paused', 'Canary'],
  remediation: { active: 0, needsHuman: 1, guard: 'none' }, kubernetesVersion: 'v1.36.3', nodesReady: null, memberApiError: null, coordinatorVersion: '0.1.0', ...extra,
});

test('Ready follows the member: machines Ready, none Ready, member API unreachable', () => {
  const ready = (i: ClusterStatusInput) => clusterStatus(i, undefined, 't0').conditions.find((c) => c.type === 'Ready');
  assert.equal(ready(input([machine('a', true), machine('b', false)]))?.reason, 'MemberReady');
  assert.equal(ready(input([machine('a', false)]))?.reason, 'NoMachineReady');
  assert.equal(ready(input([machine('a', true)], { memberApiError: 'member API: connection refused' }))?.reason, 'MemberAPIUnreachable');
  const s = clusterStatus(input([machine('a', true), machine('b', false)]), undefined, 't0');
  assert.deepEqual(s.nodeSummary, { total: 2, ready: 1, agentsConnected: 2 });
  assert.deepEqual(s.rollouts, { active: 1, paused: 1, failed: 0, succeeded: 1 });
});

test('transition times are kept while a condition holds; comparisons ignore times', () => {
  const a = clusterStatus(input([machine('a', true)]), undefined, 't0');
  const b = clusterStatus(input([machine('a', true)]), a.conditions, 't1');
  assert.equal(b.conditions[0]!.lastTransitionTime, 't0');
  assert.equal(b.lastStatusTime, 't1');
  assert.ok(sameClusterStatus(a, b));
  const c = clusterStatus(input([machine('a', false)]), b.conditions, 't2');
  assert.equal(c.conditions[0]!.lastTransitionTime, 't2');
  assert.ok(!sameClusterStatus(b, c));
  assert.deepEqual(withTransitions([{ type: 'X', status: 'True', reason: 'r', message: '', lastTransitionTime: 'old' }], [{ type: 'X', status: 'False', reason: 'r', message: '' }], 'new')[0]!.lastTransitionTime, 'new');
});
