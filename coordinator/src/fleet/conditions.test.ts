import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeReport } from '@nodekeeper/protocol';
import type { Condition, Liveness } from '../model/machine.ts';
import { camelReason, CONDITION_TYPES, deriveConditions, nodeHealth } from './conditions.ts';
import { sampleReport } from '../store/test-support.ts';

const ready: Liveness = { state: 'Ready', since: 0, reason: 'AgentHeartbeat', message: 'ok' };
const byType = (cs: Condition[]) => Object.fromEntries(cs.map((c) => [c.type, c]));

function noCniConfig(r: NodeReport): NodeReport {
  return {
    ...r,
    cni: { ...r.cni, health: 'unhealthy', reason: 'NoNetworkConfig', message: 'no network config found in /etc/cni/net.d', configFile: null },
    runtime: {
      ...r.runtime,
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'cni plugin not initialized' },
      ],
    },
  };
}

test('a healthy node: every condition in order, good statuses', () => {
  const cs = deriveConditions([], sampleReport(), ready, 100);
  assert.deepEqual(cs.map((c) => c.type), [...CONDITION_TYPES]);
  assert.deepEqual(cs.map((c) => c.status), ['True', 'True', 'True', 'True', 'False', 'False', 'False']);
  assert.ok(cs.every((c) => c.lastTransitionTime === 100));
  assert.equal(byType(cs).KubeletHealthy?.reason, 'HealthzOk');
  assert.deepEqual(nodeHealth(sampleReport()), { healthy: true, reason: 'NodeHealthy', message: 'kubelet, runtime and CNI are healthy' });
});

test('no CNI config: NetworkReady False with the probe reason and both messages; node unhealthy', () => {
  const r = noCniConfig(sampleReport());
  const c = byType(deriveConditions([], r, ready, 1)).NetworkReady;
  assert.equal(c?.status, 'False');
  assert.equal(c?.reason, 'NoNetworkConfig');
  assert.match(c?.message ?? '', /no network config found.*cni plugin not initialized/);
  const h = nodeHealth(r);
  assert.equal(h.healthy, false);
  assert.equal(h.reason, 'CniUnhealthy');
  assert.match(h.message, /cni: NoNetworkConfig/);
  assert.match(h.message, /NetworkReady=false/);
});

test('the runtime alone saying NetworkReady=false is enough', () => {
  const base = sampleReport();
  const r: NodeReport = { ...noCniConfig(base), cni: base.cni };
  const c = byType(deriveConditions([], r, ready, 1)).NetworkReady;
  assert.deepEqual([c?.status, c?.reason], ['False', 'NetworkPluginNotReady']);
  assert.equal(nodeHealth(r).reason, 'NetworkNotReady');
});

test('kubelet down: KubeletHealthy False; runtime RuntimeReady=false: RuntimeReady False', () => {
  const base = sampleReport();
  const r: NodeReport = {
    ...base,
    kubelet: { ...base.kubelet, health: 'unhealthy', reason: 'HealthzRefused', message: 'connect ECONNREFUSED 127.0.0.1:10248' },
    runtime: { ...base.runtime, conditions: [{ type: 'RuntimeReady', status: false, reason: 'ContainerdNotReady', message: 'starting' }] },
  };
  const cs = byType(deriveConditions([], r, ready, 1));
  assert.deepEqual([cs.KubeletHealthy?.status, cs.KubeletHealthy?.reason], ['False', 'HealthzRefused']);
  assert.deepEqual([cs.RuntimeReady?.status, cs.RuntimeReady?.reason], ['False', 'ContainerdNotReady']);
  const h = nodeHealth(r);
  assert.equal(h.reason, 'KubeletUnhealthy');
  assert.match(h.message, /kubelet: HealthzRefused.*RuntimeReady=false/);
});

test('unknown probes give Unknown conditions and an unknown node health', () => {
  const base = sampleReport();
  const r: NodeReport = { ...base, kubelet: { ...base.kubelet, health: 'unknown', reason: 'NoSystemd', message: 'unknown: no systemd' } };
  assert.equal(byType(deriveConditions([], r, ready, 1)).KubeletHealthy?.status, 'Unknown');
  assert.deepEqual(nodeHealth(r), { healthy: null, reason: 'HealthUnknown', message: 'kubelet: NoSystemd: unknown: no systemd' });
  assert.deepEqual(nodeHealth(null), { healthy: null, reason: 'NoReport', message: 'no report received yet' });
});

