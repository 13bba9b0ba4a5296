import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeReport } from '@nodekeeper/protocol';
import { deriveFaults, initialFaultState, type Fault } from '../remediation/faults.ts';
import { sampleReport } from '../store/test-support.ts';
import { applyConditionPatch, desiredConditions, kubeTime, planConditionPatch, type ConditionFacts } from './node-conditions.ts';

const T0 = Date.parse('2026-12-03T10:00:00Z');
const clearFaults = (): Fault[] => Object.values(initialFaultState(T0).faults);
const facts = (o: Partial<ConditionFacts> = {}): ConditionFacts => ({
  revoked: false, liveness: 'Ready', report: sampleReport('node-a'), faults: clearFaults(), remediation: null, agentVersion: '0.9.0', ...o,
});
const byType = (f: ConditionFacts) => Object.fromEntries(desiredConditions(f).map((c) => [c.type, c]));
const withHost = (r: NodeReport, host: Record<string, unknown>): NodeReport => ({ ...r, host: { ...r.host, ...host } as NodeReport['host'] });

test('a healthy node: problem types False with NPD reasons, NodekeeperManaged True/Idle with versions, facts an older agent omits Unknown', () => {
  const c = byType(facts());
  assert.deepEqual(c['KubeletUnhealthy'], { type: 'KubeletUnhealthy', status: 'False', reason: 'KubeletIsHealthy', message: 'kubelet on the node is functioning properly' });
  assert.equal(c['ContainerRuntimeUnhealthy']!.status, 'False');
  assert.equal(c['NetworkPluginUnhealthy']!.status, 'False');
  // sampleReport has no service manager: restart counts and unit states are not reported.
  assert.equal(c['FrequentKubeletRestart']!.status, 'Unknown');
  assert.equal(c['SystemdUnitsReady']!.status, 'Unknown');
  assert.deepEqual([c['ReadonlyFilesystem']!.status, c['RebootRequired']!.status], ['Unknown', 'Unknown']);
  assert.equal(c['RebootRequired']!.reason, 'NotReported');
  assert.deepEqual(c['NodekeeperManaged'], {
    type: 'NodekeeperManaged', status: 'True', reason: 'Idle', message: 'agent 0.9.0, kubelet Kubernetes v1.31.2, containerd 1.6.20~ds1, CNI 1.1.1',
  });
});

test('an Active or Clearing fault makes its condition True (hysteresis), a Pending one does not', () => {
  const broken: NodeReport = { ...sampleReport('node-a'), kubelet: { ...sampleReport('node-a').kubelet, health: 'unhealthy', reason: 'HealthzRefused', message: 'connect ECONNREFUSED' } };
  const pending = deriveFaults(null, { report: broken, liveness: { state: 'NotReady', since: T0 } }, T0);
  assert.equal(byType(facts({ report: broken, faults: pending.faults }))['KubeletUnhealthy']!.status, 'False');
  const active = deriveFaults(pending.state, { report: broken, liveness: { state: 'NotReady', since: T0 } }, T0 + 31_000);
  const c = byType(facts({ report: broken, faults: active.faults }))['KubeletUnhealthy']!;
  assert.deepEqual([c.status, c.reason, c.message], ['True', 'HealthzRefused', 'kubelet: connect ECONNREFUSED']);
  // Healthy again, but not for clearSeconds yet: still True (no flapping).
  const clearing = deriveFaults(active.state, { report: sampleReport('node-a'), liveness: { state: 'Ready', since: T0 } }, T0 + 32_000);
  assert.equal(clearing.faults.find((f) => f.type === 'KubeletUnhealthy')!.status, 'Clearing');
  const held = byType(facts({ faults: clearing.faults }))['KubeletUnhealthy']!;
  assert.deepEqual([held.status, held.reason], ['True', 'Recovering']);
  assert.equal(held.message, "healthy again since 2026-12-03T10:00:32.000Z; stays True until healthy for the fault's clear time (--fault-clear)");
  const clear = deriveFaults(clearing.state, { report: sampleReport('node-a'), liveness: { state: 'Ready', since: T0 } }, T0 + 93_000);
  assert.equal(byType(facts({ faults: clear.faults }))['KubeletUnhealthy']!.status, 'False');
});

test('a silent agent: every condition Unknown (AgentSilent), whatever its last report said', () => {
  for (const c of desiredConditions(facts({ liveness: 'Unknown' }))) assert.deepEqual([c.type, c.status, c.reason], [c.type, 'Unknown', 'AgentSilent']);
  for (const c of desiredConditions(facts({ liveness: 'Pending', report: null }))) assert.equal(c.status, 'Unknown');
  const revoked = byType(facts({ revoked: true }));
  assert.deepEqual([revoked['NodekeeperManaged']!.status, revoked['KubeletUnhealthy']!.status], ['False', 'Unknown']);
});

test('NeedsHuman shows as the reason of NodekeeperManaged, with the story', () => {
  const c = byType(facts({ remediation: { phase: 'NeedsHuman', reason: 'LadderExhausted', message: 'kubelet still unhealthy after restart and reinstall' } }))['NodekeeperManaged']!;
  assert.equal(c.status, 'True');
  assert.equal(c.reason, 'NeedsHuman');
  assert.match(c.message, /remediation NeedsHuman: LadderExhausted: kubelet still unhealthy/);
});

