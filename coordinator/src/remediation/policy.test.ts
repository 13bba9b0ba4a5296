import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRemediation, maxUnhealthyFor } from './policy.ts';
import { defaultRules, parseRule, type RemediationRule } from './rules.ts';
import { SimFleet } from './test-support.ts';
import { DEFAULT_REMEDIATION_SETTINGS, type RemediationAction, type RemediationInput, type RemediationState } from './types.ts';

const STEP = 10_000;

interface Run {
  fleet: SimFleet;
  state: RemediationState | null;
  now: number;
  log: RemediationAction[];
  input: Partial<RemediationInput>;
  /** How long each command runs on its agent. */
  durationMs?: number;
}

function run(n: number, input: Partial<RemediationInput> = {}): Run {
  return { fleet: new SimFleet(n), state: null, now: 0, log: [], input };
}

function step(r: Run): RemediationAction[] {
  r.now += STEP;
  const results = r.fleet.tick(r.now);
  const out = planRemediation({
    machines: r.fleet.views(r.now),
    rules: defaultRules(),
    state: r.state,
    budget: { maxUnavailable: 10, unavailableNow: [] },
    settings: DEFAULT_REMEDIATION_SETTINGS,
    pause: { cluster: false, machines: [] },
    dryRun: false,
    results,
    now: r.now,
    ...r.input,
  });
  r.state = out.state;
  r.fleet.apply(out.actions, r.now, r.durationMs ?? 10_000);
  r.log.push(...out.actions);
  return [...out.actions];
}

const commands = (log: readonly RemediationAction[]) => log.flatMap((a) => (a.kind === 'command' ? [`${a.machine} ${a.command}`] : []));

test('a kubelet fixed by a restart: one restart, then Remediated and cooling down', () => {
  const r = run(3);
  r.fleet.break('n1', 'kubelet', 'service.restart');
  for (let i = 0; i < 40; i++) step(r);
  assert.deepEqual(commands(r.log), ['n1 service.restart']);
  const m = r.state?.machines.n1;
  assert.equal(m?.phase, 'Idle');
  assert.equal(m?.reason, 'Remediated');
  assert.ok(r.log.some((a) => a.kind === 'event' && a.reason === 'Remediated' && a.rule === 'kubelet-unhealthy'));
});

test('a crash-looping kubelet escalates step by step and stops at NeedsHuman, no loop', () => {
  const r = run(3);
  r.fleet.break('n0', 'kubelet', null); // nothing cures it
  for (let i = 0; i < 600; i++) step(r);
  assert.deepEqual(commands(r.log), ['n0 service.restart', 'n0 package.install']);
  const cordons = r.log.filter((a) => a.kind === 'cordon');
  assert.equal(cordons.length, 1);
  const m = r.state?.machines.n0;
  assert.equal(m?.phase, 'NeedsHuman');
  assert.equal(m?.cordoned, true);
  // The whole story is in the message: each step and its result.
  assert.match(m?.message ?? '', /RestartService.*ReinstallPackage/s);
  const install = r.log.find((a) => a.kind === 'command' && a.command === 'package.install');
  assert.deepEqual(install?.kind === 'command' ? install.params : null, { package: 'kubelet', version: '1.31.2' });
});

test('a storm (60% unhealthy) starts nothing, records the reason, and resumes after the cooldown', () => {
  const settings = { ...DEFAULT_REMEDIATION_SETTINGS, stormCooldownSeconds: 300 };
  const r = run(10, { settings });
  for (let i = 0; i < 6; i++) r.fleet.break(`n${i}`, 'kubelet', 'service.restart');
  for (let i = 0; i < 30; i++) step(r);
  assert.deepEqual(commands(r.log), []);
  assert.equal(r.state?.storm.active, true);
  assert.equal(r.state?.storm.reason, 'TooManyUnhealthy');
  assert.ok(r.log.some((a) => a.kind === 'event' && a.reason === 'StormGuard'));
  // The storm passes except for one machine: nothing until the cooldown, then it is repaired.
  for (let i = 1; i < 6; i++) r.fleet.break(`n${i}`, null);
  const calmAt = r.now + STEP;
  let resumedAt = -1;
  for (let i = 0; i < 80 && resumedAt < 0; i++) {
    const acts = step(r);
    if (acts.some((a) => a.kind === 'command')) resumedAt = r.now;
  }
  assert.ok(resumedAt - calmAt >= 300_000, `resumed ${resumedAt - calmAt} ms after calm`);
  assert.ok(r.log.some((a) => a.kind === 'event' && a.reason === 'StormOver'));
  assert.deepEqual(commands(r.log), ['n0 service.restart']);
});