test('pressure conditions come from the host probe', () => {
  const base = sampleReport();
  const r: NodeReport = {
    ...base,
    host: { ...base.host, pressure: { disk: true, memory: true, pid: false }, disks: [{ path: '/var/lib/kubelet', totalBytes: 100, usedBytes: 93, usedPercent: 93 }] },
  };
  const cs = byType(deriveConditions([], r, ready, 1));
  assert.deepEqual([cs.DiskPressure?.status, cs.DiskPressure?.reason, cs.DiskPressure?.message], ['True', 'HostHasDiskPressure', '/var/lib/kubelet 93% used']);
  assert.deepEqual([cs.MemoryPressure?.status, cs.MemoryPressure?.message], ['True', '1.0 GiB of 2.0 GiB available']);
  assert.equal(cs.PIDPressure?.status, 'False');
  assert.equal(nodeHealth(r).healthy, true, 'pressure is not ill health');
  const unknownHost: NodeReport = { ...base, host: { ...base.host, health: 'unknown', reason: 'ProbeFailed', message: 'boom' } };
  assert.equal(byType(deriveConditions([], unknownHost, ready, 1)).PIDPressure?.status, 'Unknown');
});

test('lastTransitionTime moves only when status changes', () => {
  const first = deriveConditions([], sampleReport(), ready, 100);
  const same = deriveConditions(first, sampleReport(), ready, 200);
  assert.ok(same.every((c) => c.lastTransitionTime === 100));
  const broken = deriveConditions(same, noCniConfig(sampleReport()), ready, 300);
  const b = byType(broken);
  assert.equal(b.NetworkReady?.lastTransitionTime, 300);
  assert.equal(b.KubeletHealthy?.lastTransitionTime, 100);
  // Same status, new reason: still no transition.
  const r = noCniConfig(sampleReport());
  const other = deriveConditions(broken, { ...r, cni: { ...r.cni, reason: 'MissingPluginBinary' } }, ready, 400);
  assert.equal(byType(other).NetworkReady?.reason, 'MissingPluginBinary');
  assert.equal(byType(other).NetworkReady?.lastTransitionTime, 300);
});

test('Ready mirrors liveness; a silent agent makes every condition Unknown', () => {
  const unknown: Liveness = { state: 'Unknown', since: 5, reason: 'AgentSilent', message: 'no message for more than 40s' };
  const cs = deriveConditions([], sampleReport(), unknown, 1);
  assert.ok(cs.every((c) => c.status === 'Unknown'));
  assert.equal(byType(cs).Ready?.reason, 'AgentSilent');
  assert.equal(byType(cs).KubeletHealthy?.message, 'agent stopped reporting; last reported True: HealthzOk');
  const notReady: Liveness = { state: 'NotReady', since: 5, reason: 'NodeUnhealthy', message: 'x' };
  assert.equal(byType(deriveConditions([], sampleReport(), notReady, 1)).Ready?.status, 'False');
  const pending: Liveness = { state: 'Pending', since: 5, reason: 'AwaitingFirstReport', message: '' };
  const p = deriveConditions([], null, pending, 1);
  assert.ok(p.every((c) => c.status === 'Unknown'));
  assert.equal(byType(p).KubeletHealthy?.reason, 'NoReport');
});

test('reasons from agents are made safe CamelCase identifiers', () => {
  assert.equal(camelReason('HealthzRefused', 'X'), 'HealthzRefused');
  assert.equal(camelReason('connection refused: <script>', 'X'), 'ConnectionRefusedScript');
  assert.equal(camelReason('', 'Fallback'), 'Fallback');
  assert.equal(camelReason('42', 'Fallback'), 'Fallback');
  assert.equal(camelReason('a'.repeat(500), 'X').length, 64);
  const base = sampleReport();
  const r: NodeReport = { ...base, kubelet: { ...base.kubelet, health: 'unhealthy', reason: 'bad reason!' } };
  assert.equal(byType(deriveConditions([], r, ready, 1)).KubeletHealthy?.reason, 'BadReason');
});
