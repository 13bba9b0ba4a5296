/**
 * The rollout controller keeps the rollouts it reads and writes in memory; these tests
 * hold it to the store: what it plans from and what it tells others it holds is what
 * the store says, after every step, after a step whose transaction failed, and for a
 * controller restarted on the same file.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@nodekeeper/common';
import { SharedBudget } from '../budget/shared-budget.ts';
import { CommandDispatcher } from '../commands/dispatcher.ts';
import { FleetView } from '../fleet/fleet-view.ts';
import { holdsOf } from '../rollout/holds.ts';
import type { RolloutState } from '../rollout/types.ts';
import { parseRollout, ROLLOUT_API_VERSION } from '../rollout/spec.ts';
import type { Store } from '../store/db.ts';
import { enrolledStore, sampleReport, tempDir } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { RolloutController } from './rollout-controller.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const NODES = ['node-a', 'node-b', 'node-c', 'node-d'];
const artifact = (n: number) => ({ url: `https://artifacts.example/${n}`, sha256: String(n).repeat(64), size: 1000 });
const tmp = tempDir('nk-rollout-ctl-');
after(() => tmp.remove());

/** A coordinator's store, fleet view, dispatcher and rollout controller on `file`. */
function coordinator(file: string, now: { t: number }, failed: (reason: string) => void = () => {}, budget = new SharedBudget(2)) {
  const clock = () => now.t;
  const store = enrolledStore(file, NODES, { now: clock, log });
  if (store.getClusterPackageVersion() === null) store.putClusterPackageVersion([{ name: 'kubelet', version: '1.31.3', artifact: artifact(1) }]);
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
  const link = { resync() {}, close() {}, sendCommand: () => true };
  for (const n of NODES) {
    fleet.attach(n, link, 't');
    fleet.report(n, true, sampleReport(n));
  }
  const commands = new CommandDispatcher({ store, clock, log });
  commands.setTransport((machine) => fleet.isConnected(machine));
  const rollouts = new RolloutController({ store, fleet, commands, clock, log, failed, budget }, { controlPlaneVersion: 'v1.32.1' });
  return { store, fleet, commands, rollouts, close: () => store.close() };
}

const rollout = (name: string, strategy: Record<string, unknown>) => ({
  apiVersion: ROLLOUT_API_VERSION, kind: 'Rollout', metadata: { name },
  spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: {}, strategy: { canary: { count: 1 }, soakSeconds: 0, batches: [100], maxUnavailable: 2, ...strategy } },
});

/** What held() must say, read from the store (rollout/holds.ts says what a state holds). */
function heldInStore(store: Store, except: string | null = null): string[] {
  return store.listRollouts().filter((r) => r.name !== except).flatMap((r) => holdsOf(r.state as RolloutState));
}

const phasesInStore = (store: Store) => store.listRollouts().map((r) => (r.state as RolloutState).phase);

/** The open install command of `name` on its machines. */
function openInstalls(store: Store, name: string) {
  return store.commandsByOwner(`rollout/${name}`).filter((c) => c.state === 'Pending' || c.state === 'Sent');
}

test('what the controller plans from and reports is the store, also after a restart', () => {
  const file = tmp.file('restart.db');
  const now = { t: 1_000_000 };
  const c = coordinator(file, now);
  c.rollouts.create(rollout('first', {}));
  const [canary] = openInstalls(c.store, 'first');
  assert.ok(canary !== undefined, 'the canary install is recorded');
  assert.deepEqual(c.rollouts.held(), [canary.machine]);
  // The canary fails after switching: Paused (onFailure), holding it; then aborted: a
  // finished rollout releases it (holds.ts), so later rollouts and repairs may move it.
  c.commands.result(canary.machine, { type: 'command.result', commandId: canary.id, ok: false, result: { outcome: 'failed', failedStep: 'health' }, error: { code: 'NK_INSTALL_HEALTH', message: 'unhealthy' } });
  assert.deepEqual(phasesInStore(c.store), ['Paused']);
  assert.deepEqual(c.rollouts.holders(canary.machine), ['first']);
  c.rollouts.request('first', 'abort');
  assert.deepEqual(c.rollouts.holders(canary.machine), [], 'an aborted rollout holds nothing it is not changing');
  c.rollouts.create(rollout('second', {}));
  now.t += 10_000;
  c.rollouts.tick();
  assert.deepEqual(c.rollouts.phases(), phasesInStore(c.store));
  assert.deepEqual(c.rollouts.held(), heldInStore(c.store));
  assert.ok(!c.rollouts.holders(canary.machine).includes('first'));
  assert.deepEqual(c.rollouts.held('first'), heldInStore(c.store, 'first'));
  assert.ok(c.rollouts.held().length > 0, 'the second rollout holds what it started');

  const writes = c.store.counters.transactions;
  c.rollouts.tick();
  assert.equal(c.store.counters.transactions, writes, 'a tick with nothing new writes nothing');
  const held = c.rollouts.held();
  c.close();

  const again = coordinator(file, now);
  assert.deepEqual(again.rollouts.held(), held);
  assert.deepEqual(again.rollouts.phases(), phasesInStore(again.store));
  const before = again.store.counters.transactions;
  again.rollouts.tick();
  assert.equal(again.store.counters.transactions, before, 'the restarted controller finds nothing to change either');
  again.close();
});

