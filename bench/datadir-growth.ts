/**
 * Benchmark (not a test): how the coordinator's data dir grows with a fleet, and where
 * retention holds it.
 *
 *   node bench/datadir-growth.ts [--machines 5000] [--days 35] [--artifact-mb 30]
 *                                [--seed 1] [--dir DIR] [--keep] [--no-record]
 *
 * The coordinator's own parts, on a fresh data dir laid out by `paths()` (config.ts),
 * each on a simulated clock (the injectable clock of app.ts): the store opened as the
 * coordinator opens it (openStore: WAL, synchronous=FULL, every migration), the
 * FleetView and WriteBatcher that decide what reaches SQLite, the CommandDispatcher and
 * RolloutController that write commands, rollouts and their events, the ArtifactStore
 * that holds pushed artifacts, and the RetentionController with the default limits
 * (docs/coordinator.md, "Retention"). Only the agents are simulated, in steps of one
 * simulated hour:
 * - every machine's heartbeats (its last-seen time) each step, and a full report (the
 *   realistic ~2.5 KB report of bench/sim/sim-agent.ts) whenever its health, a version
 *   or its connection changed, and once a day anyway with its small changes (a runtime
 *   message, uptime, memory) folded in;
 * - 2 % of machines a day have a kubelet incident (unhealthy for an hour), 1 % a day
 *   reboot (silent for an hour: Unknown, then Ready again), 0.2 % of machines flap (kubelet
 *   health toggling every hour, all the time);
 * - a kubelet patch rollout over the whole fleet once a week (the first on day 2): its
 *   artifact pushed (`--artifact-mb` of incompressible bytes), the real controller
 *   batching it, each install answered with the agent's progress and result frames in
 *   the step it was sent (1 % fail and roll back), the new version in the next report;
 *   an operator who resumes a paused rollout within the hour (`nkctl rollout resume`).
 * Incidents and flapping strike machines a rollout is installing or soaking too: such a
 * machine fails its soak, and once its rollout has finished it is released (only counted
 * against the budget while unhealthy; docs/rollouts.md, "Holds"), so later rollouts go on.
 * What an hour's step leaves out is what production does in place: the agent's 5-minute
 * full reports and the once-a-minute last-seen times rewrite the machine's own row,
 * and a message-only change (same health, same version) adds no observation; none of it
 * adds a row or a byte to a table. It does fill the WAL, so the WAL is measured apart at
 * the end, at production cadence: five simulated minutes of a flush a second, with
 * heartbeats every 10 s (a sixtieth of the fleet's last-seen times in each flush) and
 * full reports every 5 minutes.
 * One retention round per step (production: one per 10 min; a round prunes up to
 * 100,000 rows per kind, far more than an hour brings here).
 * Measured at the end of each simulated day: the SQLite file, its WAL, the artifacts, and
 * per table its rows and bytes (tables and their indexes, from the dbstat virtual table;
 * a SQLite built without it gives rows only). Retention reaches steady state after its longest limit (30 days of
 * events), so the default span is 35 days. The data dir is made under /dev/shm when there
 * is one (`--dir` to choose): sizes do not depend on the file system, and fsyncs on a
 * shared disk would only slow the simulation.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { createLogger } from '@nodekeeper/common';
import type { Command, NodeReport } from '@nodekeeper/protocol';
import { record } from './lib/results.ts';
import { initialReport } from './sim/sim-agent.ts';
import { ArtifactStore } from '../coordinator/src/artifacts/artifact-store.ts';
import { CommandDispatcher } from '../coordinator/src/commands/dispatcher.ts';
import { defaults, paths } from '../coordinator/src/config.ts';
import { RetentionController } from '../coordinator/src/controllers/retention-controller.ts';
import { SharedBudget } from '../coordinator/src/budget/shared-budget.ts';
import { RolloutController } from '../coordinator/src/controllers/rollout-controller.ts';
import { FleetView, type AgentLink } from '../coordinator/src/fleet/fleet-view.ts';
import { ROLLOUT_API_VERSION } from '../coordinator/src/rollout/spec.ts';
import { openStore } from '../coordinator/src/store/db.ts';
import { WriteBatcher } from '../coordinator/src/store/write-batcher.ts';
import { prng } from '../coordinator/src/testing/prng.ts';

const { values } = parseArgs({
  options: {
    machines: { type: 'string', default: '5000' },
    days: { type: 'string', default: '35' },
    'artifact-mb': { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
  },
});
const whole = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be a whole number >= ${min}, got ${v}`);
  return n;
};
const N = whole('machines', values.machines, 10);
const DAYS = whole('days', values.days, 1);
const ARTIFACT_MB = whole('artifact-mb', values['artifact-mb'], 0);
const random = prng(whole('seed', values.seed, 0));

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const STEP = 60 * MINUTE;
const STEPS_PER_DAY = DAY / STEP;
const INCIDENT_PER_DAY = 0.02;
const REBOOT_PER_DAY = 0.01;
const FLAPPING_SHARE = 0.002;
const INSTALL_FAIL_RATE = 0.01;
const ROLLOUT_EVERY_DAYS = 7;
const CONTROL_PLANE = 'v1.36.3';

const log = createLogger({ name: 'datadir-growth', level: 'silent' });
const root = mkdtempSync(path.join(values.dir ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()), 'nk-datadir-'));
const config = { ...defaults, dataDir: path.join(root, 'data') };
const p = paths(config);
let now = Date.UTC(2026, 0, 5); // the simulated clock (app.ts takes one: `clock`)
const clock = () => now;

// --- the coordinator's parts, wired as app.ts wires them
const artifacts = new ArtifactStore(p.artifacts); // also makes the data dir
const store = openStore(p.db, { now: clock, log });
const batcher = new WriteBatcher(store, { intervalMs: config.flushIntervalMs, log, autoStart: false });
const { token } = store.createToken({ ttlMs: DAY, maxUses: N, description: 'datadir-growth' });

interface Sim {
  readonly name: string;
  report: NodeReport;
  flapping: boolean;
  /** Silent (rebooting) until this time. */
  offUntil: number;
  link: AgentLink | null;
  /** Something significant changed since the last report sent. */
  dirty: boolean;
}
const sent: Array<{ machine: string; command: Command }> = [];
const sims: Sim[] = [];
const names = Array.from({ length: N }, (_, i) => `node-${String(i).padStart(5, '0')}`);
for (const name of names) {
  const report = initialReport({ name, machineId: randomBytes(16).toString('hex'), credential: '', zone: `zone-${sims.length % 3}`, kubeletVersion: 'v1.36.0' }, new Date(now));
  store.enroll({ token, identity: report.identity, agentVersion: '0.2.0' });
  sims.push({ name, report, flapping: random() < FLAPPING_SHARE, offUntil: 0, link: null, dirty: true });
}
const byName = new Map(sims.map((s) => [s.name, s]));
const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: config.livenessGraceMs, livenessRecoverMs: config.livenessRecoverMs });
const commands = new CommandDispatcher({ store, clock, log });
commands.setTransport((machine, command) => fleet.deliver(machine, command));
const budget = new SharedBudget(config.maxUnavailable);
const rollouts = new RolloutController({ store, fleet, commands, clock, log, budget }, { controlPlaneVersion: CONTROL_PLANE });
rollouts.setArtifactBaseUrl(() => 'https://coordinator.example:7443');
// A step's install results all arrive at the same simulated instant. Stepping a rollout
// after each (as the controller does when they come one by one) would rewrite its state
// row, 1.4 MB at 5,000 machines, thousands of times an hour here; while they are handed
// in, the budget reports a hold (its results then wait for the tick, one step
// each). Rows and events are the same; only the number of rewrites differs.
let answering = false;
budget.setPartitionSource(() => (answering ? { reason: 'ResultsArriving', message: 'the benchmark hands in a step of results' } : null));
const retention = new RetentionController({ store, log, pruned: () => {} }, config.retention);

