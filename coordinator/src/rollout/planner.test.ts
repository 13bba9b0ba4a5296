import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@nodekeeper/common';
import { newRolloutState } from './create.ts';
import { planStep } from './planner.ts';
import { validateRolloutSpec, type RolloutSpec } from './spec.ts';
import { SimFleet } from './test-support.ts';
import type { OperatorRequest, PlanAction, PlanResult, RolloutState } from './types.ts';

const STEP = 10_000;
const CP = '1.31.5';

interface Run {
  fleet: SimFleet;
  name: string;
  spec: RolloutSpec;
  state: RolloutState;
  now: number;
  actions: PlanAction[];
  controlPlane: string | null;
  fail: (a: { machine: string; package: string; version: string; action: string }) => boolean;
  others: string[];
  clusterMax: number;
}

function spec(input: Record<string, unknown>): RolloutSpec {
  const r = validateRolloutSpec({ selector: {}, ...input });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

function setup(n: number, s: RolloutSpec, versions: Record<string, string | null> = { containerd: '1.6.20~ds1', kubelet: '1.30.4' }): Run {
  const fleet = new SimFleet();
  for (let i = 0; i < n; i++) fleet.add({ name: `node-${i}`, labels: { pool: 'web' }, zone: `z${i % 3}`, versions: { ...versions } });
  const state = newRolloutState({ name: 'r1', spec: s, machines: fleet.views(), controlPlaneVersion: CP, now: 0 });
  return { fleet, name: 'r1', spec: s, state, now: 0, actions: [], controlPlane: CP, fail: () => false, others: [], clusterMax: 100 };
}

function step(r: Run, request: OperatorRequest | null = null): PlanResult {
  r.now += STEP;
  r.fleet.tick(r.now);
  const out = planStep({
    rollout: { name: r.name, spec: r.spec, state: r.state },
    machines: r.fleet.views(),
    budget: { maxUnavailable: r.clusterMax, unavailableNow: r.others },
    controlPlaneVersion: r.controlPlane,
    now: r.now,
    events: r.fleet.resultsFor(r.state),
    request,
    options: { silenceTimeoutMs: 60_000 },
  });
  r.fleet.apply(out.actions, r.now, { fail: r.fail });
  r.state = out.state;
  r.actions.push(...out.actions);
  return out;
}

function runUntil(r: Run, done: (s: RolloutState) => boolean, max = 500): void {
  for (let i = 0; i < max && !done(r.state); i++) step(r);
  assert.ok(done(r.state), `not done after ${max} steps: ${r.state.phase} ${r.state.reason} ${r.state.message}`);
}

const installs = (r: Run) => r.actions.filter((a): a is Extract<PlanAction, { kind: 'install' }> => a.kind === 'install');
const phases = (r: Run) => Object.fromEntries(r.state.candidates.map((n) => [n, r.state.machines[n]?.phase]));

test('a healthy rollout installs the canary first, then the batches, each machine once, in component order', () => {
  const r = setup(10, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }, { package: 'containerd', version: '1.7.1' }], strategy: { canary: { count: 1 }, soakSeconds: 20, batches: [50, 100], maxUnavailable: 2 } }));
  runUntil(r, (s) => s.phase === 'Completed');
  assert.equal(r.state.reason, 'Completed');
  assert.ok(Object.values(phases(r)).every((p) => p === 'Succeeded'));
  const canary = r.state.candidates[0] ?? '';
  const first = r.actions.findIndex((a) => a.kind === 'install' && a.machine !== canary);
  const canaryDone = r.actions.findIndex((a) => a.kind === 'setMachinePhase' && a.machine === canary && a.phase === 'Succeeded');
  assert.ok(canaryDone >= 0 && canaryDone < first, 'the canary succeeded before any other machine started');
  for (const m of r.state.candidates) {
    assert.deepEqual(installs(r).filter((a) => a.machine === m).map((a) => a.package), ['containerd', 'kubelet']);
    assert.deepEqual(r.fleet.get(m).versions, { containerd: '1.7.1', kubelet: '1.31.2' });
  }
  assert.equal(new Set(r.fleet.executed).size, r.fleet.executed.length, 'no install ran twice');
});