test('a step whose transaction fails leaves the controller where the store is', () => {
  const now = { t: 2_000_000 };
  const c = coordinator(tmp.file('rollback.db'), now);
  c.rollouts.create(rollout('r', { soakSeconds: 5 }));
  const [canary] = openInstalls(c.store, 'r');
  assert.ok(canary !== undefined);
  c.commands.result(canary.machine, { type: 'command.result', commandId: canary.id, ok: true, result: { outcome: 'installed', activeVersion: '1.31.3' } });
  const stored = JSON.stringify(c.store.getRollout('r')?.state);
  // The artifact of the target goes away: the next wave's installs cannot be recorded,
  // and the whole step (state and commands) is rolled back.
  c.store.putClusterPackageVersion([{ name: 'kubelet', version: '1.31.4', artifact: artifact(2) }]);
  now.t += 10_000;
  c.rollouts.tick();
  assert.equal(JSON.stringify(c.store.getRollout('r')?.state), stored, 'nothing was saved');
  assert.deepEqual(c.rollouts.held(), heldInStore(c.store));
  assert.deepEqual(c.rollouts.phases(), phasesInStore(c.store));
  // Back again: the same step goes through, from the stored state.
  c.store.putClusterPackageVersion([{ name: 'kubelet', version: '1.31.3', artifact: artifact(1) }]);
  c.rollouts.tick();
  assert.notEqual(JSON.stringify(c.store.getRollout('r')?.state), stored);
  assert.equal(openInstalls(c.store, 'r').length, 2, 'the next wave starts within the budget of 2');
  assert.deepEqual(c.rollouts.held(), heldInStore(c.store));
  c.close();
});

test('a finished rollout releases its failed machine: a later rollout counts it against the budget only while it is unhealthy', () => {
  const now = { t: 3_000_000 };
  const failures: string[] = [];
  const c = coordinator(tmp.file('released.db'), now, (reason) => failures.push(reason));
  c.rollouts.create(rollout('first', {}));
  const [canary] = openInstalls(c.store, 'first');
  assert.ok(canary !== undefined);
  // The canary switched kubelet and failed; the rollout pauses, then is aborted.
  c.commands.result(canary.machine, { type: 'command.result', commandId: canary.id, ok: false, result: { outcome: 'failed', failedStep: 'health' }, error: { code: 'NK_INSTALL_HEALTH', message: 'unhealthy' } });
  assert.deepEqual(failures, ['CanaryFailed'], 'the failure is counted once, when the rollout stops on it (nodekeeper_rollout_failures_total)');
  c.rollouts.request('first', 'abort');
  assert.deepEqual(failures, ['CanaryFailed'], 'an abort is not a failure');
  assert.deepEqual(c.rollouts.holders(canary.machine), []);
  const report = sampleReport(canary.machine);
  c.fleet.report(canary.machine, true, { ...report, kubelet: { ...report.kubelet, health: 'unhealthy', reason: 'HealthzFailed', message: 'GET /healthz: 500' } });

  // Cluster budget 2: the unhealthy machine counts, so one other machine may start (and itself).
  c.rollouts.create(rollout('second', { canary: { count: 0 }, maxUnavailable: 4 }));
  const others = () => openInstalls(c.store, 'second').filter((x) => x.machine !== canary.machine).length;
  assert.equal(others(), 1, 'one machine counted elsewhere + one started = the budget of 2');
  assert.equal((c.store.getRollout('second')?.state as RolloutState).waiting?.reason, 'BudgetExhausted');
  c.fleet.report(canary.machine, true, report); // healthy again: it counts no more
  now.t += 10_000;
  c.rollouts.tick();
  assert.equal(openInstalls(c.store, 'second').length, 2, 'the budget of 2 is all the second rollout\'s once the failed machine is healthy');
  c.close();
});

test('a finished rollout whose in-flight machine is deleted releases it on the next tick', () => {
  const now = { t: 4_000_000 };
  const c = coordinator(tmp.file('deleted.db'), now);
  c.rollouts.create(rollout('first', {}));
  const [canary] = openInstalls(c.store, 'first');
  assert.ok(canary !== undefined);
  c.rollouts.request('first', 'abort');
  assert.deepEqual(c.rollouts.holders(canary.machine), ['first'], 'the install already sent is still out');
  // `nkctl machine delete --force`: the machine and its commands go; no result will come.
  c.store.deleteMachine(canary.machine, 'forced while held by first');
  c.fleet.deleted(canary.machine);
  now.t += 10_000;
  c.rollouts.tick();
  assert.deepEqual(c.rollouts.holders(canary.machine), []);
  assert.equal((c.store.getRollout('first')?.state as RolloutState).machines[canary.machine]?.reason, 'MachineGone');
  assert.deepEqual(c.rollouts.held(), heldInStore(c.store));
  c.close();
});

