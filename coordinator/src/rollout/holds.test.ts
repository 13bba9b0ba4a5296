/**
 * What a rollout holds (holds.ts) on every way it can end: a finished rollout releases
 * its machines, so a machine that failed its soak no longer blocks every later rollout
 * (BusyElsewhere) or its own repair; it still counts against the budget while unhealthy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRolloutState } from './create.ts';
import { deleteRefusal, failedLeftovers, holdsOf, stillUnavailable } from './holds.ts';
import { planStep } from './planner.ts';
import { validateRolloutSpec, type RolloutSpec } from './spec.ts';
import { SimFleet } from './test-support.ts';
import type { OperatorRequest, PlanAction, RolloutState } from './types.ts';

const STEP = 10_000;
const CP = '1.31.5';

interface Run {
  name: string;
  spec: RolloutSpec;
  state: RolloutState;
  actions: PlanAction[];
  /** Machines other users hold (BusyElsewhere) and machines only counted against the budget. */
  others: () => string[];
  counted: () => string[];
  clusterMax: number;
  fail: (a: { machine: string; package: string; version: string; action: string }) => boolean;
}

interface World {
  fleet: SimFleet;
  now: number;
}

function spec(input: Record<string, unknown>): RolloutSpec {
  const r = validateRolloutSpec({ selector: {}, ...input });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

function world(n: number): World {
  const fleet = new SimFleet();
  for (let i = 0; i < n; i++) fleet.add({ name: `node-${i}`, labels: {}, zone: null, versions: { containerd: '1.6.20~ds1', kubelet: '1.30.4' } });
  return { fleet, now: 0 };
}

function rollout(w: World, name: string, s: RolloutSpec): Run {
  const state = newRolloutState({ name, spec: s, machines: w.fleet.views(), controlPlaneVersion: CP, now: w.now });
  return { name, spec: s, state, actions: [], others: () => [], counted: () => [], clusterMax: 100, fail: () => false };
}

/** One planner step of `r` (the clock moves on only when `tick`). */
function step(w: World, r: Run, request: OperatorRequest | null = null, tick = true): PlanAction[] {
  if (tick) {
    w.now += STEP;
    w.fleet.tick(w.now);
  }
  const out = planStep({
    rollout: { name: r.name, spec: r.spec, state: r.state },
    machines: w.fleet.views(),
    budget: { maxUnavailable: r.clusterMax, unavailableNow: r.others(), countedNow: r.counted() },
    controlPlaneVersion: CP,
    now: w.now,
    events: w.fleet.resultsFor(r.state),
    request,
    options: { silenceTimeoutMs: 60_000 },
  });
  // Installs take three steps, so an abort can catch one in flight.
  w.fleet.apply(out.actions, w.now, { durationMs: 3 * STEP, fail: r.fail });
  r.state = out.state;
  r.actions.push(...out.actions);
  return [...out.actions];
}

function until(w: World, r: Run, done: (s: RolloutState) => boolean, max = 300): void {
  for (let i = 0; i < max && !done(r.state); i++) step(w, r);
  assert.ok(done(r.state), `${r.name} not there after ${max} steps: ${r.state.phase} ${r.state.reason} ${r.state.message}`);
}

const views = (w: World) => new Map(w.fleet.views().map((v) => [v.name, v]));
const kubelet = (strategy: Record<string, unknown>) => spec({ packages: [{ package: 'kubelet', version: '1.31.2' }], strategy: { canary: { count: 0 }, batches: [100], soakSeconds: 60, ...strategy } });
const machine = (r: Run, m: string) => r.state.machines[m];

/** Runs `r` until `m` is soaking and has been seen healthy, then makes its kubelet unhealthy. */
function failSoak(w: World, r: Run, m: string): void {
  until(w, r, (s) => s.machines[m]?.phase === 'Soaking' && s.machines[m]?.soakFrom !== null);
  w.fleet.setHealthy(m, false, w.now);
  until(w, r, (s) => s.machines[m]?.phase === 'Failed');
  assert.equal(machine(r, m)?.reason, 'UnhealthyDuringSoak');
  assert.deepEqual(machine(r, m)?.changed, ['kubelet'], 'the install had switched kubelet');
}

test('a machine that failed its soak is released when the rollout completes (CompletedWithFailures); a later rollout installs on it', () => {
  const w = world(3);
  const r1 = rollout(w, 'r1', kubelet({ maxUnavailable: 3, maxFailures: 2 }));
  const x = r1.state.candidates[0] ?? '';
  failSoak(w, r1, x);
  assert.ok(holdsOf(r1.state).includes(x), 'held while its rollout runs: onFailure may still roll it back');
  assert.match(deleteRefusal({ name: 'r1', state: r1.state, holds: holdsOf(r1.state), leftovers: failedLeftovers(r1.state) }, views(w)) ?? '', /^it is \w+; abort it first \(nkctl rollout abort r1\)$/);
  until(w, r1, (s) => s.phase === 'Completed');
  assert.equal(r1.state.reason, 'CompletedWithFailures');
  assert.deepEqual(holdsOf(r1.state), [], 'a finished rollout holds nothing');
  assert.deepEqual(failedLeftovers(r1.state), [x]);
  assert.deepEqual(stillUnavailable(failedLeftovers(r1.state), views(w)), [x], 'still unhealthy: counts against the budget');
  const finished = () => ({ name: 'r1', state: r1.state, holds: holdsOf(r1.state), leftovers: failedLeftovers(r1.state) });
  assert.match(deleteRefusal(finished(), views(w)) ?? '', new RegExp(`still count against the availability budget until healthy \\(${x}\\)`), 'not deleted: the budget would forget it');
  w.fleet.setHealthy(x, true, w.now);
  assert.deepEqual(stillUnavailable(failedLeftovers(r1.state), views(w)), [], 'healthy again: counts no more');
  assert.equal(deleteRefusal(finished(), views(w)), null, 'healthy again: it may be deleted');

  const r2 = rollout(w, 'r2', spec({ packages: [{ package: 'containerd', version: '1.7.1' }], strategy: { canary: { count: 0 }, batches: [100], soakSeconds: 0, maxUnavailable: 1 } }));
  r2.others = () => holdsOf(r1.state);
  r2.counted = () => stillUnavailable(failedLeftovers(r1.state), views(w));
  until(w, r2, (s) => s.phase === 'Completed');
  assert.equal(r2.state.reason, 'Completed');
  assert.equal(machine(r2, x)?.phase, 'Succeeded', 'the machine r1 failed on went on with r2');
  assert.ok(!r2.actions.some((a) => a.kind === 'event' && a.reason === 'BusyElsewhere') && r2.state.waiting === null);
  assert.equal(w.fleet.get(x).versions['containerd'], '1.7.1');

  // What the hold used to be (failed and switched, whatever the phase): r2 would wait for good.
  const r3 = rollout(w, 'r3', spec({ packages: [{ package: 'containerd', version: '1.7.2' }], strategy: { canary: { count: 0 }, batches: [100], soakSeconds: 0, maxUnavailable: 3 } }));
  r3.others = () => [x];
  for (let i = 0; i < 20; i++) step(w, r3);
  assert.equal(machine(r3, x)?.phase, 'Waiting');
  assert.equal(r3.state.waiting?.reason, 'BusyElsewhere');
});

test('a released machine still unhealthy counts against the shared budget of a later rollout, without blocking its own start', () => {
  const w = world(2);
  const r1 = rollout(w, 'r1', kubelet({ maxUnavailable: 2, maxFailures: 2 }));
  const x = r1.state.candidates[0] ?? '';
  failSoak(w, r1, x);
  until(w, r1, (s) => s.phase === 'Completed');
  const r2 = rollout(w, 'r2', spec({ packages: [{ package: 'containerd', version: '1.7.1' }], strategy: { canary: { count: 0 }, batches: [100], soakSeconds: 0, maxUnavailable: 2 } }));
  r2.clusterMax = 1;
  r2.counted = () => stillUnavailable(failedLeftovers(r1.state), views(w));
  const actions = step(w, r2);
  assert.deepEqual(actions.filter((a) => a.kind === 'install').map((a) => a.kind === 'install' && a.machine), [x], 'only the machine that already counts may start');
  assert.equal(r2.state.waiting?.reason, 'BudgetExhausted');
});

test('an abort holds only what has a command out, until its result; the failed machine is released at once', () => {
  const w = world(3);
  const r = rollout(w, 'r1', kubelet({ maxUnavailable: 1, maxFailures: 3 }));
  const [x, y] = r.state.candidates;
  failSoak(w, r, x ?? '');
  w.fleet.setHealthy(x ?? '', true, w.now); // the budget (1) frees up: the next machine starts
  until(w, r, (s) => s.machines[y ?? '']?.phase === 'Installing');
  step(w, r, 'abort');
  assert.equal(r.state.phase, 'Failed');
  assert.equal(r.state.reason, 'Aborted');
  assert.deepEqual(holdsOf(r.state), [y], 'the install already sent is still running on the node');
  until(w, r, (s) => s.machines[y ?? '']?.phase !== 'Installing');
  assert.equal(machine(r, y ?? '')?.phase, 'Skipped');
  assert.deepEqual(holdsOf(r.state), []);
  assert.deepEqual(failedLeftovers(r.state), [x]);
});

test('paused on failures, then aborted, then rolled back: held while it may act, released when done', () => {
  const w = world(3);
  const r = rollout(w, 'r1', kubelet({ maxUnavailable: 1, maxFailures: 1, onFailure: 'Pause' }));
  const x = r.state.candidates[0] ?? '';
  failSoak(w, r, x);
  step(w, r);
  assert.equal(r.state.phase, 'Paused');
  assert.equal(r.state.reason, 'FailureThreshold');
  assert.deepEqual(holdsOf(r.state), [x], 'paused: a rollback may still come');
  step(w, r, 'abort');
  assert.equal(r.state.phase, 'Failed');
  assert.deepEqual(holdsOf(r.state), [], 'aborted while paused: nothing in flight, nothing held');
  step(w, r, 'rollback');
  assert.equal(r.state.phase, 'RollingBack');
  assert.deepEqual(holdsOf(r.state), [x], 'rolling back: held again');
  w.fleet.setHealthy(x, true, w.now);
  until(w, r, (s) => s.phase === 'RolledBack');
  assert.equal(machine(r, x)?.phase, 'RolledBack');
  assert.deepEqual(holdsOf(r.state), []);
  assert.deepEqual(failedLeftovers(r.state), []);
});

test('a rollback that fails ends the rollout Failed (RollbackFailed) holding nothing', () => {
  const w = world(2);
  const r = rollout(w, 'r1', kubelet({ maxUnavailable: 1, maxFailures: 1, onFailure: 'Rollback' }));
  const x = r.state.candidates[0] ?? '';
  until(w, r, (s) => s.machines[x]?.phase === 'Soaking' && s.machines[x]?.soakFrom !== null);
  w.fleet.setHealthy(x, false, w.now);
  until(w, r, (s) => s.machines[x]?.phase === 'RollingBack'); // failed its soak, rolling back in the same step
  assert.equal(r.state.phase, 'RollingBack');
  const id = machine(r, x)?.commandId ?? '';
  const c = w.fleet.commands.get(id);
  assert.ok(c !== undefined);
  c.result = { kind: 'installResult', machine: x, commandId: id, outcome: 'failed', activeVersion: '1.31.2', failedStep: 'switch', message: 'disk full' };
  until(w, r, (s) => s.phase === 'Failed');
  assert.equal(r.state.reason, 'RollbackFailed');
  assert.equal(machine(r, x)?.reason, 'RollbackFailed');
  assert.deepEqual(holdsOf(r.state), []);
  assert.deepEqual(failedLeftovers(r.state), [x], 'still counted while unhealthy');
});

test('a machine deleted mid-install is settled at once: the rollout goes on past it and holds nothing', () => {
  const w = world(2);
  const r = rollout(w, 'r1', kubelet({ maxUnavailable: 1, soakSeconds: 0 }));
  const [x, y] = r.state.candidates;
  until(w, r, (s) => s.machines[x ?? '']?.phase === 'Installing');
  // `nkctl machine delete --force`: the machine and its commands are gone from the store.
  w.fleet.machines.delete(x ?? '');
  for (const [id, c] of w.fleet.commands) if (c.machine === x) w.fleet.commands.delete(id);
  step(w, r);
  assert.equal(machine(r, x ?? '')?.phase, 'Skipped');
  assert.equal(machine(r, x ?? '')?.reason, 'MachineGone');
  assert.deepEqual(holdsOf(r.state), [y], 'the budget the deleted machine held went to the next one');
  until(w, r, (s) => s.phase === 'Completed');
  assert.ok(!r.actions.some((a) => a.kind === 'setPhase' && a.phase === 'Paused'), 'never paused waiting for the deleted machine');
  assert.deepEqual(holdsOf(r.state), []);
});

test('a failed machine deleted while its rollout is paused: not held, and a rollback does not wait for it', () => {
  const w = world(2);
  const r = rollout(w, 'r1', kubelet({ maxUnavailable: 1, maxFailures: 1, onFailure: 'Pause' }));
  const x = r.state.candidates[0] ?? '';
  failSoak(w, r, x);
  step(w, r);
  assert.equal(r.state.phase, 'Paused');
  w.fleet.machines.delete(x);
  step(w, r);
  assert.equal(machine(r, x)?.reason, 'MachineGone');
  assert.deepEqual(holdsOf(r.state), [], 'a name that may come back as a new machine is not held');
  step(w, r, 'rollback');
  until(w, r, (s) => s.phase === 'RolledBack', 10);
  assert.deepEqual(holdsOf(r.state), []);
  assert.deepEqual(failedLeftovers(r.state), []);
});