const linkFor = (name: string): AgentLink => ({ resync() {}, close() {}, sendCommand: (command) => (sent.push({ machine: name, command }), true) });

function setKubelet(s: Sim, healthy: boolean): void {
  const k = s.report.kubelet;
  if ((k.health === 'healthy') === healthy) return;
  s.report = { ...s.report, kubelet: healthy ? { ...k, health: 'healthy', reason: 'HealthzOk', message: 'ok' } : { ...k, health: 'unhealthy', reason: 'HealthzFailed', message: 'GET /healthz: 500 [-]syncloop failed' } };
  s.dirty = true;
}

/** One agent's hour: its probes' outcome, its heartbeats, and its full report when due (nothing while rebooting). */
function agentStep(s: Sim, index: number, step: number): void {
  if (s.offUntil > now) return;
  if (s.link === null) {
    s.link = linkFor(s.name);
    s.report = { ...s.report, host: { ...s.report.host, uptimeSeconds: 600 } };
    fleet.attach(s.name, s.link, '0.2.0');
    commands.machineConnected(s.name);
    s.dirty = true;
  }
  if (random() < REBOOT_PER_DAY / STEPS_PER_DAY) {
    s.offUntil = now + STEP;
    fleet.detach(s.name, s.link);
    s.link = null;
    return;
  }
  const incident = random() < INCIDENT_PER_DAY / STEPS_PER_DAY;
  if (s.flapping) setKubelet(s, step % 2 === 0);
  else setKubelet(s, !incident);
  // 1 % of 10-second probes see a significant change: in an hour, nearly every machine.
  s.report = { ...s.report, runtime: { ...s.report.runtime, message: `${Math.floor(random() * 40)} containers` } };
  fleet.touch(s.name);
  if (!s.dirty && index % STEPS_PER_DAY !== step % STEPS_PER_DAY) return;
  const at = new Date(now).toISOString();
  const r = s.report;
  s.report = {
    ...r,
    kubelet: { ...r.kubelet, observedAt: at }, runtime: { ...r.runtime, observedAt: at }, cni: { ...r.cni, observedAt: at },
    host: { ...r.host, observedAt: at, uptimeSeconds: r.host.uptimeSeconds + STEP / 1000, memoryAvailableBytes: Math.round((18 + 4 * random()) * 1024 ** 3) },
  };
  fleet.report(s.name, true, s.report);
  s.dirty = false;
}

