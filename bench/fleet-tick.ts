/**
 * Benchmark (not a test): the CPU that judging liveness and conditions costs the
 * coordinator per second over an idle fleet (every machine connected and Ready, a
 * heartbeat every 10 s, nothing changing), old versus new:
 * - full scan: the old FleetView.tick(), every machine judged every second, as kept in
 *   the property test's reference (coordinator/src/fleet/test-support.ts, `refTick`);
 * - deadline queue: the real FleetView.tick(), which judges only machines whose deadline
 *   has passed, plus what each heartbeat now costs it (touch() moves the machine's
 *   deadline in the heap), shown apart.
 *
 *   node bench/fleet-tick.ts [--sizes 5000,10000,19000] [--seconds 60] [--no-record]
 *
 * The fleet is real: an SQLite store (in memory) with N enrolled machines, a FleetView
 * holding each one's full report, and a simulated clock stepped a second at a time (one
 * tick a second, as app.ts runs it). CPU is the process's own (process.cpuUsage) around
 * the timed calls only; one row per size is appended to bench/results.md.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '@nodekeeper/common';
import { FleetView, type AgentLink } from '../coordinator/src/fleet/fleet-view.ts';
import { contactOnMessage } from '../coordinator/src/fleet/liveness.ts';
import { refTick, type RefMachine } from '../coordinator/src/fleet/test-support.ts';
import { openStore } from '../coordinator/src/store/db.ts';
import { sampleReport } from '../coordinator/src/store/test-support.ts';
import { WriteBatcher } from '../coordinator/src/store/write-batcher.ts';
import { percentile, record } from './lib/results.ts';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '5000,10000,19000' }, seconds: { type: 'string', default: '60' }, 'no-record': { type: 'boolean', default: false } } });
const SIZES = values.sizes.split(',').map(Number);
const SECONDS = Number(values.seconds);
if (SIZES.some((n) => !Number.isInteger(n) || n < 10)) throw new RangeError(`--sizes must be whole numbers >= 10, got ${values.sizes}`);
if (!Number.isInteger(SECONDS) || SECONDS < 10) throw new RangeError(`--seconds must be a whole number >= 10, got ${values.seconds}`);
const HEARTBEAT_S = 10;
const cfg = { graceMs: 40_000, recoverMs: 15_000 };
const log = createLogger({ name: 'bench', level: 'silent' });
const link: AgentLink = { resync: () => {}, close: () => {}, sendCommand: () => true };

/** CPU microseconds (user + system) spent in fn. */
function cpu(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const d = process.cpuUsage(before);
  return d.user + d.system;
}

const ms = (us: number) => (us / 1000).toFixed(us < 1000 ? 3 : 1);

for (const n of SIZES) {
  const now = { t: 1_000_000 };
  const clock = () => now.t;
  const store = openStore(':memory:', { now: clock, log });
  const { token } = store.createToken({ ttlMs: 3_600_000, maxUses: n, description: '' });
  const names = Array.from({ length: n }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
  for (const name of names) store.enroll({ token, identity: { machineId: `mid-${name}`, hostname: name, addresses: ['10.0.0.1'], zone: 'z', labels: {} }, agentVersion: '0.1.0' });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log, autoStart: false });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: cfg.graceMs, livenessRecoverMs: cfg.recoverMs });
  const base = sampleReport('x');
  for (const name of names) {
    fleet.attach(name, link, '0.1.0');
    fleet.report(name, true, { ...base, identity: { ...base.identity, hostname: name, machineId: `mid-${name}` } });
  }
  fleet.tick();
  batcher.flush();
  const notReady = fleet.list().filter((m) => m.liveness.state !== 'Ready').length;
  if (notReady > 0) throw new Error(`${notReady} machines not Ready before the run`);

  // The old full scan, from the same starting point.
  const ref = new Map<string, RefMachine>(fleet.list().map((m) => [m.name, { report: m.report, liveness: m.liveness, conditions: m.conditions, lastMessageAt: now.t, contactSince: now.t, heardSinceStart: true, agentVersion: m.agentVersion, connected: true }]));
  const start = now.t;
  const scan: number[] = [];
  let refNow: ReadonlyMap<string, RefMachine> = ref;
  for (let s = 1; s <= SECONDS; s += 1) {
    const t = start + s * 1000;
    const beating = new Map(refNow);
    for (let i = s % HEARTBEAT_S; i < n; i += HEARTBEAT_S) {
      const name = names[i] as string;
      const m = beating.get(name) as RefMachine;
      beating.set(name, { ...m, ...contactOnMessage(m, t, cfg) });
    }
    let changed = 0;
    scan.push(cpu(() => {
      const step = refTick(beating, t, cfg);
      refNow = step.ref;
      changed = step.changed.length;
    }));
    if (changed > 0) throw new Error(`full scan: ${changed} machines changed in an idle fleet`);
  }

  // The deadline queue: the real FleetView.
  const queue: number[] = [];
  const beats: number[] = [];
  let changes = 0;
  fleet.onChanged(() => (changes += 1));
  for (let s = 1; s <= SECONDS; s += 1) {
    now.t = start + s * 1000;
    beats.push(cpu(() => {
      for (let i = s % HEARTBEAT_S; i < n; i += HEARTBEAT_S) fleet.touch(names[i] as string);
    }));
    queue.push(cpu(() => fleet.tick()));
  }
  if (changes > 0) throw new Error(`deadline queue: ${changes} machines changed in an idle fleet`);
  store.close();

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const result =
    `N=${n}, idle (all Ready, heartbeat ${HEARTBEAT_S} s), ${SECONDS} ticks a second apart: ` +
    `full scan ${ms(mean(scan))} ms CPU per second (p99 ${ms(percentile(scan, 99))} ms); ` +
    `deadline queue tick ${ms(mean(queue))} ms (p99 ${ms(percentile(queue, 99))} ms), plus ${ms(mean(beats))} ms for the ${Math.ceil(n / HEARTBEAT_S)} heartbeats a second (touch, heap move); ` +
    `tick ${(mean(scan) / Math.max(mean(queue), 1)).toFixed(0)}x less CPU, tick + heartbeats ${(mean(scan) / Math.max(mean(queue) + mean(beats), 1)).toFixed(1)}x less`;
  if (values['no-record']) console.log(`fleet tick: ${result}`);
  else record('fleet tick (liveness and conditions)', result);
}
