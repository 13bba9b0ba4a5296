/**
 * Benchmark (not a test): how long one step of the pure planners takes over a fleet of
 * 5,000 machines (target: under 20 ms), and the per-tick work their controllers do
 * around them.
 *
 *   node bench/planner.ts [--machines N] [--runs N] [--no-record]
 *
 * - rollout planner: `planStep` on one rollout over every machine, mid-way through
 *   (canaries and the first batch done, the next batch running: machines succeeded,
 *   skipped, failed, installing, soaking and waiting, the budget full), as a timer tick
 *   (no new results) and as the step one finished command triggers (one result).
 * - remediation planner: `planRemediation` over the fleet after an hour of breakages
 *   (faults pending and active, ladders running, machines needing a human or cooling
 *   down, attempts counted, a few agents silent).
 *   Both states are reached by driving the real planner against the simulated fleets
 *   the property tests use (coordinator/src/{rollout,remediation}/test-support.ts), so
 *   the inputs are ones the planners really produce.
 * - controllers: a whole timer tick of RolloutController and RemediationController on
 *   a real store (SQLite in memory) and fleet view holding that rollout, and the parts
 *   of a tick that grow with the fleet: parsing every stored rollout's JSON, building
 *   the planner's machine views, deriving every machine's faults (what a remediation
 *   tick would cost without skipping settled machines), and a remediation tick where a
 *   few machines' faults move (it writes their rows only).
 * Each case is warmed up, then timed `--runs` times on the same input; p50, p99 and max
 * are appended to bench/results.md (`--no-record` only prints them).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { percentile, record } from './lib/results.ts';
import { prng } from '../coordinator/src/testing/prng.ts';
import { newRolloutState } from '../coordinator/src/rollout/create.ts';
import { planStep } from '../coordinator/src/rollout/planner.ts';
import { validateRolloutSpec, type RolloutSpec } from '../coordinator/src/rollout/spec.ts';
import { SimFleet as RolloutFleet } from '../coordinator/src/rollout/test-support.ts';
import type { MachineView, PlanInput, RolloutState } from '../coordinator/src/rollout/types.ts';
import { planRemediation } from '../coordinator/src/remediation/policy.ts';
import { defaultRules } from '../coordinator/src/remediation/rules.ts';
import { SimFleet as RemediationFleet, type Breakage } from '../coordinator/src/remediation/test-support.ts';
import { DEFAULT_REMEDIATION_SETTINGS, type AgentCommandKind, type RemediationInput, type RemediationMachineView, type RemediationState } from '../coordinator/src/remediation/types.ts';
import { deriveFaults, DEFAULT_FAULT_SETTINGS, type FaultState } from '../coordinator/src/remediation/faults.ts';
import { CommandDispatcher } from '../coordinator/src/commands/dispatcher.ts';
import { SharedBudget } from '../coordinator/src/budget/shared-budget.ts';
import { RemediationController } from '../coordinator/src/controllers/remediation-controller.ts';
import { RolloutController } from '../coordinator/src/controllers/rollout-controller.ts';
import { FleetView } from '../coordinator/src/fleet/fleet-view.ts';
import { openStore } from '../coordinator/src/store/db.ts';
import { sampleReport } from '../coordinator/src/store/test-support.ts';
import { WriteBatcher } from '../coordinator/src/store/write-batcher.ts';
import { createLogger, versionInfo } from '@nodekeeper/common';

const { values } = parseArgs({ options: { machines: { type: 'string', default: '5000' }, runs: { type: 'string', default: '200' }, 'no-record': { type: 'boolean', default: false } } });
const N = Number(values.machines);
const RUNS = Number(values.runs);
if (!Number.isInteger(N) || N < 10) throw new RangeError(`--machines must be a whole number >= 10, got ${values.machines}`);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new RangeError(`--runs must be a whole number >= 1, got ${values.runs}`);
const WARM_UP = 20;
const fleetSize = N.toLocaleString('en-US');

/** Times `fn` RUNS times after a warm-up; returns "p50 .. ms, p99 .. ms, max .. ms (N runs)". */
function time(fn: () => unknown): string {
  for (let i = 0; i < WARM_UP; i++) fn();
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
  return `p50 ${f(percentile(ms, 50))} ms, p99 ${f(percentile(ms, 99))} ms, max ${f(Math.max(...ms))} ms (${RUNS} runs)`;
}