/** A coordinator whose storm guard suspects a partition until `endHold()`. */
function heldCoordinator(file: string) {
  const now = { t: 1_000_000 };
  const budget = new SharedBudget(2);
  let partition: { reason: string; message: string } | null = { reason: 'PartitionSuspected', message: '3 of 4 agents went silent together' };
  budget.setPartitionSource(() => partition);
  return { c: coordinator(tmp.file(file), now, () => {}, budget), now, endHold: () => void (partition = null) };
}

test('a rollout created or re-applied while a partition is suspected starts nothing until the hold ends (invariant 5)', () => {
  const { c, now, endHold } = heldCoordinator('held-create.db');
  try {
    c.rollouts.create(rollout('early', { canary: { count: 0 } }));
    assert.deepEqual(openInstalls(c.store, 'early'), [], 'no install at creation while the guard holds');
    now.t += 10_000;
    c.rollouts.tick();
    assert.deepEqual(openInstalls(c.store, 'early'), [], 'nor at the next tick');
    const applied = c.rollouts.applySpec('early', parseRollout(rollout('early', { canary: { count: 0 }, maxUnavailable: 1 })).spec);
    assert.equal(applied.changed, true);
    assert.deepEqual(openInstalls(c.store, 'early'), [], 'nor when its spec is re-applied');
    endHold();
    now.t += 10_000;
    c.rollouts.tick();
    assert.equal(openInstalls(c.store, 'early').length, 1, 'it starts once the hold is over, by the spec applied meanwhile');
  } finally {
    c.close();
  }
});

test('an operator\'s pause and resume during a suspected partition change the phase; the resume starts nothing until the hold ends (invariant 5)', () => {
  const { c, now, endHold } = heldCoordinator('held-request.db');
  try {
    c.rollouts.create(rollout('asked', { canary: { count: 0 } }));
    assert.equal((c.rollouts.request('asked', 'pause').state as RolloutState).phase, 'Paused', 'a pause applies at once');
    const resumed = c.rollouts.request('asked', 'resume').state as RolloutState;
    assert.notEqual(resumed.phase, 'Paused', 'the resume is recorded at once');
    assert.equal(resumed.waiting?.reason, 'PartitionSuspected', 'and says what it waits for');
    assert.deepEqual(openInstalls(c.store, 'asked'), [], 'but sends nothing while the guard holds');
    now.t += 10_000;
    c.rollouts.tick();
    assert.deepEqual(openInstalls(c.store, 'asked'), [], 'nor at the next tick');
    endHold();
    now.t += 10_000;
    c.rollouts.tick();
    assert.equal(openInstalls(c.store, 'asked').length, 2, 'the hold over, it starts as far as the budget allows');
    assert.notEqual((c.store.getRollout('asked')?.state as RolloutState).waiting?.reason, 'PartitionSuspected');
  } finally {
    c.close();
  }
});

test('the shared budget (budget/): another user\'s holds and a suspected partition reach the rollouts, and what a rollout holds is told back', () => {
  const now = { t: 1_000_000 };
  const budget = new SharedBudget(2);
  let remediationHolds: string[] = ['node-a', 'node-b'];
  let partition: { reason: string; message: string } | null = null;
  budget.addUser(() => [{ user: 'remediation', machines: remediationHolds, counted: [] }]);
  budget.setPartitionSource(() => partition);
  const c = coordinator(tmp.file('shared-budget.db'), now, () => {}, budget);
  try {
    c.rollouts.create(rollout('shared', { canary: { count: 0 } }));
    assert.deepEqual(openInstalls(c.store, 'shared'), [], 'two machines out of at most two: nothing starts');
    const waiting = (c.store.getRollout('shared')?.state as RolloutState).waiting?.reason;
    assert.ok(waiting === 'BudgetExhausted' || waiting === 'BusyElsewhere', `waiting: ${waiting}`);

    remediationHolds = [];
    partition = { reason: 'PartitionSuspected', message: '3 of 4 agents went silent together' };
    now.t += 10_000;
    c.rollouts.tick();
    assert.deepEqual(openInstalls(c.store, 'shared'), [], 'nothing starts while a partition is suspected');
    assert.ok(c.store.listEvents({ object: 'rollouts/cluster', limit: 100 }).some((e) => e.reason === 'PartitionSuspected'), 'the hold is recorded');

    partition = null;
    now.t += 10_000;
    c.rollouts.tick();
    const started = openInstalls(c.store, 'shared').map((x) => x.machine).sort();
    assert.equal(started.length, 2, 'room for two once the others let go');
    assert.deepEqual([...budget.for('remediation', NODES.length).unavailableNow].sort(), started, 'the rollout\'s holds are what remediation sees');
    assert.deepEqual(budget.for('rollout/shared', NODES.length).unavailableNow, [], 'a rollout does not see its own holds as someone else\'s');
  } finally {
    c.close();
  }
});
