import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { sampleReport } from '@nodekeeper/protocol/testing';
import type { NodeReport } from '@nodekeeper/protocol';
import { deriveFaults, nextFaultChangeAt, recordRestarts, restartsInWindow, type Fault, type FaultState, type FaultType } from './faults.ts';

const ready = { state: 'Ready' as const, since: 0 };
const kubeletDown = (): NodeReport => {
  const r = structuredClone(sampleReport);
  Object.assign(r.kubelet, { health: 'unhealthy', reason: 'HealthzRefused', message: 'refused' });
  return r;
};
const pick = (faults: Fault[], t: FaultType) => faults.find((f) => f.type === t);

function feed(steps: Array<{ report: NodeReport | null; liveness?: { state: 'Ready' | 'Unknown' | 'NotReady' | 'Pending'; since: number }; at: number }>): { faults: Fault[]; state: FaultState } {
  let state: FaultState | null = null;
  let out = deriveFaults(null, { report: sampleReport, liveness: ready }, 0);
  for (const s of steps) {
    out = deriveFaults(state, { report: s.report, liveness: s.liveness ?? ready }, s.at);
    state = out.state;
  }
  return out;
}

test('a fault counts only after forSeconds, and clears only after clearSeconds of health', () => {
  assert.equal(pick(feed([{ report: kubeletDown(), at: 0 }, { report: kubeletDown(), at: 20_000 }]).faults, 'KubeletUnhealthy')?.status, 'Pending');
  const active = feed([{ report: kubeletDown(), at: 0 }, { report: kubeletDown(), at: 30_000 }]);
  assert.equal(pick(active.faults, 'KubeletUnhealthy')?.status, 'Active');
  assert.equal(pick(active.faults, 'KubeletUnhealthy')?.reason, 'HealthzRefused');
  const clearing = feed([{ report: kubeletDown(), at: 0 }, { report: kubeletDown(), at: 30_000 }, { report: sampleReport, at: 40_000 }, { report: sampleReport, at: 90_000 }]);
  assert.equal(pick(clearing.faults, 'KubeletUnhealthy')?.status, 'Clearing');
  const clear = feed([{ report: kubeletDown(), at: 0 }, { report: kubeletDown(), at: 30_000 }, { report: sampleReport, at: 40_000 }, { report: sampleReport, at: 100_000 }]);
  assert.equal(pick(clear.faults, 'KubeletUnhealthy')?.status, 'Clear');
  // A flap back while clearing is the same episode: `since` is kept.
  const flap = feed([{ report: kubeletDown(), at: 0 }, { report: kubeletDown(), at: 30_000 }, { report: sampleReport, at: 40_000 }, { report: kubeletDown(), at: 50_000 }]);
  assert.deepEqual([pick(flap.faults, 'KubeletUnhealthy')?.status, pick(flap.faults, 'KubeletUnhealthy')?.since], ['Active', 0]);
});

test('a silent agent (or a restart with no report yet) does not clear a fault; AgentSilent is raised', () => {
  const out = feed([{ report: kubeletDown(), at: 0 }, { report: kubeletDown(), at: 30_000 }, { report: sampleReport, liveness: { state: 'Unknown', since: 40_000 }, at: 500_000 }, { report: null, at: 510_000 }]);
  assert.equal(pick(out.faults, 'KubeletUnhealthy')?.status, 'Active');
  const silent = feed([{ report: sampleReport, liveness: { state: 'Unknown', since: 0 }, at: 0 }, { report: sampleReport, liveness: { state: 'Unknown', since: 0 }, at: 120_000 }]);
  assert.equal(pick(silent.faults, 'AgentSilent')?.status, 'Active');
});

test('KubeletNotRunning comes only from a service manager; NetworkNotReady carries the CNI reason', () => {
  const r = structuredClone(sampleReport);
  r.kubelet.service = { unit: 'kubelet.service', manager: 'systemd', activeState: 'failed', subState: 'failed', restarts: 3 };
  Object.assign(r.cni, { health: 'unhealthy', reason: 'PluginNotFound', message: 'bridge missing' });
  const out = feed([{ report: r, at: 0 }, { report: r, at: 30_000 }]);
  assert.equal(pick(out.faults, 'KubeletNotRunning')?.status, 'Active');
  assert.equal(pick(out.faults, 'NetworkNotReady')?.reason, 'PluginNotFound');
  const none = structuredClone(r);
  none.kubelet.service = { unit: 'kubelet', manager: 'none', activeState: null, subState: null, restarts: null };
  assert.equal(pick(feed([{ report: none, at: 0 }, { report: none, at: 30_000 }]).faults, 'KubeletNotRunning')?.status, 'Clear');
});