test('a failed canary with onFailure Rollback rolls the canaries back and skips the rest', () => {
  const r = setup(6, spec({ packages: [{ package: 'containerd', version: '1.7.1' }, { package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 2 }, soakSeconds: 10, onFailure: 'Rollback', maxUnavailable: 2 } }));
  const bad = r.state.candidates[1] ?? '';
  r.fail = (a) => a.machine === bad && a.package === 'kubelet' && a.action === 'install';
  runUntil(r, (s) => s.phase === 'RolledBack');
  assert.ok(r.actions.some((a) => a.kind === 'setPhase' && a.phase === 'RollingBack' && a.reason === 'CanaryFailed'));
  const [c0, c1] = r.state.candidates;
  for (const c of [c0, c1]) {
    assert.equal(r.state.machines[c ?? '']?.phase, 'RolledBack');
    assert.deepEqual(r.fleet.get(c ?? '').versions, { containerd: '1.6.20~ds1', kubelet: '1.30.4' }, 'canary back at its old versions');
  }
  for (const m of r.state.candidates.slice(2)) {
    assert.equal(r.state.machines[m]?.phase, 'Skipped');
    assert.equal(installs(r).filter((a) => a.machine === m).length, 0);
  }
});

test('a failed canary with onFailure Pause pauses with the reason and the command that continues', () => {
  const r = setup(5, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 1 }, soakSeconds: 0 } }));
  const canary = r.state.candidates[0] ?? '';
  r.fail = (a) => a.machine === canary;
  runUntil(r, (s) => s.phase === 'Paused');
  assert.equal(r.state.reason, 'CanaryFailed');
  assert.equal(r.state.continueWith, 'nkctl rollout resume r1');
  assert.match(r.state.message, /failed at health/);
  for (let i = 0; i < 5; i++) step(r);
  assert.equal(r.state.phase, 'Paused', 'a paused rollout stays paused');
  assert.equal(installs(r).length, 1, 'nothing else started while paused');
  step(r, 'resume');
  r.fail = () => false;
  runUntil(r, (s) => s.phase === 'Completed');
  assert.equal(r.state.reason, 'CompletedWithFailures');
  assert.equal(r.state.machines[canary]?.phase, 'Failed');
  assert.equal(installs(r).filter((a) => a.machine === canary).length, 1, 'the failed canary is not retried');
});

test('maxFailures reached mid-batch takes the onFailure action', () => {
  const r = setup(12, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 1 }, soakSeconds: 0, batches: [100], maxUnavailable: 3, maxFailures: 2 } }));
  const bad = new Set(r.state.candidates.slice(2, 5));
  r.fail = (a) => bad.has(a.machine);
  runUntil(r, (s) => s.phase === 'Paused');
  assert.equal(r.state.reason, 'FailureThreshold');
  assert.match(r.state.message, /2 machine\(s\) failed \(maxFailures 2\)/);
  const started = installs(r).length;
  step(r);
  step(r);
  assert.equal(installs(r).length, started, 'nothing new starts once paused');
});

test('a machine that goes silent mid-install holds the budget, then pauses the rollout with the reason', () => {
  const r = setup(6, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 0 }, soakSeconds: 0, batches: [100], maxUnavailable: 1 } }));
  step(r);
  const first = installs(r)[0]?.machine ?? '';
  r.fleet.setSilent(first, true, r.now);
  for (let i = 0; i < 3; i++) step(r);
  assert.equal(installs(r).length, 1, 'no second machine while the silent one holds the only slot');
  assert.equal(r.state.waiting?.reason, 'BudgetExhausted');
  runUntil(r, (s) => s.phase === 'Paused', 20);
  assert.equal(r.state.reason, 'MachineSilent');
  assert.match(r.state.message, new RegExp(first));
  assert.equal(r.state.continueWith, 'nkctl rollout resume r1');
  r.fleet.setSilent(first, false, r.now);
  step(r, 'resume');
  runUntil(r, (s) => s.phase === 'Completed');
  assert.equal(new Set(installs(r).map((a) => a.machine)).size, installs(r).length);
});

