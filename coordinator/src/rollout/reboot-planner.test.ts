/**
 * The planner on reboot rollouts: one machine at a time under the shared budget, the
 * gates (window, alerts, blocking pods) hold with a reason and a RebootHeld event, a
 * RebootFailed halts the rollout and nothing is rebooted again until an operator
 * resumes; a property test drives random fleets, outcomes, gates and restarts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { newRolloutState } from './create.ts';
import { planStep } from './planner.ts';
import { holdsOf } from './holds.ts';
import { validateRolloutSpec, type RolloutSpec } from './spec.ts';
import type { InstallResultEvent, MachineView, PlanAction, PlanInput, RebootGates, RolloutState } from './types.ts';

const view = (name: string, o: Partial<MachineView> = {}): MachineView => ({
  name, labels: { pool: 'web' }, zone: null, liveness: { state: 'Ready', since: 0 }, connected: true, versions: {}, healthy: true, healthySince: 0, rebootRequired: true, ...o,
});

function rebootSpec(extra: Record<string, unknown> = {}, strategy: Record<string, unknown> = {}): RolloutSpec {
  const r = validateRolloutSpec({ reboot: { ...extra }, selector: { matchLabels: { pool: 'web' } }, strategy: { canary: { count: 0 }, batches: [100], soakSeconds: 0, maxUnavailable: 1, ...strategy } });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

interface World {
  state: RolloutState;
  readonly spec: RolloutSpec;
  readonly machines: MachineView[];
}

function world(spec: RolloutSpec, names: string[]): World {
  const machines = names.map((n) => view(n));
  return { spec, machines, state: newRolloutState({ name: 'rb', spec, machines, controlPlaneVersion: 'v1.31.0', now: 0 }) };
}

function step(w: World, now: number, more: Partial<PlanInput> = {}): readonly PlanAction[] {
  const r = planStep({ rollout: { name: 'rb', spec: w.spec, state: w.state }, machines: w.machines, budget: { maxUnavailable: 10, unavailableNow: [] }, controlPlaneVersion: 'v1.31.0', now, ...more });
  w.state = r.state;
  return r.actions;
}

const rebootsIn = (actions: readonly PlanAction[]) => actions.filter((a) => a.kind === 'reboot').map((a) => a.machine);
const done = (w: World, machine: string, ok: boolean, reason = ok ? 'Rebooted' : 'RebootFailed'): InstallResultEvent => ({
  kind: 'installResult', machine, commandId: w.state.machines[machine]!.commandId!, outcome: ok ? 'installed' : 'failed', activeVersion: null, message: ok ? 'came back on a new boot' : 'reconnected on the old boot id', reason,
});

test('a reboot rollout of two machines reboots one at a time, each after the previous one is back and soaked', () => {
  const w = world(rebootSpec(), ['a', 'b']);
  assert.deepEqual(rebootsIn(step(w, 1)), [w.state.candidates[0]]);
  const first = w.state.candidates[0]!;
  const second = w.state.candidates[1]!;
  assert.equal(w.state.machines[first]!.step?.action, 'reboot');
  assert.deepEqual(rebootsIn(step(w, 2)), [], 'budget 1: the second waits');
  assert.equal(w.state.waiting?.reason, 'BudgetExhausted');
  const next = step(w, 3, { events: [done(w, first, true)] });
  assert.equal(w.state.machines[first]!.phase, 'Succeeded', 'soakSeconds 0 and healthy');
  assert.deepEqual(rebootsIn(next), [second], 'the next one starts once the first is back and soaked');
  step(w, 5, { events: [done(w, second, true)] });
  step(w, 6);
  assert.equal(w.state.phase, 'Completed');
  assert.deepEqual(holdsOf(w.state), []);
});

test('a RebootFailed halts the rollout at once (whatever maxFailures says); nothing reboots until resume, and then not the failed one', () => {
  const w = world(rebootSpec({}, { maxFailures: 5 }), ['a', 'b', 'c']);
  const [first, second] = w.state.candidates as [string, string, string];
  step(w, 1);
  const actions = step(w, 2, { events: [done(w, first, false)] });
  assert.equal(w.state.phase, 'Paused');
  assert.equal(w.state.reason, 'RebootFailed');
  assert.match(w.state.message, /reconnected on the old boot id.*nkctl rollout resume rb/);
  assert.equal(w.state.continueWith, 'nkctl rollout resume rb');
  assert.deepEqual(rebootsIn(actions), []);
  for (let t = 3; t < 10; t++) assert.deepEqual(rebootsIn(step(w, t)), [], 'paused: nothing is rebooted');
  const resumed = step(w, 10, { request: 'resume' });
  assert.deepEqual(rebootsIn(resumed), [second], 'the next machine, never the failed one');
  assert.equal(w.state.machines[first]!.phase, 'Failed');
  assert.equal(w.state.machines[first]!.counted, true);
});

test('a drain that stops is a failure counted against maxFailures, not a halt', () => {
  const w = world(rebootSpec({}, { maxFailures: 2 }), ['a', 'b']);
  const [first, second] = w.state.candidates as [string, string];
  step(w, 1);
  const actions = step(w, 2, { events: [done(w, first, false, 'DrainStopped')] });
  assert.equal(w.state.machines[first]!.reason, 'DrainStopped');
  assert.notEqual(w.state.phase, 'Paused');
  assert.deepEqual(rebootsIn(actions), [second]);
});

test('gates hold with their reason and one RebootHeld event per new reason; clearing them releases', () => {
  const w = world(rebootSpec({ prometheus: { url: 'http://prom:9090' } }), ['a', 'b']);
  const alerts: RebootGates = { rollout: { reason: 'RebootHeld', message: '1 alert(s) firing: NodeDown' }, machines: new Map() };
  const a1 = step(w, 1, { gates: alerts });
  assert.deepEqual(rebootsIn(a1), []);
  assert.deepEqual(w.state.waiting, alerts.rollout);
  const held = a1.filter((a) => a.kind === 'event' && a.reason === 'RebootHeld');
  assert.equal(held.length, 1);
  assert.match(held[0]!.kind === 'event' ? held[0]!.message : '', /NodeDown/);
  assert.equal(step(w, 2, { gates: alerts }).filter((a) => a.kind === 'event' && a.reason === 'RebootHeld').length, 0, 'the same hold is not recorded again');
  // Blocking pods on the first machine hold it; the second may go.
  const [first, second] = w.state.candidates as [string, string];
  const pods: RebootGates = { rollout: null, machines: new Map([[first, { reason: 'RebootHeld', message: `blocking pods (app=db) on Node ${first}: default/db-0` }]]) };
  assert.deepEqual(rebootsIn(step(w, 3, { gates: pods })), [second]);
  assert.equal(w.state.machines[first]!.phase, 'Waiting');
});

test('a closed maintenance window in Europe/Berlin holds a reboot rollout (RebootHeld) and it starts when the window opens', () => {
  const spec = rebootSpec({}, { window: { start: '02:00', end: '05:00', timeZone: 'Europe/Berlin' } });
  const w = world(spec, ['a']);
  const noonBerlin = Date.parse('2025-06-02T10:00:00Z');
  const a1 = step(w, noonBerlin);
  assert.deepEqual(rebootsIn(a1), []);
  assert.equal(w.state.waiting?.reason, 'OutsideWindow');
  assert.match(w.state.waiting?.message ?? '', /02:00-05:00 Europe\/Berlin/);
  assert.equal(a1.filter((a) => a.kind === 'event' && a.reason === 'RebootHeld').length, 1);
  assert.deepEqual(rebootsIn(step(w, Date.parse('2025-06-03T00:30:00Z'))), w.state.candidates, '02:30 CEST');
});

test('--only-required: a machine that no longer needs a reboot when its turn comes is skipped', () => {
  const spec = rebootSpec({ onlyRequired: true });
  const w = world(spec, ['a']);
  w.machines[0] = view('a', { rebootRequired: false });
  step(w, 1);
  assert.equal(w.state.machines['a']!.phase, 'Skipped');
  assert.equal(w.state.machines['a']!.reason, 'RebootNotRequired');
});

test('the spec: reboot XOR packages, no Rollback on failure, a valid alert filter', () => {
  const bad = (spec: unknown) => {
    const r = validateRolloutSpec(spec);
    return r.ok ? [] : r.errors.map((e) => e.path);
  };
  assert.deepEqual(bad({ reboot: {}, packages: [{ package: 'kubelet', version: '1.31.2' }] }), ['/spec']);
  assert.deepEqual(bad({}), ['/spec']);
  assert.deepEqual(bad({ reboot: {}, strategy: { onFailure: 'Rollback' } }), ['/spec/strategy/onFailure']);
  assert.deepEqual(bad({ reboot: { prometheus: { url: 'http://p', alertFilter: '(' } } }), ['/spec/reboot/prometheus/alertFilter']);
  const ok = validateRolloutSpec({ reboot: { blockingPods: 'app=db' } });
  assert.ok(ok.ok);
  assert.deepEqual(ok.ok && ok.spec.reboot, { onlyRequired: false, blockingPods: 'app=db', prometheus: null, drain: { force: false, deleteEmptyDirData: false, timeoutSeconds: 600, gracePeriodSeconds: null }, timeoutSeconds: 900 });
  assert.deepEqual(ok.ok && ok.spec.packages, []);
});

test('property: reboot rollouts never exceed the budget, never reboot a machine twice, and reboot nothing while halted', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 3 }),
    fc.array(fc.record({ fail: fc.constantFrom('ok', 'ok', 'ok', 'RebootFailed', 'DrainStopped'), gate: fc.boolean(), crash: fc.boolean(), resume: fc.boolean(), delay: fc.integer({ min: 0, max: 3 }) }), { minLength: 10, maxLength: 120 }),
    (n, maxUnavailable, clusterMax, script) => {
      const names = Array.from({ length: n }, (_, i) => `m${i}`);
      const spec = rebootSpec({ prometheus: { url: 'http://p' } }, { maxUnavailable, maxFailures: 100 });
      const w = world(spec, names);
      const pending = new Map<string, { machine: string; at: number; fail: string }>();
      const rebooted = new Set<string>();
      let halted = false;
      for (const [t, s] of script.entries()) {
        const events: InstallResultEvent[] = [];
        for (const [id, p] of pending) {
          if (p.at > t) continue;
          pending.delete(id);
          events.push({ kind: 'installResult', machine: p.machine, commandId: id, outcome: p.fail === 'ok' ? 'installed' : 'failed', activeVersion: null, message: p.fail, reason: p.fail === 'ok' ? 'Rebooted' : p.fail });
        }
        const gates: RebootGates = { rollout: s.gate ? { reason: 'RebootHeld', message: 'alert' } : null, machines: new Map() };
        const input = { rollout: { name: 'rb', spec: w.spec, state: w.state }, machines: w.machines, budget: { maxUnavailable: clusterMax, unavailableNow: [] }, controlPlaneVersion: 'v1.31.0', now: t * 1000, events, gates, request: s.resume && w.state.phase === 'Paused' ? 'resume' as const : null };
        const r = planStep(input);
        // A restart before the state was saved: the same step again gives the same plan.
        if (s.crash) assert.deepEqual(planStep(input), r);
        const started = rebootsIn(r.actions);
        if (halted && input.request !== 'resume') assert.deepEqual(started, [], 'halted: no reboot');
        if (s.gate) assert.deepEqual(started, [], 'an alert holds every reboot');
        for (const a of r.actions) {
          if (a.kind !== 'reboot') continue;
          assert.ok(!rebooted.has(a.machine), `${a.machine} rebooted twice`);
          rebooted.add(a.machine);
          pending.set(a.commandId, { machine: a.machine, at: t + s.delay, fail: s.fail });
        }
        w.state = r.state;
        const inFlight = Object.values(w.state.machines).filter((m) => m.phase === 'Installing' || m.phase === 'Soaking').length;
        assert.ok(inFlight <= Math.min(maxUnavailable, clusterMax), `${inFlight} in flight`);
        halted = w.state.phase === 'Paused' && w.state.reason === 'RebootFailed';
        if (Object.values(w.state.machines).some((m) => m.reason === 'RebootFailed' && !m.counted)) assert.equal(w.state.phase, 'Paused');
      }
    },
  ), { numRuns: 300 });
});