test('host facts: read-only mounts, reboot required, unit states', () => {
  const r = withHost(sampleReport('node-a'), { readOnlyMounts: ['/var/lib/kubelet', '/'], reboot: { required: true, reasons: ['/var/run/reboot-required exists (packages: linux-image-6.1.0-26-amd64)'] } });
  const c = byType(facts({ report: r }));
  assert.deepEqual([c['ReadonlyFilesystem']!.status, c['ReadonlyFilesystem']!.message], ['True', 'read-only: /, /var/lib/kubelet']);
  assert.deepEqual([c['RebootRequired']!.status, c['RebootRequired']!.reason], ['True', 'RebootRequired']);
  assert.match(c['RebootRequired']!.message, /reboot-required exists/);
  const ok = byType(facts({ report: withHost(sampleReport('node-a'), { readOnlyMounts: [], reboot: { required: false, reasons: [] } }) }));
  assert.deepEqual([ok['ReadonlyFilesystem']!.status, ok['RebootRequired']!.status], ['False', 'False']);
  const base = sampleReport('node-a');
  const svc = (unit: string, activeState: string, subState: string) => ({ unit, manager: 'systemd' as const, activeState, subState, restarts: 0 });
  const units = (k: string, rt: string) => byType(facts({ report: { ...base, kubelet: { ...base.kubelet, service: svc('kubelet.service', k, k === 'active' ? 'running' : 'dead') }, runtime: { ...base.runtime, service: svc('containerd.service', rt, 'running') } } }))['SystemdUnitsReady']!;
  assert.deepEqual([units('active', 'active').status, units('active', 'active').reason], ['True', 'UnitsReady']);
  assert.deepEqual([units('failed', 'active').status, units('failed', 'active').reason, units('failed', 'active').message], ['False', 'UnitFailed', 'kubelet.service is failed (dead)']);
  assert.equal(units('active', 'inactive').reason, 'UnitNotActive');
  // An ordinary restart passes through these: no flap.
  assert.equal(units('activating', 'active').status, 'True');
  assert.equal(units('deactivating', 'active').status, 'True');
  // Crashed, and waiting for systemd to start it again: down.
  const crashed = byType(facts({ report: { ...base, kubelet: { ...base.kubelet, service: { ...svc('kubelet.service', 'activating', 'auto-restart') } } } }))['SystemdUnitsReady']!;
  assert.deepEqual([crashed.status, crashed.reason, crashed.message], ['False', 'UnitNotActive', 'kubelet.service is activating (auto-restart)']);
});

test('the diff: only changed conditions of ours; lastTransitionTime kept unless status changed; bad times repaired', () => {
  const kubelet = [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastTransitionTime: '2026-12-01T00:00:00Z' }];
  const desired = desiredConditions(facts());
  const first = planConditionPatch(kubelet, desired, T0);
  assert.equal(first.length, 9);
  assert.ok(first.every((c) => c.lastTransitionTime === kubeTime(T0) && c.lastHeartbeatTime === kubeTime(T0)));
  const node = applyConditionPatch(kubelet, first);
  assert.deepEqual(node[0], kubelet[0]);
  assert.deepEqual(planConditionPatch(node, desired, T0 + 60_000), [], 'nothing changed: no write, no heartbeat bump');
  // A message change keeps the transition time; a status change moves it.
  const newer = desiredConditions(facts({ agentVersion: '0.9.1' }));
  const msg = planConditionPatch(node, newer, T0 + 60_000);
  assert.deepEqual(msg.map((c) => [c.type, c.lastTransitionTime, c.lastHeartbeatTime]), [['NodekeeperManaged', kubeTime(T0), kubeTime(T0 + 60_000)]]);
  const silent = planConditionPatch(node, desiredConditions(facts({ liveness: 'Unknown' })), T0 + 120_000);
  assert.equal(silent.length, 9);
  for (const c of silent) {
    // Unknown already (not reported): only the reason changes, the transition time stays.
    const was = first.find((f) => f.type === c.type)!.status;
    assert.deepEqual([c.status, c.reason, c.lastTransitionTime], ['Unknown', 'AgentSilent', kubeTime(was === 'Unknown' ? T0 : T0 + 120_000)]);
  }
  // A condition of ours with a missing, unparseable or future lastTransitionTime is rewritten with a true one.
  for (const bad of [undefined, 'not a time', '2999-01-01T00:00:00Z', new Date(NaN)]) {
    const hostile = node.map((c) => ((c as { type: string }).type === 'KubeletUnhealthy' ? { ...(c as object), lastTransitionTime: bad } : c));
    assert.deepEqual(planConditionPatch(hostile, desired, T0 + 60_000).map((c) => [c.type, c.lastTransitionTime]), [['KubeletUnhealthy', kubeTime(T0 + 60_000)]]);
  }
  // Garbage around ours is neither read nor sent back.
  const garbage = [null, 7, 'x', [], { type: 42 }, { status: 'True' }, ...node];
  assert.deepEqual(planConditionPatch(garbage, desired, T0 + 60_000), []);
  assert.deepEqual(planConditionPatch('not a list', desired, T0).length, 9);
});