/**
 * The agents' answers to the installs sent in this step, as the agent sends them, at once:
 * an hour's step is longer than an install's timeout (its health timeout plus 30 min),
 * and an answer an hour late would time the command out.
 */
function answerInstalls(): void {
  answering = true;
  try {
    answerEach();
  } finally {
    answering = false;
  }
}

function answerEach(): void {
  for (const { machine, command } of sent.splice(0)) {
    const s = byName.get(machine);
    if (s === undefined || s.link === null) continue;
    const pkg = String(command.params['package']);
    const version = String(command.params['version']);
    const previous = s.report.kubelet.version?.semver ?? null;
    commands.progress(machine, { type: 'command.progress', commandId: command.commandId, step: 'download', message: `downloading ${pkg} ${version}` });
    if (random() < INSTALL_FAIL_RATE) {
      const message = `health failed: kubelet ${version} did not become healthy within 120 s; rolled back to ${previous}`;
      commands.result(machine, { type: 'command.result', commandId: command.commandId, ok: false, result: { package: pkg, activeVersion: previous, previousVersion: previous, outcome: 'rolled-back', failedStep: 'health', message }, error: { code: 'NK_INSTALL_HEALTH_FAILED', message } });
      continue;
    }
    s.report = { ...s.report, kubelet: { ...s.report.kubelet, version: { raw: `Kubernetes v${version}`, semver: version, source: 'binary' } } };
    s.dirty = true;
    commands.result(machine, { type: 'command.result', commandId: command.commandId, ok: true, result: { package: pkg, activeVersion: version, previousVersion: previous, outcome: 'installed', message: `${pkg} ${version} installed and healthy (was ${previous})` } });
  }
}

/** The operator, once an hour: a paused rollout (a failure, a rebooting machine) is resumed (`nkctl rollout resume`). */
function operator(): void {
  for (const r of store.listRollouts()) {
    if ((r.state as { phase: string }).phase !== 'Paused') continue;
    try {
      rollouts.request(r.name, 'resume');
      resumes += 1;
    } catch {
      // not resumable now (NK_ROLLOUT_BAD_TRANSITION): the next hour
    }
  }
}
let resumes = 0;