function report(benchmark: string, result: string): void {
  if (values['no-record']) console.log(`${benchmark}: ${result}`);
  else record(benchmark, result);
}

// --- Rollout -------------------------------------------------------------------------

const CP = 'v1.31.5';
const ROLLOUT_STEP_MS = 10_000;

/**
 * A rollout of containerd and kubelet over the whole fleet, driven with the simulated
 * fleet until the second wave is well under way. Returns the planner's input for the
 * next timer tick (no new results) and for the step one finished command triggers.
 */
function rolloutInputs(): { quiet: PlanInput; oneResult: PlanInput; state: RolloutState } {
  const rand = prng(20261124);
  const fleet = new RolloutFleet();
  for (let i = 0; i < N; i++) {
    // 5% are already at the target (skipped); the rest run the previous minor.
    const current = rand() < 0.05;
    fleet.add({
      name: `node-${String(i).padStart(5, '0')}`,
      labels: { pool: rand() < 0.8 ? 'web' : 'db' },
      zone: `zone-${'abc'[i % 3]}`,
      versions: current ? { containerd: '1.7.1', kubelet: 'v1.31.2', 'cni-plugins': '1.1.1' } : { containerd: '1.6.20~ds1', kubelet: '1.30.4', 'cni-plugins': '1.1.1' },
    });
  }
  const r = validateRolloutSpec({
    packages: [{ package: 'containerd', version: '1.7.1' }, { package: 'kubelet', version: '1.31.2' }],
    selector: {},
    strategy: { canary: { count: 5 }, soakSeconds: 60, batches: [10, 50, 100], maxUnavailable: '2%', maxFailures: '5%', onFailure: 'Pause' },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const spec: RolloutSpec = r.spec;
  const clusterMax = Math.ceil(N / 50);
  let state = newRolloutState({ name: 'bench', spec, machines: fleet.views(), controlPlaneVersion: CP, now: 0 });
  // A few agents of the last wave go silent (they count, but block nothing yet).
  for (const name of state.candidates.slice(-10)) fleet.setSilent(name, true, 0);
  const fail = () => rand() < 0.01;
  let now = 0;
  const settled = () => state.counters.succeeded + state.counters.failed + state.counters.skipped;
  while (settled() < 0.3 * N) {
    now += ROLLOUT_STEP_MS;
    fleet.tick(now);
    const out = planStep({ rollout: { name: 'bench', spec, state }, machines: fleet.views(), budget: { maxUnavailable: clusterMax, unavailableNow: [] }, controlPlaneVersion: CP, now, events: fleet.resultsFor(state) });
    fleet.apply(out.actions, now, { fail, durationMs: 10_000 + Math.floor(rand() * 30_000) });
    state = out.state;
    if (state.phase !== 'Canary' && state.phase !== 'Soaking' && state.phase !== 'Progressing') throw new Error(`rollout stopped: ${state.phase} ${state.reason}: ${state.message}`);
  }
  // One more tick's worth of time: results due then are what the next steps feed in.
  now += 1000;
  fleet.tick(now + ROLLOUT_STEP_MS);
  const due = fleet.resultsFor(state);
  const base = { rollout: { name: 'bench', spec, state }, machines: fleet.views(), budget: { maxUnavailable: clusterMax, unavailableNow: [] }, controlPlaneVersion: CP, now };
  return { quiet: { ...base, events: [] }, oneResult: { ...base, events: due.slice(0, 1) }, state };
}

// --- Remediation ---------------------------------------------------------------------

const REMEDIATION_STEP_MS = 30_000;
const CURES: readonly (AgentCommandKind | null)[] = ['service.restart', 'service.restart', 'config.restore', 'package.install', null];
const BREAKAGES: readonly Breakage[] = ['kubelet', 'runtime', 'network'];

/**
 * The default rules and settings over the fleet for an hour of 30 s ticks: about two
 * machines break per tick (some cured by a restart, some by a config restore or a
 * reinstall, some by nothing), some recover by themselves, a few agents go silent.
 */
function remediationInput(): RemediationInput & { machines: readonly RemediationMachineView[] } {
  const rand = prng(20261125);
  const fleet = new RemediationFleet(N);
  const rules = defaultRules();
  const settings = DEFAULT_REMEDIATION_SETTINGS;
  const budget = { maxUnavailable: Math.ceil(N / 50), unavailableNow: [] as string[] };
  let state: RemediationState | null = null;
  let now = 0;
  let results: ReturnType<RemediationFleet['tick']> = [];
  const input = () => ({ machines: fleet.views(now), rules, state, budget, settings, pause: { cluster: false, machines: [] }, dryRun: false, results, now });
  for (let i = 0; i < 120; i++) {
    now += REMEDIATION_STEP_MS;
    for (const m of fleet.machines.values()) {
      if (m.broken === null && rand() < 2 / N) fleet.break(m.name, BREAKAGES[Math.floor(rand() * 3)] ?? 'kubelet', CURES[Math.floor(rand() * CURES.length)] ?? null);
      else if (m.broken !== null && rand() < 0.01) fleet.break(m.name, null);
      if (rand() < (m.silent ? 0.2 : 0.5 / N)) fleet.setSilent(m.name, !m.silent, now);
      m.failing = rand() < 0.1;
    }
    results = fleet.tick(now);
    const out = planRemediation(input());
    state = out.state;
    fleet.apply(out.actions, now, REMEDIATION_STEP_MS * (1 + Math.floor(rand() * 3)));
  }
  now += REMEDIATION_STEP_MS;
  results = fleet.tick(now);
  return input();
}

// --- Run -----------------------------------------------------------------------------

const ro = rolloutInputs();
const c = ro.state.counters;
console.log(`rollout state: ${ro.state.phase}, wave ${ro.state.wave + 1}/${ro.state.waves.length}; ${c.succeeded} succeeded, ${c.skipped} skipped, ${c.failed} failed, ${c.inProgress} in progress, ${c.waiting} waiting; waiting reason: ${ro.state.waiting?.reason ?? 'none'}`);
report(`planner: rollout step (timer tick), ${fleetSize} machines`, time(() => planStep(ro.quiet)));
report(`planner: rollout step (one result), ${fleetSize} machines`, time(() => planStep(ro.oneResult)));

const rm = remediationInput();
const phases = new Map<string, number>();
for (const m of Object.values(rm.state?.machines ?? {})) phases.set(m.phase, (phases.get(m.phase) ?? 0) + 1);
const faulty = rm.machines.filter((v) => v.faults.some((f) => f.status !== 'Clear')).length;
console.log(`remediation state: ${[...phases].map(([p, n]) => `${n} ${p}`).join(', ')}; ${faulty} machines with a fault; storm ${rm.state?.storm.active ? rm.state.storm.reason : 'none'}`);
// A fresh views array each run: the policy indexes the views once per array (a quiet
// controller tick passes the same one again), so this is a step after some view changed.
// The state's index is kept per state object too (the controller's changedRecords()
// builds it when a step changes the state), so the same state object is realistic.
report(`planner: remediation step, ${fleetSize} machines`, time(() => planRemediation({ ...rm, machines: [...rm.machines] })));

// --- Controllers ---------------------------------------------------------------------

const HISTORY = 3;
const TICK_MS = 10_000;

/**
 * A coordinator's controllers with their real store (SQLite in memory), fleet view and
 * command dispatcher, wired as app.ts wires them, over the same fleet: the rollout
 * above in the store beside HISTORY finished rollouts of the same size (a store keeps
 * them), every machine reporting (1% with an unhealthy kubelet, the silent ones
 * silent), the cluster's package versions known. Ticked on a fake clock for three
 * minutes (the rollout starts what it may; remediation raises faults, and its ladders
 * wait because the rollout holds the shared budget; no agent answers), then frozen, so
 * a further tick has nothing new to do: the timer tick of a steady fleet, which is
 * checked to write nothing.
 */
function controllers(input: PlanInput) {
  let now = input.now;
  const clock = () => now;
  const log = createLogger({ name: 'bench', level: 'error' });
  const store = openStore(':memory:', { now: clock, log });
  const artifact = (n: number) => ({ url: `https://artifacts.example/${n}`, sha256: String(n).repeat(64).slice(0, 64), size: 1000 });
  store.putClusterPackageVersion([
    { name: 'containerd', version: '1.7.1', artifact: artifact(1) },
    { name: 'kubelet', version: '1.31.2', artifact: artifact(2) },
    { name: 'cni-plugins', version: '1.1.1', artifact: artifact(3) },
  ]);
  const { token } = store.createToken({ ttlMs: 3_600_000, maxUses: N + 1, description: 'bench' });
  const views: MachineView[] = input.machines instanceof Map ? [...input.machines.values()] : [...(input.machines as readonly MachineView[])];
  for (const v of views) store.enroll({ token, identity: { machineId: `mid-${v.name}`, hostname: v.name, addresses: ['10.0.0.1'], zone: v.zone, labels: { ...v.labels } }, agentVersion: '0.1.0' });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 10_000 });
  const link = { resync() {}, close() {}, sendCommand: () => true };
  const rand = prng(20261126);
  const silent = new Set(views.filter((v) => v.liveness.state === 'Unknown').map((v) => v.name));
  for (const v of views) {
    const r = sampleReport(v.name);
    const version = (pkg: string, source: string) => {
      const raw = v.versions[pkg] ?? null;
      return raw === null ? null : versionInfo(raw, source);
    };
    r.kubelet.version = version('kubelet', 'binary');
    r.runtime.version = version('containerd', 'cri');
    r.cni.version = version('cni-plugins', 'dpkg');
    if (rand() < 0.01) Object.assign(r.kubelet, { health: 'unhealthy', reason: 'HealthzRefused', message: 'connection refused' });
    fleet.attach(v.name, link, '0.1.0');
    fleet.report(v.name, true, r);
    if (silent.has(v.name)) fleet.detach(v.name, link);
  }
  const commands = new CommandDispatcher({ store, clock, log });
  commands.setTransport((machine) => fleet.isConnected(machine));
  // Stored before the controller starts, as a restarted coordinator finds them (the
  // controller reads the store once, then is the rollouts' only writer).
  const state = input.rollout.state;
  for (let i = 0; i < HISTORY; i++) {
    const done = Object.fromEntries(Object.entries(state.machines).map(([n, p]) => [n, { ...p, phase: 'Succeeded', reason: 'Healthy', message: 'healthy for 60s after the install', step: null, commandId: null }]));
    store.createRollout({ name: `earlier-${i}`, spec: input.rollout.spec, state: { ...state, phase: 'Completed', reason: 'Completed', machines: done, waiting: null } });
  }
  store.createRollout({ name: input.rollout.name, spec: input.rollout.spec, state });
  const budget = new SharedBudget('2%');
  const rollouts = new RolloutController({ store, fleet, commands, clock, log, budget }, { controlPlaneVersion: CP });
  rollouts.setArtifactBaseUrl(() => 'https://coordinator.example');
  const remediation = new RemediationController({ store, fleet, commands, clock, log, budget, artifactBaseUrl: () => 'https://coordinator.example' }, {});
  const tick = () => {
    for (const v of views) if (!silent.has(v.name)) fleet.touch(v.name);
    fleet.tick();
    rollouts.tick();
    remediation.tick();
  };
  for (let t = 0; t < 180_000; t += TICK_MS) {
    now += TICK_MS;
    tick();
  }
  // Frozen: a tick or two more settles what the last one started, then nothing changes.
  for (let i = 0; i < 3; i++) tick();
  const writes = store.counters.transactions;
  tick();
  if (store.counters.transactions !== writes) throw new Error('the controllers still write on a frozen clock: the ticks timed would not be quiet');
  return { store, fleet, rollouts, remediation, clock };
}

