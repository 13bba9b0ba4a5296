/**
 * Benchmark (not a test): the CPU the remediation and convergence controllers' ticks cost
 * the coordinator per second over an idle fleet (every machine connected, Ready, healthy
 * and at its desired versions, a heartbeat every 10 s, 1 % of probes changing a report
 * field that moves no fault, as the fleet simulator's default profile does), at 5 k, 10 k
 * and 19 k machines.
 *
 *   node bench/controller-tick.ts [--sizes 5000,10000,19000] [--seconds 60] [--note TEXT] [--no-record]
 *
 * --note adds TEXT to the row's benchmark name (say, which code ran); the load average
 * at the start and the end of each size's run is in the row (the box may be shared).
 *
 * The fleet is built as the coordinator builds it (app.ts): an SQLite store (in memory)
 * with N enrolled machines, the ClusterPackageVersion with an updateStrategy (so
 * convergence plans), a FleetView holding each machine's full report, the command
 * dispatcher, the shared budget, the rollout, remediation and convergence controllers,
 * and a simulated clock stepped a second at a time (app.ts ticks every second). CPU is
 * the process's own (process.cpuUsage) around each controller's tick only (the rollout
 * controller's, with no rollout, is shown beside them); the fleet view's tick and the
 * heartbeats are done between them, untimed (fleet-tick.ts measures those). One row per
 * size is appended to bench/results.md.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger, versionInfo } from '@nodekeeper/common';
import { SharedBudget } from '../coordinator/src/budget/shared-budget.ts';
import { CommandDispatcher } from '../coordinator/src/commands/dispatcher.ts';
import { ConvergenceController } from '../coordinator/src/convergence/controller.ts';
import { RemediationController } from '../coordinator/src/controllers/remediation-controller.ts';
import { RolloutController } from '../coordinator/src/controllers/rollout-controller.ts';
import { FleetView, type AgentLink } from '../coordinator/src/fleet/fleet-view.ts';
import { openStore } from '../coordinator/src/store/db.ts';
import { sampleReport } from '../coordinator/src/store/test-support.ts';
import { prng } from '../coordinator/src/testing/prng.ts';
import { WriteBatcher } from '../coordinator/src/store/write-batcher.ts';
import { percentile, record } from './lib/results.ts';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '5000,10000,19000' }, seconds: { type: 'string', default: '60' }, note: { type: 'string', default: '' }, 'no-record': { type: 'boolean', default: false } } });
const SIZES = values.sizes.split(',').map(Number);
const SECONDS = Number(values.seconds);
if (SIZES.some((n) => !Number.isInteger(n) || n < 10)) throw new RangeError(`--sizes must be whole numbers >= 10, got ${values.sizes}`);
if (!Number.isInteger(SECONDS) || SECONDS < 10) throw new RangeError(`--seconds must be a whole number >= 10, got ${values.seconds}`);
const HEARTBEAT_S = 10;
/** Share of probes (one per heartbeat) that change a significant field: the simulator's default changeRate. */
const CHANGE_RATE = 0.01;
const CP = 'v1.31.5';
const log = createLogger({ name: 'bench', level: 'silent' });
const link: AgentLink = { resync: () => {}, close: () => {}, sendCommand: () => true };

/** CPU microseconds (user + system) spent in fn. */
function cpu(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const d = process.cpuUsage(before);
  return d.user + d.system;
}