/** Pushes a kubelet artifact (as `nkctl artifact push` does) and starts a rollout of it. */
async function startRollout(patch: number): Promise<void> {
  const version = `1.36.${patch}`;
  const chunks = function* () {
    for (let left = ARTIFACT_MB * 1024 ** 2; left > 0; left -= 1024 ** 2) yield randomBytes(Math.min(left, 1024 ** 2));
  };
  const { sha256, size } = ARTIFACT_MB > 0 ? await artifacts.put(Readable.from(chunks()), config.maxArtifactBytes) : { sha256: randomBytes(32).toString('hex'), size: 1 };
  store.addArtifact({ sha256, package: 'kubelet', version, size, signature: null });
  rollouts.create({
    apiVersion: ROLLOUT_API_VERSION, kind: 'Rollout', metadata: { name: `kubelet-${version.replaceAll('.', '-')}` },
    spec: { packages: [{ package: 'kubelet', version }], selector: {}, strategy: { canary: { count: 5 }, soakSeconds: 600, batches: [10, 50, 100], maxUnavailable: '10%', maxFailures: '5%' } },
  });
}

interface TableSize { rows: number; bytes: number }
interface Measure { db: number; wal: number; shm: number; artifacts: number; freeBytes: number; tables: Map<string, TableSize> }

const fileSize = (f: string) => { try { return statSync(f).size; } catch { return 0; } };
function dirSize(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) total += fileSize(path.join(e.parentPath, e.name));
  return total;
}

let warnedNoDbstat = false;

/** Sizes on disk, and rows and bytes per table (its indexes counted with it), read by a second connection. */
function measure(): Measure {
  const db = new Database(p.db, { readonly: true });
  try {
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    const owner = new Map<string, string>();
    for (const r of db.prepare(`SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')`).all() as Array<{ name: string; tbl_name: string }>) owner.set(r.name, r.tbl_name);
    const tables = new Map<string, TableSize>();
    for (const [name, tbl] of owner) if (name === tbl) tables.set(tbl, { rows: (db.prepare(`SELECT count(*) AS n FROM "${tbl}"`).get() as { n: number }).n, bytes: 0 });
    let sized: Array<{ name: string; bytes: number }>;
    try {
      sized = db.prepare(`SELECT name, pgsize AS bytes FROM dbstat WHERE aggregate = TRUE`).all() as typeof sized;
    } catch {
      if (!warnedNoDbstat) console.log('this SQLite has no dbstat virtual table: rows only, no bytes per table');
      warnedNoDbstat = true;
      sized = [];
    }
    for (const { name, bytes } of sized) {
      const t = tables.get(owner.get(name) ?? name);
      if (t !== undefined) t.bytes += bytes;
    }
    const freeBytes = Number(db.pragma('freelist_count', { simple: true })) * pageSize;
    return { db: fileSize(p.db), wal: fileSize(`${p.db}-wal`), shm: fileSize(`${p.db}-shm`), artifacts: dirSize(p.artifacts), freeBytes, tables };
  } finally {
    db.close();
  }
}

const MB = (b: number) => (b / 1024 ** 2).toFixed(1);
const KB = (b: number) => (b / 1024).toFixed(1);
const SHOWN = ['machines', 'observations', 'events', 'commands', 'rollouts'] as const;
const tableCell = (m: Measure, t: string) => {
  const s = m.tables.get(t) ?? { rows: 0, bytes: 0 };
  return `${s.rows.toLocaleString('en-US')} / ${MB(s.bytes)}`;
};
console.log(`data dir ${config.dataDir}: ${N.toLocaleString('en-US')} machines, ${DAYS} simulated days`);
console.log(`| day | SQLite file MB | WAL MB | artifacts MB | total MB | KB/machine (db) | free MB | ${SHOWN.map((t) => `${t} rows / MB`).join(' | ')} | s |`);
console.log(`|${'---|'.repeat(8 + SHOWN.length)}`);