test('many silent agents at once: partition suspected, nothing starts', () => {
  const r = run(10);
  r.fleet.break('n9', 'network', 'config.restore');
  for (let i = 0; i < 3; i++) r.fleet.setSilent(`n${i}`, true, 0);
  for (let i = 0; i < 30; i++) step(r);
  assert.deepEqual(commands(r.log), []);
  assert.equal(r.state?.storm.reason, 'PartitionSuspected');
});

for (const n of [3, 5000]) {
  test(`a ${n}-node fleet with one faulty machine gets it remediated`, () => {
    const r = run(n);
    r.fleet.break('n2', 'network', 'config.restore');
    for (let i = 0; i < 30; i++) step(r);
    assert.deepEqual(commands(r.log), ['n2 config.restore']);
    assert.equal(r.state?.machines.n2?.reason, 'Remediated');
    assert.equal(r.state?.storm.active, false);
  });
}

test('storm limit: max(1, 10%) is sensible on 3 nodes and on 5,000', () => {
  assert.equal(maxUnhealthyFor(3, DEFAULT_REMEDIATION_SETTINGS.maxUnhealthy), 1);
  assert.equal(maxUnhealthyFor(5000, DEFAULT_REMEDIATION_SETTINGS.maxUnhealthy), 500);
});

test('dry run records wouldRemediate once per episode and issues nothing', () => {
  const r = run(3, { dryRun: true });
  r.fleet.break('n1', 'runtime', 'service.restart');
  for (let i = 0; i < 40; i++) step(r);
  assert.deepEqual(commands(r.log), []);
  assert.equal(r.log.filter((a) => a.kind === 'wouldRemediate').length, 1);
  assert.ok(!r.log.some((a) => a.kind === 'cordon'));
});

test('paused (cluster or machine) starts nothing; a machine held by a rollout is not touched', () => {
  for (const input of [{ pause: { cluster: true, machines: [] } }, { pause: { cluster: false, machines: ['n1'] } }, { budget: { maxUnavailable: 10, unavailableNow: ['n1'] } }]) {
    const r = run(3, input);
    r.fleet.break('n1', 'kubelet', 'service.restart');
    for (let i = 0; i < 30; i++) step(r);
    assert.deepEqual(commands(r.log), [], JSON.stringify(input));
  }
});

test('the shared budget: others holding it leave no room, and the reason is recorded', () => {
  const r = run(5, { budget: { maxUnavailable: 1, unavailableNow: ['n4'] } });
  r.fleet.break('n1', 'kubelet', 'service.restart');
  for (let i = 0; i < 30; i++) step(r);
  assert.deepEqual(commands(r.log), []);
  assert.equal(r.state?.machines.n1?.waiting, 'BudgetExhausted');
});

test('the shared budget: a machine a finished rollout failed counts (failed-not-yet-restored), yet may itself be repaired', () => {
  // n4 failed by a rollout and released: held by nobody, still out. It leaves no room for n1...
  const r = run(5, { budget: { maxUnavailable: 1, unavailableNow: [], countedNow: ['n4'] } });
  r.fleet.break('n1', 'kubelet', 'service.restart');
  for (let i = 0; i < 30; i++) step(r);
  assert.deepEqual(commands(r.log), []);
  assert.equal(r.state?.machines.n1?.waiting, 'BudgetExhausted');
  // ...but repairing n4 itself adds nothing to what is out, so it goes ahead.
  const own = run(5, { budget: { maxUnavailable: 1, unavailableNow: [], countedNow: ['n4'] } });
  own.fleet.break('n4', 'kubelet', 'service.restart');
  for (let i = 0; i < 30 && commands(own.log).length === 0; i++) step(own);
  assert.deepEqual(commands(own.log), ['n4 service.restart']);
});