test('frequent restarts: N restarts in T from successive counts, history bounded', () => {
  const steps = [];
  for (let i = 0; i <= 6; i++) {
    const r = structuredClone(sampleReport);
    r.kubelet.service = { unit: 'kubelet.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: 10 + i };
    steps.push({ report: r, at: i * 30_000 });
  }
  const out = feed(steps);
  assert.equal(pick(out.faults, 'FrequentKubeletRestart')?.status, 'Active');
  assert.equal(restartsInWindow(out.state.restarts.kubelet, 180_000, 600), 6);
  // A counter reset (reboot) counts the new value, not a negative number.
  assert.equal(restartsInWindow([{ at: 0, count: 9 }, { at: 10, count: 2 }], 10, 600), 2);
  let samples = recordRestarts([], { unit: 'k', manager: 'systemd', activeState: 'active', subState: null, restarts: 0 }, 0, 600);
  for (let i = 1; i < 100; i++) samples = recordRestarts(samples, { unit: 'k', manager: 'systemd', activeState: 'active', subState: null, restarts: i }, i * 1000_000, 600);
  assert.ok(samples.length <= 2, `kept ${samples.length} samples`);
});

/** A report with random component health, service states and restart counters. */
const reportArb = fc.record({
  kubelet: fc.constantFrom('healthy', 'unhealthy', 'unknown'),
  runtime: fc.constantFrom('healthy', 'unhealthy', 'unknown'),
  cni: fc.constantFrom('healthy', 'unhealthy', 'unknown'),
  disk: fc.constantFrom(false, true, null),
  kubeletService: fc.option(fc.record({ activeState: fc.constantFrom('active', 'failed', 'inactive', 'activating'), restarts: fc.option(fc.integer({ min: 0, max: 12 })) })),
  runtimeRestarts: fc.option(fc.integer({ min: 0, max: 12 })),
}).map((g): NodeReport => {
  const r = structuredClone(sampleReport);
  Object.assign(r.kubelet, { health: g.kubelet, reason: g.kubelet === 'unhealthy' ? 'HealthzRefused' : 'HealthzOk', message: g.kubelet });
  Object.assign(r.runtime, { health: g.runtime, reason: g.runtime === 'unhealthy' ? 'CriUnavailable' : 'RuntimeReady', message: g.runtime });
  Object.assign(r.cni, { health: g.cni, reason: g.cni === 'unhealthy' ? 'NoNetworkConfig' : 'ConfigValid', message: g.cni });
  if (g.disk === null) Object.assign(r.host, { health: 'unknown' });
  else r.host.pressure.disk = g.disk;
  if (g.kubeletService !== null) r.kubelet.service = { unit: 'kubelet.service', manager: 'systemd', activeState: g.kubeletService.activeState, subState: null, restarts: g.kubeletService.restarts };
  if (g.runtimeRestarts !== null) r.runtime.service = { unit: 'containerd.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: g.runtimeRestarts };
  return r;
});
const inputArb = fc.record({
  report: fc.option(reportArb, { freq: 8 }),
  liveness: fc.record({ state: fc.constantFrom('Ready', 'NotReady', 'Unknown', 'Pending'), since: fc.integer({ min: 0, max: 1000 }) }),
});
// Steps of 0 s to 15 min, so holds, clears and restart windows all come due.
const stepsArb = fc.array(fc.record({ input: inputArb, gapMs: fc.integer({ min: 0, max: 900_000 }), repeats: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 40 });

test('an unchanged state is the very same object, and it stays put while its input does until nextFaultChangeAt', () => {
  // The remediation views rely on both: identity says "no row to write", and a machine is
  // not derived again until its report or liveness changes or its fault clock comes due.
  fc.assert(fc.property(stepsArb, fc.integer({ min: 0, max: 10_000_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (steps, later, frac) => {
    let state: FaultState | null = null;
    let now = 0;
    for (const s of steps) {
      for (let i = 0; i <= s.repeats; i++) {
        now += s.gapMs;
        const out = deriveFaults(state, s.input, now);
        if (state !== null) assert.equal(out.state === state, isDeepStrictEqual(out.state, state), 'identical exactly when equal');
        state = out.state;
      }
      const next = nextFaultChangeAt(state!, now);
      // Any instant before it (up to 10^7 ms on when it is Infinity): the very same state.
      const until = Number.isFinite(next) ? next : now + later + 1;
      const at = Math.floor(now + frac * (until - now - 1));
      if (at >= now && at < until) assert.equal(deriveFaults(state!, s.input, at).state, state, `moved at ${at}, before ${next}`);
      // Not early by a mile either: within the longest hold, clear time or restart window.
      if (Number.isFinite(next)) assert.ok(next - now <= 600_000, `due ${next - now} ms on`);
    }
  }), { numRuns: 400 });
});