const ms = (us: number) => (us / 1000).toFixed(us < 1000 ? 3 : 2);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const n of SIZES) {
  const loadBefore = loadavg()[0] ?? 0;
  const now = { t: 1_000_000 };
  const clock = () => now.t;
  const store = openStore(':memory:', { now: clock, log });
  const artifact = (i: number) => ({ url: `https://artifacts.example/${i}`, sha256: String(i).repeat(64).slice(0, 64), size: 1000 });
  store.putClusterPackageVersion(
    [{ name: 'containerd', version: '1.7.1', artifact: artifact(1) }, { name: 'kubelet', version: '1.31.2', artifact: artifact(2) }, { name: 'cni-plugins', version: '1.1.1', artifact: artifact(3) }],
    { maxUnavailable: '2%', batches: [10, 50, 100] },
  );
  const { token } = store.createToken({ ttlMs: 3_600_000, maxUses: n, description: '' });
  const names = Array.from({ length: n }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
  for (const [i, name] of names.entries()) {
    store.enroll({ token, identity: { machineId: `mid-${name}`, hostname: name, addresses: ['10.0.0.1'], zone: `zone-${'abc'[i % 3]}`, labels: { pool: i % 5 === 0 ? 'db' : 'web' } }, agentVersion: '0.1.0' });
  }
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 15_000 });
  const reportOf = (name: string) => {
    const r = sampleReport(name);
    r.kubelet.version = versionInfo('1.31.2', 'binary');
    r.runtime.version = versionInfo('1.7.1', 'cri');
    r.cni.version = versionInfo('1.1.1', 'dpkg');
    return r;
  };
  for (const name of names) {
    fleet.attach(name, link, '0.1.0');
    fleet.report(name, true, reportOf(name));
  }
  fleet.tick();
  batcher.flush();
  const commands = new CommandDispatcher({ store, clock, log });
  commands.setTransport((machine) => fleet.isConnected(machine));
  const budget = new SharedBudget('2%');
  const rollouts = new RolloutController({ store, fleet, commands, clock, log, budget }, { controlPlaneVersion: CP });
  rollouts.setArtifactBaseUrl(() => 'https://coordinator.example');
  const remediation = new RemediationController({ store, fleet, commands, clock, log, budget, artifactBaseUrl: () => 'https://coordinator.example' }, {});
  const convergence = new ConvergenceController({ store, fleet, rollouts, clock, log });

  const rand = prng(20261204);
  const rem: number[] = [];
  const conv: number[] = [];
  const roll: number[] = [];
  let reports = 0;
  /** One second: heartbeats (and the reports 1 % of probes send), the fleet view's tick, then the controllers as app.ts orders them. */
  const second = (s: number, timed: boolean) => {
    now.t += 1000;
    for (let i = s % HEARTBEAT_S; i < n; i += HEARTBEAT_S) {
      const name = names[i] as string;
      fleet.touch(name);
      if (rand() < CHANGE_RATE) {
        const r = reportOf(name);
        r.runtime.message = `probe ${s}: ${Math.floor(rand() * 40)} containers`;
        fleet.report(name, false, { runtime: r.runtime });
        reports++;
      }
    }
    fleet.tick();
    const o = cpu(() => rollouts.tick());
    const c = cpu(() => convergence.tick());
    const r = cpu(() => remediation.tick());
    if (timed) {
      roll.push(o);
      conv.push(c);
      rem.push(r);
    }
  };
  // Warm-up: the first ticks derive every machine once and store their fault states.
  for (let s = 1; s <= 10; s++) second(s, false);
  batcher.flush();
  const writes = store.counters.transactions;
  reports = 0;
  for (let s = 11; s <= 10 + SECONDS; s++) second(s, true);
  if (store.counters.transactions !== writes) throw new Error('the controllers wrote during the idle run: the fleet was not idle');
  const cpvState = (convergence.cpvStatus() as { converged: string }).converged;
  if (cpvState !== 'converged') throw new Error(`convergence is ${cpvState}, not converged: the fleet was not idle`);
  if (remediation.summary().active > 0) throw new Error('a remediation ran: the fleet was not idle');
  store.close();

  const result =
    `N=${n}, idle (all Ready, healthy, at the desired versions; heartbeat ${HEARTBEAT_S} s, ${(reports / SECONDS).toFixed(0)} reports a second moving no fault), ${SECONDS} ticks a second apart: ` +
    `remediation tick ${ms(mean(rem))} ms CPU per second (p99 ${ms(percentile(rem, 99))} ms); ` +
    `convergence tick ${ms(mean(conv))} ms (p99 ${ms(percentile(conv, 99))} ms); together ${ms(mean(rem) + mean(conv))} ms, ${((mean(rem) + mean(conv)) / n * 1000).toFixed(2)} ns per machine a second; ` +
    `beside them, the rollout tick (no rollout) ${ms(mean(roll))} ms; load average ${loadBefore.toFixed(1)} at the start, ${(loadavg()[0] ?? 0).toFixed(1)} at the end`;
  if (values['no-record']) console.log(`controller ticks: ${result}`);
  else record(`controller ticks (remediation, convergence)${values.note === '' ? '' : `, ${values.note}`}`, result);
}