test('a fault that keeps coming back spends the attempts budget and ends NeedsHuman', () => {
  const r = run(3);
  for (let k = 0; k < 6; k++) {
    r.fleet.break('n0', 'kubelet', 'service.restart');
    for (let i = 0; i < 100; i++) step(r); // repaired, then the cooldown (600 s) passes
  }
  assert.equal(commands(r.log).length, 3);
  assert.equal(r.state?.machines.n0?.phase, 'NeedsHuman');
  assert.equal(r.state?.machines.n0?.reason, 'AttemptsExhausted');
});

test('same input, same output; command ids are stable', () => {
  const r = run(4);
  r.fleet.break('n3', 'kubelet', 'service.restart');
  for (let i = 0; i < 6; i++) step(r);
  const input: RemediationInput = { machines: r.fleet.views(r.now + STEP), rules: defaultRules(), state: r.state, budget: { maxUnavailable: 2, unavailableNow: [] }, settings: DEFAULT_REMEDIATION_SETTINGS, pause: { cluster: false, machines: [] }, dryRun: false, results: [], now: r.now + STEP };
  assert.deepEqual(planRemediation(structuredClone(input)), planRemediation(input));
});

test('a fleet still enrolling (machines Pending, no report yet) is not a storm', () => {
  const r = run(4);
  const views = r.fleet.views(STEP).map((v) => ({ ...v, healthy: false, liveness: { state: 'Pending' as const, since: 0 } }));
  const plan = (machines: RemediationInput['machines']) => planRemediation({
    machines,
    rules: defaultRules(),
    state: null,
    budget: { maxUnavailable: 10, unavailableNow: [] },
    settings: DEFAULT_REMEDIATION_SETTINGS,
    pause: { cluster: false, machines: [] },
    dryRun: false,
    results: [],
    now: STEP,
  });
  assert.equal(plan(views).state.storm.active, false, 'Pending machines have not reported: they are not unhealthy');
  const storm = plan(views.map((v, i) => (i < 2 ? { ...v, liveness: { state: 'NotReady' as const, since: 0 } } : v)));
  assert.equal(storm.state.storm.active, true, 'two of four reporting NotReady is a storm');
});

/** Steps until a command has been issued (the fault needs its hold time first). */
function stepToFirstCommand(r: Run): void {
  for (let i = 0; i < 20 && commands(r.log).length === 0; i++) step(r);
  assert.equal(commands(r.log).length, 1);
}

/** A kubelet rule with the given ladder, acting at once (forSeconds 0). */
const kubeletRule = (ladder: unknown[]): RemediationRule => parseRule({
  apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet' },
  spec: { fault: 'KubeletUnhealthy', forSeconds: 0, cooldownSeconds: 60, ladder },
});

test('connections lost count toward the partition guard before liveness turns Unknown (issue 10, item 5)', () => {
  const r = run(6);
  r.fleet.break('n0', 'kubelet', 'service.restart');
  // Three agents cut off: their connections are gone, liveness still Ready (within its grace).
  for (const n of ['n3', 'n4', 'n5']) r.fleet.setDisconnected(n, true);
  for (let i = 0; i < 20; i++) step(r);
  assert.deepEqual(commands(r.log), [], 'no repair goes out while half the fleet is cut off');
  assert.equal(r.state?.storm.reason, 'PartitionSuspected');
  assert.match(r.state?.storm.message ?? '', /3 of 6 agents silent or disconnected/);
});