test('outside the maintenance window nothing starts; in-flight work finishes', () => {
  // 1970-01-01 was a Thursday; the window is 00:02-00:04 UTC; each machine takes 10 s + a 60 s soak.
  const r = setup(3, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 0 }, soakSeconds: 60, batches: [100], maxUnavailable: 1, window: { days: ['Thu'], start: '00:02', end: '00:04' } } }));
  for (let i = 0; i < 10; i++) step(r);
  assert.equal(installs(r).length, 0);
  assert.equal(r.state.waiting?.reason, 'OutsideWindow');
  runUntil(r, () => r.now >= 4 * 60_000, 100);
  const inWindow = installs(r).length;
  assert.ok(inWindow >= 1 && inWindow < 3, `some but not all started in the window (${inWindow})`);
  runUntil(r, () => r.now >= 8 * 60_000, 100);
  assert.equal(installs(r).length, inWindow, 'nothing new started after the window closed');
  assert.equal(r.state.counters.succeeded, inWindow, 'work in flight at the close finished');
  assert.equal(r.state.waiting?.reason, 'OutsideWindow');
  assert.match(r.state.waiting?.message ?? '', /Thu 00:02-00:04 UTC/);
});

test('machines already at the target are skipped, never installed', () => {
  const r = setup(3, spec({ packages: [{ package: 'containerd', version: '1.6.20' }], strategy: { canary: { count: 1 }, soakSeconds: 0 } }));
  runUntil(r, (s) => s.phase === 'Completed');
  assert.ok(r.state.candidates.every((n) => r.state.machines[n]?.phase === 'Skipped' && r.state.machines[n]?.reason === 'AlreadyAtVersion'));
  assert.equal(installs(r).length, 0);
});

test('creation refuses skew, downgrades and empty selections with their codes', () => {
  const views = setup(2, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }] })).fleet.views();
  const make = (s: RolloutSpec, cp: string | null = CP) => newRolloutState({ name: 'x', spec: s, machines: views, controlPlaneVersion: cp, now: 0 });
  assert.throws(() => make(spec({ packages: [{ package: 'kubelet', version: '1.32.0' }] })), (e) => hasCode(e, 'NK_ROLLOUT_SKEW') && /newer than the control plane/.test(e.message));
  assert.throws(() => make(spec({ packages: [{ package: 'kubelet', version: '1.31.0' }] }), null), (e) => hasCode(e, 'NK_ROLLOUT_SKEW'));
  assert.throws(() => make(spec({ packages: [{ package: 'containerd', version: '1.6.2' }] })), (e) => hasCode(e, 'NK_ROLLOUT_DOWNGRADE') && /allowDowngrade/.test(e.message));
  assert.equal(make(spec({ packages: [{ package: 'containerd', version: '1.6.2' }], allowDowngrade: true })).phase, 'Pending');
  assert.throws(() => make(spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], selector: { matchLabels: { pool: 'db' } } })), (e) => hasCode(e, 'NK_ROLLOUT_NO_MACHINES'));
});

test('a control plane moved back mid-rollout pauses before any kubelet passes it', () => {
  const r = setup(4, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 0 }, soakSeconds: 0, maxUnavailable: 1 } }));
  step(r);
  r.controlPlane = '1.30.9';
  runUntil(r, (s) => s.phase === 'Paused');
  assert.equal(r.state.reason, 'SkewViolation');
  assert.equal(installs(r).length, 1);
  r.controlPlane = CP;
  step(r, 'resume');
  runUntil(r, (s) => s.phase === 'Completed');
});

test('abort stops at once; rollback afterwards restores what was changed', () => {
  const r = setup(4, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 1 }, soakSeconds: 30, maxUnavailable: 1 } }));
  runUntil(r, (s) => s.phase === 'Soaking');
  step(r, 'abort');
  assert.equal(r.state.phase, 'Failed');
  assert.equal(r.state.reason, 'Aborted');
  assert.equal(r.state.continueWith, 'nkctl rollout rollback r1');
  const canary = r.state.candidates[0] ?? '';
  assert.equal(r.state.machines[canary]?.phase, 'Skipped');
  step(r, 'rollback');
  runUntil(r, (s) => s.phase === 'RolledBack');
  assert.equal(r.fleet.get(canary).versions.kubelet, '1.30.4');
  assert.equal(r.state.machines[canary]?.phase, 'RolledBack');
});

