/**
 * Property tests of convergence: the pure convergence planner plus the pure rollout
 * planner (test-support.ts drives both as the controllers do) against a simulated fleet,
 * under random sequences of ClusterPackageVersion edits (versions, strategy, paused),
 * pins, faults (unhealthy machines, failed installs, silent agents) and coordinator
 * restarts. Throughout: never two live rollouts for one package, the shared budget
 * (architecture invariant 1) and the skew rule (7) hold. Once the faults clear and
 * nothing is paused, every selected machine reaches its desired version (its pin, else
 * the CPV's) within a bounded number of ticks, unless that target was refused (a
 * downgrade or a skew: Degraded, by design).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import semver from 'semver';
import { toSemver } from '@nodekeeper/common';
import { prng } from '../testing/prng.ts';
import { failedLeftovers, holdsOf, stillUnavailable } from '../rollout/holds.ts';
import { TERMINAL_PHASES, type MachineView, type PlanAction, type RolloutState } from '../rollout/types.ts';
import type { UpdateStrategyInput } from '../model/packages.ts';
import { SimCoordinator } from './test-support.ts';
import { FINAL_REFUSALS } from './types.ts';

const KUBELET = ['1.31.0', '1.31.1', '1.31.2', '1.31.3', '1.31.4', '1.32.0'];
const CONTAINERD = ['1.7.1', '1.7.2', '1.7.3'];
const CP = 'v1.31.5';
const STEP = 10_000;
const SETTLE_TICKS = 1500;

const strategy = fc.record({
  canary: fc.constantFrom({ count: 0 }, { count: 1 }),
  soakSeconds: fc.constantFrom(0, 10, 30),
  maxUnavailable: fc.integer({ min: 1, max: 3 }),
  onFailure: fc.constantFrom('Pause' as const, 'Rollback' as const),
  onSupersede: fc.constantFrom('Keep' as const, 'Rollback' as const),
  selector: fc.constantFrom(undefined, { matchLabels: { pool: 'web' } }),
}).map((s) => {
  const { selector, ...rest } = s;
  return (selector === undefined ? rest : { ...rest, selector }) as UpdateStrategyInput;
});

const scenario = fc.record({
  fleet: fc.array(fc.record({ pool: fc.constantFrom('web', 'db'), kubelet: fc.constantFrom('1.31.0', '1.31.1'), containerd: fc.constantFrom('1.7.1', '1.7.2') }), { minLength: 1, maxLength: 12 }),
  clusterMax: fc.integer({ min: 1, max: 4 }),
  strategies: fc.array(strategy, { minLength: 1, maxLength: 3 }),
  /** containerd converges too (its own strategy: the default). */
  twoPackages: fc.boolean(),
  faultSteps: fc.integer({ min: 0, max: 150 }),
  seed: fc.integer(),
  rates: fc.record({
    edit: fc.constantFrom(0.02, 0.08),
    pause: fc.constantFrom(0, 0.03),
    pin: fc.constantFrom(0, 0.02),
    fail: fc.constantFrom(0, 0.1, 0.3),
    flap: fc.constantFrom(0, 0.02),
    silence: fc.constantFrom(0, 0.01),
    crash: fc.constantFrom(0, 0.05),
  }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

const coverage = new Map<string, number>();
const cover = (k: string) => coverage.set(k, (coverage.get(k) ?? 0) + 1);

/** Unavailable machines by the budget's definition, written apart from the planners'. */
function unavailable(states: ReadonlyMap<string, RolloutState>, views: ReadonlyMap<string, MachineView>): Set<string> {
  const out = new Set<string>();
  for (const state of states.values()) {
    if (TERMINAL_PHASES.has(state.phase)) {
      for (const m of [...holdsOf(state), ...stillUnavailable(failedLeftovers(state), views)]) out.add(m);
      continue;
    }
    for (const m of SimCoordinator.unavailable(state, views)) out.add(m);
  }
  return out;
}

function simulate(s: Scenario): void {
  const rand = prng(s.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const c = new SimCoordinator({ retryBaseMs: 30_000, retryMaxMs: 120_000 });
  c.controlPlane = CP;
  c.clusterMax = s.clusterMax;
  s.fleet.forEach((m, i) => c.fleet.add({ name: `n${i}`, labels: { pool: m.pool }, zone: null, versions: { kubelet: m.kubelet, containerd: m.containerd } }));
  let spec = { strategy: s.strategies[0]!, kubelet: '1.31.2', containerd: '1.7.2', paused: false };
  const applyCpv = () => c.apply({
    updateStrategy: { ...spec.strategy, ...(spec.paused ? { paused: true } : {}) },
    packages: [{ name: 'kubelet', version: spec.kubelet }, ...(s.twoPackages ? [{ name: 'containerd', version: spec.containerd }] : [])],
  });
  applyCpv();

  const check = (name: string, before: RolloutState, after: RolloutState, actions: readonly PlanAction[]) => {
    const views = new Map(c.fleet.views().map((v) => [v.name, v]));
    const states = new Map([...c.rollouts.values()].map((r) => [r.name, r.state]));
    const was = unavailable(states, views);
    states.set(name, after);
    const starts = actions.filter((a) => (a.kind === 'install' || a.kind === 'rollback') && !was.has(a.machine));
    if (starts.length > 0) {
      const total = unavailable(states, views).size;
      assert.ok(total <= s.clusterMax, `t=${c.now}: ${name} starts ${starts.map((a) => a.kind === 'install' || a.kind === 'rollback' ? a.machine : '').join(',')}: ${total} unavailable > budget ${s.clusterMax}`);
      cover('budget checked on a start');
    }
    for (const a of actions) {
      if (a.kind !== 'install' || a.package !== 'kubelet') continue;
      const k = toSemver(a.version)!;
      const cp = toSemver(c.controlPlane ?? CP)!;
      assert.ok(semver.minor(k) <= semver.minor(cp) && semver.minor(cp) - semver.minor(k) <= 3, `kubelet ${a.version} against control plane ${c.controlPlane}`);
    }
    void before;
  };

  const liveness = () => {
    const perPackage = new Map<string, string[]>();
    for (const r of c.live()) for (const p of r.spec.packages) perPackage.set(p.package, [...(perPackage.get(p.package) ?? []), r.name]);
    for (const [p, names] of perPackage) assert.ok(names.length <= 1, `t=${c.now}: ${names.length} live rollouts of ${p}: ${names.join(', ')}`);
  };

  for (let i = 0; i < s.faultSteps; i++) {
    if (rand() < s.rates.edit) {
      const what = rand();
      if (what < 0.5) spec = { ...spec, kubelet: pick(KUBELET) };
      else if (what < 0.7 && s.twoPackages) spec = { ...spec, containerd: pick(CONTAINERD) };
      else spec = { ...spec, strategy: pick(s.strategies) };
      applyCpv();
      cover('edit');
    }
    if (rand() < s.rates.pause) {
      spec = { ...spec, paused: !spec.paused };
      applyCpv();
      cover(spec.paused ? 'paused' : 'unpaused');
    }
    if (rand() < s.rates.pin) {
      const m = pick([...c.fleet.machines.keys()]);
      if (rand() < 0.3) c.pins.delete(m);
      else c.pins.set(m, { kubelet: pick(KUBELET.slice(0, 5)) });
      cover('pin');
    }
    for (const m of c.fleet.machines.values()) {
      if (rand() < s.rates.silence) c.fleet.setSilent(m.name, !m.silent, c.now);
      else if (m.silent && rand() < 0.2) c.fleet.setSilent(m.name, false, c.now);
      if (rand() < s.rates.flap) c.fleet.setHealthy(m.name, false, c.now);
      else if (!m.healthy && rand() < 0.5) c.fleet.setHealthy(m.name, true, c.now);
    }
    const crashAt = rand() < s.rates.crash ? Math.floor(rand() * 3) : Infinity;
    if (crashAt !== Infinity) cover('restart');
    c.tick(STEP, { fail: () => rand() < s.rates.fail, crashAt, check });
    liveness();
  }

  // The faults clear: machines heard from and healthy, nothing paused, and the operator
  // resumes what a failure paused (as after any rollout's pause).
  for (const m of c.fleet.machines.values()) {
    c.fleet.setSilent(m.name, false, c.now);
    c.fleet.setHealthy(m.name, true, c.now);
  }
  spec = { ...spec, paused: false };
  applyCpv();
  const refused = (pkg: string, track: string, key: string) => c.refusals.some((r) => r.package === pkg && r.track === track && r.key === key && FINAL_REFUSALS.has(r.code));
  const pending = () => {
    const out: string[] = [];
    for (const p of c.cpv.packages) {
      for (const m of c.fleet.machines.values()) {
        const pin = c.pins.get(m.name)?.[p.name];
        const selected = spec.strategy.selector === undefined || m.labels['pool'] === 'web';
        if (pin === undefined && !selected) continue;
        const want = pin ?? p.version;
        if (pin !== undefined && pin !== p.version ? refused(p.name, m.name, pin) : refused(p.name, '', `g${c.cpv.generation}`)) continue;
        if (m.versions[p.name] !== want) out.push(`${m.name} ${p.name}=${m.versions[p.name]} want ${want}`);
      }
    }
    return out;
  };
  let ticks = 0;
  for (; ticks < SETTLE_TICKS; ticks++) {
    if (pending().length === 0 && c.live().length === 0) break;
    for (const r of c.live()) {
      const row = c.managed.find((x) => x.name === r.name);
      if (r.state.phase === 'Paused' && row?.pausedByUs !== true) c.step(r.name, 'resume');
    }
    c.tick(STEP, { check });
    liveness();
  }
  assert.deepEqual(pending(), [], `converged within ${SETTLE_TICKS} ticks after the faults cleared (${[...c.rollouts.keys()].join(', ')})`);
  assert.equal(c.live().length, 0, 'and every rollout finished');
  cover(c.refusals.length > 0 ? 'some target refused' : 'nothing refused');
  cover(`settled in ${ticks < 50 ? '<50' : ticks < 200 ? '<200' : '>=200'} ticks`);
  if (c.events.some((e) => e.reason === 'RolloutSuperseded')) cover('superseded');
  if ([...c.rollouts.keys()].some((n) => n.startsWith('pin-'))) cover('pin rollout');
  if ([...c.rollouts.keys()].some((n) => /-g\d+-\d+$/.test(n))) cover('follow-up rollout');
}

const PROPERTY_SEED = Number(process.env.NK_PROPERTY_SEED ?? 20261203);

test('the fleet converges to the last desired state once faults clear; budget, skew and one live rollout per package hold throughout', (t) => {
  coverage.clear();
  fc.assert(fc.property(scenario, (s) => simulate(s)), { numRuns: Number(process.env.NK_PROPERTY_RUNS ?? 60), seed: PROPERTY_SEED });
  t.diagnostic([...coverage].sort().map(([k, n]) => `${k}: ${n}`).join('; '));
  for (const k of ['budget checked on a start', 'edit', 'paused', 'pin', 'restart', 'superseded', 'pin rollout', 'some target refused', 'follow-up rollout']) {
    assert.ok((coverage.get(k) ?? 0) > 0, `the runs covered: ${k}`);
  }
});