test('after a coordinator restart, agents not reconnected yet are not a partition', () => {
  const r = run(6);
  const views = r.fleet.views(STEP).map((v, i) => (i >= 3 ? { ...v, connected: false, contactLost: false } : v));
  const out = planRemediation({
    machines: views, rules: defaultRules(), state: null, budget: { maxUnavailable: 10, unavailableNow: [] },
    settings: DEFAULT_REMEDIATION_SETTINGS, pause: { cluster: false, machines: [] }, dryRun: false, results: [], now: STEP,
  });
  assert.equal(out.state.storm.active, false);
});

test('a step whose command is still running is not judged; its late success is in the history (issue 10, item 5)', () => {
  const rules = [kubeletRule([{ action: 'RestartService', timeoutSeconds: 60, successWithinSeconds: 10 }, { action: 'CordonAndNotify' }])];
  const r = run(3, { rules });
  r.durationMs = 40_000; // the restart takes 40 s, longer than successWithinSeconds
  r.fleet.break('n1', 'kubelet', 'service.restart');
  for (let i = 0; i < 40; i++) step(r);
  assert.deepEqual(commands(r.log), ['n1 service.restart']);
  assert.ok(!r.log.some((a) => a.kind === 'cordon'), 'not cordoned while its restart was about to work');
  const m = r.state?.machines.n1;
  assert.equal(m?.reason, 'Remediated');
  assert.match(m?.message ?? '', /cleared after step 1 \(RestartService\)/);
  const results = (m?.history ?? []).map((h) => `${h.action} ${h.result}`);
  assert.ok(results.includes('RestartService command succeeded: ok'), results.join('; '));
  assert.ok(!results.some((x) => x.startsWith('RestartService failed')), results.join('; '));
});

test('a command never delivered is given up at its deadline, cancelled, and the ladder escalates', () => {
  const rules = [kubeletRule([{ action: 'RestartService', timeoutSeconds: 10, successWithinSeconds: 10 }, { action: 'CordonAndNotify' }])];
  const r = run(10, { rules });
  r.fleet.break('n1', 'kubelet', null);
  stepToFirstCommand(r);
  r.fleet.setSilent('n1', true, r.now); // cut off for good, right after the restart was issued
  for (let i = 0; i < 20; i++) step(r);
  const cancel = r.log.find((a) => a.kind === 'cancelCommand');
  assert.ok(cancel !== undefined && cancel.kind === 'cancelCommand' && cancel.machine === 'n1');
  const at = r.log.indexOf(cancel);
  assert.ok(r.log.slice(at).some((a) => a.kind === 'cordon'), 'escalated after giving up');
});

test('a fault that clears while the next step is held is credited to the step that ran (issue 10, item 5)', () => {
  const rules = [kubeletRule([{ action: 'RestartService', timeoutSeconds: 10, successWithinSeconds: 10 }, { action: 'CordonAndNotify' }])];
  const r = run(6, { rules });
  r.fleet.break('n0', 'kubelet', null); // the restart runs and does not help
  stepToFirstCommand(r);
  assert.deepEqual(commands(r.log), ['n0 service.restart']);
  // A partition: the cordon (step 2) is held by the guard...
  for (const n of ['n3', 'n4', 'n5']) r.fleet.setSilent(n, true, r.now);
  for (let i = 0; i < 4; i++) step(r);
  assert.equal(r.state?.machines.n0?.step, 1);
  assert.equal(r.state?.machines.n0?.stepStartedAt, null, 'step 2 is held');
  // ...and the fault clears on its own meanwhile.
  r.fleet.break('n0', null);
  for (let i = 0; i < 12; i++) step(r);
  const m = r.state?.machines.n0;
  assert.equal(m?.phase, 'Idle');
  assert.ok(!r.log.some((a) => a.kind === 'cordon'));
  assert.match(m?.message ?? '', /cleared after step 1 \(RestartService\).*CordonAndNotify, was held and never ran/);
  assert.ok(!(m?.history ?? []).some((h) => h.action === 'CordonAndNotify'), JSON.stringify(m?.history));
});