test('a request that makes no sense in the phase is ignored with a warning event', () => {
  const r = setup(2, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }] }));
  const out = step(r, 'resume');
  assert.ok(out.actions.some((a) => a.kind === 'event' && a.reason === 'RequestIgnored'));
});

test('a kubelet held between packages by the skew policy pauses the rollout, then goes on', () => {
  const r = setup(2, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }, { package: 'containerd', version: '1.7.1' }], strategy: { canary: { count: 0 }, soakSeconds: 0, batches: [100], maxUnavailable: 1 } }));
  step(r);
  const first = installs(r)[0];
  assert.equal(first?.package, 'containerd');
  r.controlPlane = null;
  runUntil(r, (s) => s.phase === 'Paused');
  assert.equal(r.state.reason, 'SkewViolation');
  assert.equal(r.state.machines[first?.machine ?? '']?.reason, 'HeldForSkew');
  for (let i = 0; i < 3; i++) step(r, i === 0 ? 'resume' : null);
  assert.ok(!installs(r).some((a) => a.package === 'kubelet'), 'no kubelet while the control plane is unknown');
  r.controlPlane = CP;
  if (r.state.phase === 'Paused') step(r, 'resume');
  runUntil(r, (s) => s.phase === 'Completed');
  assert.deepEqual(installs(r).filter((a) => a.machine === first?.machine).map((a) => a.package), ['containerd', 'kubelet']);
});

test('an agent rollout soaks on the agent itself: connected and at the target, even where the kubelet is unhealthy', () => {
  const agentSpec = spec({ packages: [{ package: 'nodekeeper-agent', version: '2.0.0' }], strategy: { canary: { count: 1 }, soakSeconds: 20, batches: [100], maxUnavailable: 1 } });
  const r = setup(3, agentSpec, { 'nodekeeper-agent': '1.0.0' });
  for (const name of r.fleet.machines.keys()) r.fleet.setHealthy(name, false, 0);
  runUntil(r, (s) => s.phase === 'Completed');
  assert.deepEqual([...r.fleet.machines.values()].map((m) => m.versions['nodekeeper-agent']), ['2.0.0', '2.0.0', '2.0.0']);
  // The same fleet could never soak a kubelet rollout: its health is the node's.
  const k = setup(3, spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 1 }, soakSeconds: 20, batches: [100], maxUnavailable: 1 } }));
  for (const name of k.fleet.machines.keys()) k.fleet.setHealthy(name, false, 0);
  runUntil(k, (s) => s.phase === 'Paused');
  assert.equal(k.state.reason, 'CanaryFailed');
});

test('an agent rollout: a machine whose node switched the agent back fails, and the rollout halts on the canary', () => {
  const r = setup(3, spec({ packages: [{ package: 'nodekeeper-agent', version: '3.0.0' }], strategy: { canary: { count: 1 }, soakSeconds: 20, batches: [100], maxUnavailable: 1 } }), { 'nodekeeper-agent': '2.0.0' });
  r.fail = () => true;
  runUntil(r, (s) => s.phase === 'Paused');
  assert.equal(r.state.reason, 'CanaryFailed');
  assert.equal(r.actions.filter((a) => a.kind === 'install').length, 1, 'only the canary was sent an install');
  assert.equal(r.actions.filter((a) => a.kind === 'rollback').length, 0);
});

test('an agent soak fails when the machine comes back at another version than the target', () => {
  const r = setup(1, spec({ packages: [{ package: 'nodekeeper-agent', version: '2.0.0' }], strategy: { canary: { count: 1 }, soakSeconds: 20, batches: [100], maxUnavailable: 1 } }), { 'nodekeeper-agent': '1.0.0' });
  runUntil(r, (s) => s.machines['node-0']?.phase === 'Soaking');
  r.fleet.get('node-0').versions['nodekeeper-agent'] = '1.0.0';
  runUntil(r, (s) => s.machines['node-0']?.phase === 'Failed');
  assert.equal(r.state.machines['node-0']?.reason, 'UnhealthyDuringSoak');
});