const started = performance.now();
const daily: Measure[] = [];
let rolloutPatch = 0;
for (let day = 1; day <= DAYS; day++) {
  for (let i = 0; i < STEPS_PER_DAY; i++) {
    const step = (day - 1) * STEPS_PER_DAY + i;
    // A heartbeat 10 s before the step's end and one at its end (below): contact is
    // judged on the gap between messages, and the agents' gap is the heartbeat interval.
    now += STEP - config.heartbeatIntervalMs;
    for (const s of sims) if (s.link !== null) fleet.touch(s.name);
    fleet.tick(); // the rebooting machines, silent for an hour, go Unknown
    now += config.heartbeatIntervalMs;
    if (i === STEPS_PER_DAY / 2 && day % ROLLOUT_EVERY_DAYS === 2) await startRollout(++rolloutPatch);
    operator();
    sims.forEach((s, index) => agentStep(s, index, step));
    fleet.tick();
    commands.expire();
    rollouts.tick();
    answerInstalls();
    batcher.flush();
    await retention.runOnce();
  }
  const m = measure();
  daily.push(m);
  const secs = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`| ${day} | ${MB(m.db)} | ${MB(m.wal)} | ${MB(m.artifacts)} | ${MB(m.db + m.wal + m.shm + m.artifacts)} | ${KB(m.db / N)} | ${MB(m.freeBytes)} | ${SHOWN.map((t) => tableCell(m, t)).join(' | ')} | ${secs} |`);
}
batcher.flush();

// The WAL at production cadence: a flush a second for 5 simulated minutes, from an
// emptied WAL, with every agent's heartbeat every 10 s (so a sixtieth of the fleet's
// last-seen times in each flush) and its full report every 5 minutes.
const before = { ...batcher.counters };
{
  const db = new Database(p.db);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}
for (let sec = 0; sec < 300; sec++) {
  now += 1000;
  for (let j = sec % 10; j < N; j += 10) {
    const s = sims[j]!;
    if (s.link === null) continue;
    fleet.touch(s.name); // a heartbeat every 10 s; last-seen reaches the store once a minute
    if (j % 300 === sec % 300) fleet.report(s.name, true, { ...s.report, host: { ...s.report.host, uptimeSeconds: s.report.host.uptimeSeconds + 1 + sec } });
  }
  fleet.tick();
  batcher.flush();
  if (sec === 150) await retention.runOnce();
}
const walAtCadence = fileSize(`${p.db}-wal`);
const c = batcher.counters;
const cadence = `${((c.rowsWritten - before.rowsWritten) / 300).toFixed(0)} rows/s (last-seen ${c.lastSeenRows - before.lastSeenRows}, status ${c.statusRows - before.statusRows}, observations ${c.observationRows - before.observationRows}, events ${c.eventRows - before.eventRows} in 300 s)`;
const elapsed = (performance.now() - started) / 1000;
store.close();

const last = daily.at(-1)!;
const dayOf = (d: number) => daily[Math.min(d, daily.length) - 1]!;
const byTable = (m: Measure) => [...m.tables].filter(([, t]) => t.bytes > 0).sort((a, b) => b[1].bytes - a[1].bytes)
  .map(([name, t]) => `${name} ${t.rows.toLocaleString('en-US')} rows ${MB(t.bytes)} MB`).join(', ');
const steady = DAYS > 30 ? 'steady state (every retention limit reached, 30 days of events the longest)' : `not yet steady (retention's longest limit is 30 days; ran ${DAYS})`;
const onDays = [...new Set([1, 7, 14, DAYS].filter((d) => d <= DAYS))].map((d) => `${MB(dayOf(d).db)} MB on day ${d}`).join(', ');
const summary = `N=${N}, ${DAYS} days: SQLite file ${onDays} (${KB(last.db / N)} KB per machine; ${MB(last.freeBytes)} MB of it free pages), ${steady}; ` +
  `by table on day ${DAYS}: ${byTable(last)}; artifacts ${MB(last.artifacts)} MB (${rolloutPatch} rollouts of ${ARTIFACT_MB} MB, never pruned); ` +
  `WAL ${MB(Math.max(...daily.map((m) => m.wal)))} MB at most with a flush per hour's step, ${MB(walAtCadence)} MB at production cadence (a flush a second, ${cadence}); ${elapsed.toFixed(0)} s`;
if (values['no-record']) console.log(summary);
else record('datadir growth', summary);
if (values.keep) console.log(`kept ${root}`);
else rmSync(root, { recursive: true, force: true });