const ctl = controllers(ro.quiet);
const active = ctl.store.getRollout('bench')?.state as RolloutState;
const rem = ctl.remediation.summary();
const remWaiting = new Map<string, number>();
for (const m of Object.values((ctl.remediation.record().state as RemediationState | null)?.machines ?? {})) if (m.waiting !== null) remWaiting.set(m.waiting, (remWaiting.get(m.waiting) ?? 0) + 1);
const remRecord = ctl.remediation.record();
const remBytes = JSON.stringify(remRecord.state).length + JSON.stringify([...remRecord.faults]).length;
const stored = ctl.store.listRollouts();
const storedBytes = stored.reduce((n, r) => n + JSON.stringify(r.state).length, 0);
console.log(`controllers: rollout ${active.phase} (${active.counters.inProgress} in progress, waiting: ${active.waiting?.reason ?? 'none'}), ${stored.length} rollouts stored (${(storedBytes / 1e6).toFixed(1)} MB of state JSON); remediation: ${rem.active} running, ${rem.needsHuman} need a human, waiting: ${[...remWaiting].map(([w, n]) => `${n} ${w}`).join(', ') || 'none'}, guard ${rem.guard}; ${(remBytes / 1e6).toFixed(1)} MB remediation record (stored as rows per machine)`);
report(`controller: rollout tick, steady (planner included; ${stored.length} rollouts stored), ${fleetSize} machines`, time(() => ctl.rollouts.tick()));
// The controller parses the stored rollouts once, at start (what this line times), and
// then keeps them; held() is what remediation's tick asks of it.
report(`controller: parse every stored rollout once (${stored.length} rollouts), ${fleetSize} machines`, time(() => ctl.store.listRollouts()));
report(`controller: machines rollouts hold (held(), ${stored.length} rollouts stored), ${fleetSize} machines`, time(() => ctl.rollouts.held()));
report(`controller: rollout machine views from the fleet, ${fleetSize} machines`, time(() => ctl.rollouts.machineViews()));
report(`controller: remediation tick, steady (planner included), ${fleetSize} machines`, time(() => ctl.remediation.tick()));
// What a tick would cost if it derived every machine's faults (it skips settled machines whose input did not change).
const faultStates = ctl.remediation.record().faults as ReadonlyMap<string, FaultState>;
report(`controller: remediation fault derivation for every machine, ${fleetSize} machines`, time(() => {
  const t = ctl.clock();
  for (const m of ctl.fleet.values()) deriveFaults(faultStates.get(m.name) ?? null, { report: m.report, liveness: m.liveness }, t, DEFAULT_FAULT_SETTINGS);
}));
// A few machines' faults move between ticks: 5 kubelets flap (their reports applied in the
// timing too), taken in turn from a small set so the storm guard stays out of it. The tick
// writes those machines' rows only (the store is in memory: no fsync counted here).
const flapping = [...ctl.fleet.values()].slice(0, Math.max(5, Math.floor(N / 100))).map((m) => m.name);
let flaps = 0;
report(`controller: remediation tick, 5 machines' faults change (their reports included), ${fleetSize} machines`, time(() => {
  for (let i = 0; i < 5; i++) {
    const name = flapping[flaps++ % flapping.length] ?? '';
    const r = structuredClone(ctl.fleet.get(name)?.report);
    if (r == null) continue;
    Object.assign(r.kubelet, r.kubelet.health === 'healthy' ? { health: 'unhealthy', reason: 'HealthzRefused', message: 'connection refused' } : { health: 'healthy', reason: 'HealthzOk', message: 'ok' });
    ctl.fleet.report(name, true, r);
  }
  ctl.remediation.tick();
}));
