/**
 * Fleet benchmarks with the fleet simulator (bench/sim): one coordinator on this
 * machine, N simulated agents in worker processes beside it, real ws connections over
 * loopback, real enrollment. Not a test: results are printed and appended to
 * bench/results.md with the machine described.
 *
 *   node bench/fleet.ts [--sizes 1000,5000,10000,19000] [--window 30] [--scenarios steady,storm,fanout,rollout] [--tls]
 *                       [--heartbeats 10000,1000] [--cpu-prof] [--cpu-prof-dir DIR] [--storm-scrape 5] [--gateway-workers N]
 *                       [--baseline-processes K]
 *
 * --window S: a steady window is S seconds, and at least 12 heartbeats (120 s at a 10 s heartbeat).
 *
 * --tls: the coordinator serves https/wss with its generated CA, and the simulated agents
 * enroll and connect pinning it, as real agents do (rows say "wss"); the bare baseline
 * serves wss too, with the coordinator's certificate (its rows say "over wss"; before
 * 2026-12-05 it stayed plain ws, so older wss ratios carry the coordinator's TLS alone).
 * Without it, everything is plain ws (`--insecure`).
 *
 * --gateway-workers N: every coordinator runs its gateway in N worker processes (docs/coordinator.md,
 * "Gateway workers"); its CPU and RSS are then the writer's and its workers' together (the
 * JS heap probe reads the writer's only), and rows say "N gateway workers".
 *
 * --baseline-processes K: the bare baseline runs as K processes sharing its port
 * (bench/baseline-server.ts --processes); by default one more than the gateway workers,
 * so both sides run as many processes (1 without workers). Steady rows with K > 1 say
 * how many processes each side ran. Before enrolling anything the bench refuses a size
 * that some process (coordinator, gateway worker, baseline) could not hold at the
 * open-file limit, and names the flag to raise.
 *
 * --heartbeats: the steady heartbeats to run (ms).
 *
 * --cpu-prof: every coordinator the steady and storm scenarios measure (each steady run's,
 * the storm's restarted one) runs under `node --cpu-prof`, its profiles in a folder of
 * their own under --cpu-prof-dir DIR (default bench/profiles/; DIR alone implies
 * --cpu-prof), named for the run (e.g. steady-hb10000-n5000-wss-..., storm-n19000-wss-...):
 * the writer's .cpuprofile, each gateway worker's beside it, and summary.txt of the
 * writer's (bench/lib/cpu-profile.ts: top self time, the longest stretches with no idle
 * sample). Profiled steady rows say "coordinator under --cpu-prof" (a profiler costs
 * CPU); the storm row names the worst stall and what ran in it. Read a profile further
 * with bench/lib/profile-self.ts.
 *
 * - steady: for each N, at a 10 s and a 1 s heartbeat, the coordinator and then the bare
 *   baseline (bench/baseline-server.ts) with the same agents: CPU per agent frame, RSS
 *   per connected agent, event-loop delay p99, SQLite rows written per second, frames
 *   received/sent (a coordinator that keeps up receives all), and report-to-visible
 *   latency (a report change until GET /v1/machines/NAME shows it). The coordinator's JS
 *   heap per agent too (heap used after a full GC, bench/lib/heap-probe.ts, preloaded in
 *   the bench's coordinator only): at the end of the window less that of a coordinator
 *   with no machine at all (the machines' records, reports, conditions, controller views
 *   and connections), and less that of the same coordinator before the fleet connected
 *   (the connections and what arrived on them). `--heartbeats` picks the heartbeats (ms).
 *   `--watch-history N` is passed to the coordinator: its ring of the last N watch changes
 *   (each a Machine's JSON, about 2.2 KB; 10,000 by default, so up to about 22 MB whatever
 *   the fleet's size) fills during a run and is counted in both numbers unless made small.
 *   `--coordinator-node-options='...'` adds Node/V8 flags to the coordinator's (e.g. a
 *   smaller young generation, to see what RSS per agent is made of).
 * - storm: at the largest N, kill -9 the coordinator with every agent connected and
 *   start it again: time until all are back and Ready, peak CPU, worst event-loop delay,
 *   the most machines ever NotReady or Unknown (sampled each second, and counted from the
 *   MachineNotReady/MachineUnknown events), upgrades deferred by admission control, and over
 *   wss the handshakes of the returning agents, full or resumed (--cpu-prof above).
 * - fanout: a rollout of one batch of 1,000 machines: time until every agent has its command.
 * - rollout: 5,000 machines, 2 % of installs failing: where the rollout pauses, and why.
 *
 * The simulator shares the 2 cores with the coordinator: the coordinator's numbers are
 * its own processes' (the writer's and its gateway workers', from /proc; the baseline's
 * likewise), the simulator's CPU is reported beside them. bench/README.md, "40,000 agents
 * on one box", says what bounds the largest run.
 */
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { kubeletArtifact } from '../test/harness/artifacts.ts';
import { createToken, nkctl } from '../test/harness/processes.ts';
import { record, percentile, REPO } from './lib/results.ts';
import { processProfile, profilingEnv } from './lib/cpu-profile.ts';
import { baselineServer, coordinatorServer, cpuMs, rssBytes, type BenchServer } from './lib/servers.ts';
import { enrollFleet, PER_WORKER, SimFleet, simName, LOCAL_ADDRESSES } from './sim/fleet.ts';
import { defaultProfile, type SimAgentSpec, type SimProfile } from './sim/sim-agent.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,5000,10000,19000' },
    window: { type: 'string', default: '30' },
    scenarios: { type: 'string', default: 'steady,storm,fanout,rollout' },
    keep: { type: 'boolean', default: false },
    tls: { type: 'boolean', default: false },
    heartbeats: { type: 'string', default: '10000,1000' },
    'watch-history': { type: 'string' },
    'coordinator-node-options': { type: 'string', default: '' },
    'cpu-prof': { type: 'boolean', default: false },
    'storm-scrape': { type: 'string', default: '5' },
    'cpu-prof-dir': { type: 'string' },
    'gateway-workers': { type: 'string', default: '0' },
    'baseline-processes': { type: 'string' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const watchHistory = values['watch-history'] === undefined ? [] : ['--watch-history', values['watch-history']];
const heartbeats = values.heartbeats.split(',').map(Number);
if (heartbeats.some((h) => !Number.isInteger(h) || h < 100)) throw new RangeError(`--heartbeats must be whole milliseconds >= 100, got ${values.heartbeats}`);
const WSS = values.tls;
const gatewayWorkers = Number(values['gateway-workers']);
if (!Number.isInteger(gatewayWorkers) || gatewayWorkers < 0 || gatewayWorkers > 16) throw new RangeError(`--gateway-workers must be 0..16, got ${values['gateway-workers']}`);
/** Passed to every coordinator the bench starts (nothing when 0: the in-process gateway, as before). */
const workerArgs = gatewayWorkers === 0 ? [] : ['--gateway-workers', String(gatewayWorkers)];
const baselineProcesses = values['baseline-processes'] === undefined ? gatewayWorkers + 1 : Number(values['baseline-processes']);
if (!Number.isInteger(baselineProcesses) || baselineProcesses < 1 || baselineProcesses > 16) throw new RangeError(`--baseline-processes must be 1..16, got ${values['baseline-processes']}`);
/** Profiling: --cpu-prof, or --cpu-prof-dir alone (which used to mean steady runs only). */
const cpuProf = values['cpu-prof'] || values['cpu-prof-dir'] !== undefined;
const profRoot = path.resolve(values['cpu-prof-dir'] ?? path.join(REPO, 'bench', 'profiles'));
/** Rows over wss say so, and rows with gateway workers; plain ws rows keep their old labels. */
const over = `${WSS ? ', wss' : ''}${gatewayWorkers === 0 ? '' : `, ${gatewayWorkers} gateway workers`}`;
const windowMs = Number(values.window) * 1000;
if (!(windowMs >= 1000)) throw new RangeError(`--window must be seconds >= 1, got ${values.window}`);
/**
 * A steady window spans at least this many heartbeats. At a 10 s heartbeat a 30 s window
 * held one or two of the coordinator's major GCs by chance (each, at 19 k, most of a
 * second of CPU on V8's helper threads), and the same code measured 1.28x-1.68x against
 * the baseline run to run; 120 s windows average over several (bench/README.md, "CPU per
 * frame over wss").
 */
const MIN_HEARTBEATS_A_WINDOW = 12;
const windowFor = (heartbeatMs: number) => Math.max(windowMs, MIN_HEARTBEATS_A_WINDOW * heartbeatMs);
const scenarios = new Set(values.scenarios.split(','));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/**
 * Every coordinator, baseline and simulated fleet started and not stopped yet: stopped
 * when the bench ends early (an error, Ctrl-C), so none is left running to load the box
 * under the next benchmark (a coordinator left so once cost a storm row its meaning).
 */
const running = new Set<{ stop(): Promise<unknown> }>();
function tracked<T extends { stop(signal?: NodeJS.Signals): Promise<unknown> }>(x: T): T {
  const stop = x.stop.bind(x);
  running.add(x);
  x.stop = (signal?: NodeJS.Signals) => {
    running.delete(x);
    return stop(signal);
  };
  return x;
}
const stopAll = () => Promise.all([...running].map((x) => x.stop().catch(() => undefined)));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopAll().then(() => process.exit(130)));
/**
 * Refuses, before any enrollment, a size some process could not hold: each holds one open
 * file per connection it serves, and a process here may open `ulimit -n` files (20,000,
 * the hard limit), besides about 200 of its own. SO_REUSEPORT spreads connections by a
 * hash of their addresses, not evenly: five standard deviations of room when shared.
 */
function checkOpenFiles(n: number): void {
  const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
  const fits = (processes: number) => n / processes + (processes > 1 ? 5 * Math.sqrt(n / processes) : 0) + 200 <= limit;
  let least = 1;
  while (!fits(least) && least < 64) least += 1;
  if (!fits(Math.max(1, gatewayWorkers))) throw new RangeError(`N=${n} does not fit ${gatewayWorkers === 0 ? 'one coordinator process' : `${gatewayWorkers} gateway workers`} at ${limit} open files a process: run with --gateway-workers ${least} or more`);
  if (scenarios.has('steady') && !fits(baselineProcesses)) throw new RangeError(`N=${n} does not fit a baseline of ${baselineProcesses} process(es) at ${limit} open files a process: run with --baseline-processes ${least} or more`);
  if (PER_WORKER + 200 > limit) throw new RangeError(`a simulator process holds up to ${PER_WORKER} connections, more than ${limit} open files allow`);
}
checkOpenFiles(Math.max(...sizes));
const root = await mkdtemp(path.join(tmpdir(), 'nk-bench-fleet-'));
say(`working in ${root}; up to ${PER_WORKER} agents per simulator process, dialling from ${LOCAL_ADDRESSES[0]}..${LOCAL_ADDRESSES.at(-1)}`);

/** Admin credential and URL of a coordinator, for the API reads. */
function api(dataDir: string, url: string) {
  const token = readFileSync(path.join(dataDir, 'admin.credential'), 'utf8').trim();
  return async (p: string, init: RequestInit = {}) => {
    const res = await fetch(new URL(p, url), { ...init, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...init.headers } });
    const text = await res.text();
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${p}: ${res.status} ${text.slice(0, 300)}`);
    return text;
  };
}

interface Steady {
  cpuPerFrameUs: number;
  cpuShare: number;
  framesPerS: number;
  rssPerAgentKb: number;
  loopP99Ms: number;
  loopMaxMs: number;
  rowsPerS: number;
  received: number;
  simCpuShare: number;
}

/** Measures a server with the fleet connected, over the window. */
async function measure(server: BenchServer, fleet: SimFleet, n: number, idleRss: number, simPids: number[], window: number): Promise<Steady> {
  const s0 = await server.stats();
  const f0 = await fleet.stats();
  const c0 = cpuMs(server.pid);
  const sim0 = simPids.reduce((a, p) => a + cpuMs(p), 0);
  const t0 = Date.now();
  await sleep(window);
  const s1 = await server.stats();
  const f1 = await fleet.stats();
  const c1 = cpuMs(server.pid);
  const sim1 = simPids.reduce((a, p) => a + cpuMs(p), 0);
  const elapsed = Date.now() - t0;
  const frames = f1.frames - f0.frames;
  return {
    cpuPerFrameUs: ((c1 - c0) * 1000) / frames,
    cpuShare: (c1 - c0) / elapsed,
    framesPerS: (frames * 1000) / elapsed,
    rssPerAgentKb: (rssBytes(server.pid) - idleRss) / n / 1024,
    loopP99Ms: s1.loopP99Ms,
    loopMaxMs: s1.loopMaxMs,
    rowsPerS: ((s1.rowsWritten - s0.rowsWritten) * 1000) / elapsed,
    received: (s1.framesReceived - s0.framesReceived) / frames,
    simCpuShare: (sim1 - sim0) / elapsed,
  };
}

/** Report-to-visible: a report change on one agent until the API shows it; several samples. */
async function visibility(get: (p: string) => Promise<string>, fleet: SimFleet, n: number, samples: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const name = simName(Math.floor(Math.random() * n));
    const token = `visible-${Date.now()}-${i}`;
    const { sentAt, ok } = await fleet.mark(name, token);
    if (!ok) continue;
    for (;;) {
      if ((await get(`/v1/machines/${name}`)).includes(token)) {
        out.push(Date.now() - sentAt);
        break;
      }
      if (Date.now() - sentAt > 30_000) {
        out.push(Infinity);
        break;
      }
      await sleep(5);
    }
    await sleep(50);
  }
  return out;
}

const steadyLine = (s: Steady) =>
  `CPU ${fmt(s.cpuPerFrameUs)} us/frame (${fmt(s.cpuShare * 100)} % of a core at ${fmt(s.framesPerS, 0)} frames/s), RSS ${fmt(s.rssPerAgentKb)} KB/agent, loop p99 ${fmt(s.loopP99Ms)} ms (max ${fmt(s.loopMaxMs)}), SQLite ${fmt(s.rowsPerS, 0)} rows/s, received ${fmt(s.received * 100)} % of frames sent; simulator ${fmt(s.simCpuShare * 100)} % of a core`;

/** Runs `start` (a coordinator start) with the bench's heap probe preloaded in the child (bench/lib/heap-probe.ts). */
async function withHeapProbe<T>(start: () => Promise<T>): Promise<T> {
  const saved = { options: process.env['NODE_OPTIONS'], file: process.env['BENCH_HEAP_FILE'] };
  process.env['NODE_OPTIONS'] = `${saved.options ?? ''} ${values['coordinator-node-options']} --expose-gc --import ${path.join(import.meta.dirname, 'lib/heap-probe.ts')}`.trim();
  process.env['BENCH_HEAP_FILE'] = path.join(root, 'heap.json');
  try {
    return await start();
  } finally {
    for (const [k, v] of [['NODE_OPTIONS', saved.options], ['BENCH_HEAP_FILE', saved.file]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

let empty: number | null = null;
/** JS heap used (bytes) after a full GC by a coordinator with no machine, once per run. */
async function emptyHeap(): Promise<number> {
  if (empty !== null) return empty;
  const coord = await withHeapProbe(async () => tracked(await coordinatorServer(path.join(root, 'empty', 'coordinator'), [...watchHistory, ...workerArgs], WSS)));
  await sleep(2000);
  empty = await heapUsed(coord.pid);
  await coord.stop();
  return empty;
}

/** JS heap used (bytes) by a coordinator started withHeapProbe, after a full GC. */
async function heapUsed(pid: number): Promise<number> {
  return (await heapStats(pid)).usedHeap;
}

/** The heap probe's numbers (bytes) after a full GC: heap used and committed, and RSS then. */
async function heapStats(pid: number): Promise<{ usedHeap: number; totalHeap: number; rss: number }> {
  const file = path.join(root, 'heap.json');
  const asked = Date.now();
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    try {
      const h = JSON.parse(readFileSync(file, 'utf8')) as { at: number; gc: boolean; usedHeap: number; totalHeap: number; rss: number };
      if (h.at >= asked) {
        if (!h.gc) throw new Error('the heap probe has no gc(): was --expose-gc refused?');
        return h;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (Date.now() - asked > 60_000) throw new Error('the coordinator did not answer the heap probe in 60 s');
    await sleep(100);
  }
}

async function waitFleet(fleet: SimFleet, n: number, what: string): Promise<number> {
  // 600 s, or 30 ms an agent beyond 20,000: 40,000 over wss took 429 s on the shared box,
  // admitted about 100 a second while the writer's loop delay held admission in its slow mode.
  const ms = await fleet.waitConnected(n, Math.max(600_000, n * 30), (c) => say(`  ${what}: ${c}/${n} connected`));
  say(`  ${what}: all ${n} connected in ${fmt(ms / 1000)} s`);
  return ms;
}

async function enrolled(n: number): Promise<{ dataDir: string; specs: SimAgentSpec[] }> {
  const dataDir = path.join(root, `n${n}`, 'coordinator');
  const coord = tracked(await coordinatorServer(dataDir, workerArgs, WSS));
  const { token } = await createToken(coord.proc.nkctlConfig, n);
  const t = Date.now();
  const specs = await enrollFleet(coord.url, token, n, { caPem: coord.caPem, onProgress: (d) => say(`  enrolled ${d}/${n}`) });
  say(`  enrolled ${n} machines in ${fmt((Date.now() - t) / 1000)} s (${fmt((Date.now() - t) / n, 2)} ms each, 32 at a time)`);
  await coord.stop();
  return { dataDir, specs };
}

/** With --cpu-prof, a new folder under the profiles' root for one run's profiles (`run` names it). */
async function profiling(run: string): Promise<string | null> {
  if (!cpuProf) return null;
  const dir = path.join(profRoot, `${run}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Profiling env for a coordinator (NODE_OPTIONS as the bench has it when called: the heap probe's, in a steady run). */
const profEnv = (dir: string | null): NodeJS.ProcessEnv => (dir === null ? {} : profilingEnv(dir));

/** A profiles folder as a row shows it: relative to the repo when inside it. */
const shown = (dir: string) => (dir.startsWith(`${REPO}/`) ? path.relative(REPO, dir) : dir);
const profiled = (n: number, what: string) => `${what}-n${n}${WSS ? '-wss' : ''}${gatewayWorkers === 0 ? '' : `-gw${gatewayWorkers}`}`;
const names = (fs: readonly { name: string; ms: number }[], k: number) => fs.slice(0, k).map((f) => `${f.name} ${fmt(f.ms, 0)} ms`).join(', ');

async function steady(n: number, dataDir: string, specs: SimAgentSpec[]): Promise<void> {
  const emptyBytes = await emptyHeap();
  for (const hb of heartbeats) {
    const settle = Math.max(2 * hb, 10_000);
    const profile: SimProfile = { ...defaultProfile, probeIntervalMs: hb };
    // The coordinator: started on the enrolled store, idle RSS taken before the fleet arrives.
    const prof = await profiling(profiled(n, `steady-hb${hb}`));
    const coord = await withHeapProbe(async () => tracked(await coordinatorServer(dataDir, ['--heartbeat-interval', String(hb), '--port', '0', ...watchHistory, ...workerArgs], WSS, profEnv(prof))));
    await sleep(2000);
    const idleStats = await heapStats(coord.pid);
    const idleHeap = idleStats.usedHeap;
    const idle = rssBytes(coord.pid);
    const nodeOptions = values['coordinator-node-options'] === '' ? '' : `, coordinator NODE_OPTIONS ${values['coordinator-node-options']}`;
    // Rows say how many processes each side ran when the baseline had more than one (old rows keep their labels).
    const sides = baselineProcesses === 1 ? '' : `, coordinator ${gatewayWorkers + 1} processes, baseline ${baselineProcesses} processes`;
    const label = `steady state${over}${sides}, N=${n}, heartbeat ${hb / 1000} s, ${windowFor(hb) / 1000} s window${watchHistory.length > 0 ? `, --watch-history ${watchHistory[1]}` : ''}${nodeOptions}${prof === null ? '' : ', coordinator under --cpu-prof'}`;
    let fleet = tracked(await SimFleet.start({ server: coord.url, caPem: coord.caPem, specs, profile }));
    const short = await waitFleet(fleet, n, `coordinator, heartbeat ${hb / 1000} s`).then(() => null, (err: Error) => err.message);
    if (short !== null) {
      // A row all the same: what both sides spent while the fleet could not all connect says what bounds it.
      const c = await measure(coord, fleet, n, idle, fleet.pids, windowFor(hb));
      await coord.stop();
      await fleet.stop();
      record(`${label}: coordinator`, `not all connected (${short}); over the next window: ${steadyLine(c)}; load average ${fmt(loadavg()[0] ?? NaN, 1)}`);
      continue;
    }
    await sleep(settle);
    const c = await measure(coord, fleet, n, idle, fleet.pids, windowFor(hb));
    const endStats = await heapStats(coord.pid);
    const endHeap = endStats.usedHeap;
    const perConn = (k: 'totalHeap' | 'rss') => fmt((endStats[k] - idleStats[k]) / n / 1024, 1);
    const heapPerAgentKb = (endHeap - emptyBytes) / n / 1024;
    const heapPerConnectionKb = (endHeap - idleHeap) / n / 1024;
    const lat = await visibility(api(dataDir, coord.url), fleet, n, 40);
    // The coordinator first: agents stopped under it would go silent together and leave a
    // PartitionSuspected in the store that later stages copy (it holds their rollouts).
    await coord.stop();
    await fleet.stop();
    const summary = prof === null ? null : await processProfile(prof, coord.pid);
    // The baseline: the same agents, the same frames; over wss with the coordinator's certificate.
    const base = tracked(await baselineServer(path.join(root, `n${n}`, `baseline-${hb}`), hb, baselineProcesses, WSS ? path.join(dataDir, 'pki') : undefined));
    await sleep(1000);
    const baseIdle = rssBytes(base.pid);
    fleet = tracked(await SimFleet.start({ server: base.url, caPem: base.caPem, specs, profile }));
    await waitFleet(fleet, n, `baseline, heartbeat ${hb / 1000} s`);
    await sleep(settle);
    const b = await measure(base, fleet, n, baseIdle, fleet.pids, windowFor(hb));
    await fleet.stop();
    await base.stop();
    const profileNote = prof === null ? '' : `; CPU profile (${shown(prof)}): ${summary === null ? 'none written' : `top self ${names(summary.topSelf, 5)}`}`;
    record(`${label}: coordinator`, `${steadyLine(c)}; JS heap ${fmt(heapPerAgentKb, 2)} KB/agent after a full GC (target <= 8 KB; ${fmt(heapPerConnectionKb, 2)} KB of it came with the connections; after that GC, per connection: heap committed ${perConn('totalHeap')} KB, RSS ${perConn('rss')} KB); report-to-visible p50 ${fmt(percentile(lat, 50), 0)} ms, p99 ${fmt(percentile(lat, 99), 0)} ms (${lat.length} samples)${profileNote}`);
    // Until 2026-12-05 the baseline stayed plain ws under wss rows: its rows now say which it spoke.
    record(`${label}: bare baseline${WSS ? ' over wss' : ''}`, steadyLine(b));
    record(`${label}: coordinator / baseline`, `CPU per frame ${fmt(c.cpuPerFrameUs / b.cpuPerFrameUs, 2)}x (target <= 1.5x), RSS per agent ${fmt(c.rssPerAgentKb, 1)} KB vs ${fmt(b.rssPerAgentKb, 1)} KB (target <= 16 KB); load average ${fmt(loadavg()[0] ?? NaN, 1)}`);
  }
}

/** Machines that went NotReady or Unknown, from the coordinator's log lines (every liveness change is logged). */
function wentBad(log: string): { notReady: number; unknown: number } {
  const to = { NotReady: new Set<string>(), Unknown: new Set<string>() };
  for (const line of log.split('\n')) {
    if (!line.includes('"liveness changed"')) continue;
    const m = JSON.parse(line) as { machine: string; to: string };
    if (m.to === 'NotReady' || m.to === 'Unknown') to[m.to].add(m.machine);
  }
  return { notReady: to.NotReady.size, unknown: to.Unknown.size };
}

async function storm(n: number, dataDir: string, specs: SimAgentSpec[]): Promise<void> {
  let coord = tracked(await coordinatorServer(dataDir, workerArgs, WSS));
  const port = new URL(coord.url).port;
  const fleet = tracked(await SimFleet.start({ server: coord.url, caPem: coord.caPem, specs, profile: defaultProfile }));
  await waitFleet(fleet, n, 'storm: before the kill');
  await sleep(15_000);
  const before = await coord.stats();
  const fleetBefore = await fleet.stats();
  say(`  storm: ${before.states['Ready']} Ready; kill -9`);
  await coord.stop('SIGKILL');
  const killedAt = Date.now();
  const simCpu = () => fleet.pids.reduce((a, p) => a + cpuMs(p), 0);
  const simCpuAtKill = simCpu();
  const logBefore = coord.proc.log().length;
  const prof = await profiling(profiled(n, 'storm'));
  coord = tracked(await coordinatorServer(dataDir, ['--port', port, ...workerArgs], WSS, profEnv(prof)));
  const listeningAfterS = (Date.now() - killedAt) / 1000;
  say(`  storm: restarted in ${fmt(listeningAfterS)} s`);
  // The loop-delay histogram starts with the process and is reset by each read: this first
  // read holds the start-up (modules, the store, the fleet view and watch hub loaded
  // before listening), which no agent waits on; the storm's delays are the later reads.
  const startupLoopMs = (await coord.stats()).loopMaxMs;
  // This start's line: the log file also holds the earlier starts' (the enrolment's had no machines).
  const restartGrace = /"restartGraceMs":(\d+)/.exec(coord.proc.log().slice(logBefore))?.[1];
  let peakCpu = 0;
  let worstLoop = 0;
  /** When the worst delay was read (the read covers the seconds since the one before). */
  let worstLoopAt: number | null = null;
  let worstNotReady = 0;
  let worstUnknown = 0;
  let backAt: number | null = null;
  let readyAt: number | null = null;
  let lastCpu = cpuMs(coord.pid);
  let lastT = Date.now();
  // CPU spent from the kill until all were Ready, core-seconds: the restarted coordinator
  // (writer and workers, its start-up included) and the simulator.
  let spent: { coordinator: number; simulator: number } | null = null;
  // /metrics is read only every --storm-scrape seconds (default 5; Prometheus scrapes every
  // 15-30 s): its product gauges are a pass over the whole fleet, 0.45-0.55 s at 5,000 in
  // a storm on a loaded box, and a scrape every second was itself the longest stall and
  // kept admission control in its slow mode. The loop-delay maximum covers the time since
  // the previous read, so nothing is missed; CPU and the agents connected (the
  // simulator's count) are read every second.
  const scrapeEveryS = Math.max(1, Number(values['storm-scrape']));
  // Watched for 300 s, or 15 ms an agent beyond 20,000 (600 s at 40,000: a wss storm of 5,000
  // took 46-87 s on this box, and readmission is paced), so a slow return is measured, not cut off.
  const watchMs = Math.max(300_000, n * 15);
  for (let tick = 1; Date.now() - killedAt < watchMs; tick += 1) {
    await sleep(1000);
    const cpu = cpuMs(coord.pid);
    peakCpu = Math.max(peakCpu, (cpu - lastCpu) / (Date.now() - lastT));
    lastCpu = cpu;
    lastT = Date.now();
    const connected = (await fleet.stats()).connected;
    if (backAt === null && connected >= n) backAt = Date.now();
    if (tick % scrapeEveryS !== 0 && !(backAt !== null && readyAt === null)) continue;
    const s = await coord.stats();
    if (s.loopMaxMs > worstLoop) {
      worstLoop = s.loopMaxMs;
      worstLoopAt = Date.now();
    }
    worstNotReady = Math.max(worstNotReady, s.states['NotReady'] ?? 0);
    worstUnknown = Math.max(worstUnknown, s.states['Unknown'] ?? 0);
    if (readyAt === null && (s.states['Ready'] ?? 0) >= n && s.connected >= n) {
      readyAt = Date.now();
      spent = { coordinator: cpuMs(coord.pid) / 1000, simulator: (simCpu() - simCpuAtKill) / 1000 };
    }
    if (backAt !== null && readyAt !== null && Date.now() - readyAt > 10_000) break;
  }
  const deferred = (await (await fetch(new URL('/metrics', coord.url))).text()).split('\n').filter((l) => /^nodekeeper_agent_upgrades_(rejected|deferred)_total/.test(l)).map((l) => l.replace(/^nodekeeper_agent_upgrades_/, '').replace('_total', '')).join(' ');
  const bad = wentBad(coord.proc.log().slice(logBefore));
  const fleetAfter = await fleet.stats();
  await coord.stop();
  await fleet.stop();
  const full = fleetAfter.handshakesFull - fleetBefore.handshakesFull;
  const resumed = fleetAfter.handshakesResumed - fleetBefore.handshakesResumed;
  const handshakes = WSS ? `; TLS handshakes of the returning agents: ${resumed} resumed, ${full} full` : '';
  let profile = '';
  if (prof !== null) {
    const summary = await processProfile(prof, coord.pid);
    if (summary === null) profile = '; no CPU profile written';
    else {
      const worst = summary.stalls[0];
      const ours = (fs: readonly { name: string; ms: number }[]) => fs.filter((f) => / (coordinator|packages)\//.test(f.name) || /^\(garbage/.test(f.name));
      profile = `; CPU profile (${shown(prof)}): start-up ${fmt(summary.startupMs / 1000)} s before the first idle moment; top self ${names(summary.topSelf, 5)}; longest busy stretch after start-up ${worst === undefined ? 'none' : `${worst.ms} ms at ${fmt(worst.atMs / 1000)} s, in ${names(ours(worst.inclusive), 5) || 'no function of ours (see summary.txt)'}`}`;
    }
  }
  const secs = (t: number | null) => (t === null ? `never (${watchMs / 1000} s)` : `${fmt((t - killedAt) / 1000)} s`);
  record(`reconnect storm${over}, N=${n}, kill -9 and restart`, `listening again ${fmt(listeningAfterS)} s after the kill (loading ${n} machines); all back ${secs(backAt)}, all Ready ${secs(readyAt)} after the kill (target 60 s); peak CPU ${fmt(peakCpu * 100, 0)} % of a core; CPU from the kill to all Ready ${spent === null ? 'n/a' : `${fmt(spent.coordinator)} s coordinator (with its start-up), ${fmt(spent.simulator)} s simulator, on ${cpus().length} cores`}; worst event-loop delay ${fmt(worstLoop, 0)} ms (read ${worstLoopAt === null ? 'never' : secs(worstLoopAt)} after the kill; target < 1000; start-up before listening ${fmt(startupLoopMs, 0)} ms apart); most NotReady ${worstNotReady}, most Unknown ${worstUnknown} (sampled every ${scrapeEveryS} s), machines with a MachineNotReady event ${bad.notReady}, with a MachineUnknown event ${bad.unknown} (target 0); restart grace ${restartGrace === undefined ? 'n/a' : `${fmt(Number(restartGrace) / 1000)} s`}; upgrades refused or deferred: ${deferred || 'none'}${handshakes}${profile}; load average ${fmt(loadavg()[0]!)} (the box is shared)`);
}

interface RolloutObject { status: { phase: string; reason: string; message: string; counts: Record<string, number>; batch: { index: number; total: number } } }

/**
 * A coordinator with the fleet connected and kubelet 1.35.3 pushed, ready for rollouts,
 * on a copy of the enrolled store (each scenario starts from the same fleet).
 */
async function rolloutStage(enrolledDir: string, scenario: string, specs: SimAgentSpec[], profile: SimProfile, budget: string) {
  const dataDir = `${enrolledDir}-${scenario}`;
  await cp(enrolledDir, dataDir, { recursive: true });
  const coord = tracked(await coordinatorServer(dataDir, ['--max-unavailable', budget, '--control-plane-version', 'v1.35.4', ...workerArgs], WSS));
  const artifact = await kubeletArtifact(path.join(root, 'artifacts'), { version: 'v1.35.3' });
  const push = await nkctl(coord.proc.nkctlConfig, ['artifact', 'push', artifact.file, '--package', 'kubelet', '--version', '1.35.3']);
  if (push.code !== 0) throw new Error(`artifact push failed: ${push.stderr}`);
  const fleet = tracked(await SimFleet.start({ server: coord.url, caPem: coord.caPem, specs, profile }));
  await waitFleet(fleet, specs.length, 'rollout stage');
  await sleep(5000);
  const get = api(dataDir, coord.url);
  /** Creates a rollout through the API (the object nkctl's flags make); returns when the request was sent. */
  const create = async (name: string, flags: string[]): Promise<number> => {
    const dry = await nkctl(coord.proc.nkctlConfig, ['rollout', 'create', name, '--package', 'kubelet=1.35.3', ...flags, '--dry-run', '-o', 'json']);
    if (dry.code !== 0) throw new Error(`rollout dry run failed: ${dry.stderr}`);
    const sentAt = Date.now();
    await get('/v1/rollouts', { method: 'POST', body: dry.stdout });
    return sentAt;
  };
  const rollout = async (name: string) => JSON.parse(await get(`/v1/rollouts/${name}`)) as RolloutObject;
  return { coord, fleet, create, rollout };
}

async function fanout(dataDir: string, specs: SimAgentSpec[]): Promise<void> {
  const { coord, fleet, create } = await rolloutStage(dataDir, 'fanout', specs, { ...defaultProfile, installMs: 60_000 }, '100%');
  const names = specs.slice(0, 1000).map((s) => s.name);
  const sentAt = await create('fanout', ['--names', names.join(','), '--canary', '0', '--batch-size', '1000', '--max-unavailable', '1000', '--max-failures', '100%', '--soak', '1s']);
  const arrivals = new Map<string, number>();
  await (async () => {
    const deadline = Date.now() + 60_000;
    while (arrivals.size < names.length && Date.now() < deadline) {
      for (const c of fleet.commands) if (c.kind === 'package.install' && !arrivals.has(c.name)) arrivals.set(c.name, c.at - sentAt);
      await sleep(20);
    }
  })();
  const times = [...arrivals.values()];
  await fleet.stop();
  await coord.stop();
  record(`command fan-out, one batch of 1,000 of ${specs.length} machines`, `${arrivals.size}/1000 agents had their install command; from the create request: first ${fmt(Math.min(...times), 0)} ms, p50 ${fmt(percentile(times, 50), 0)} ms, last ${fmt(Math.max(...times), 0)} ms (target < 2 s)`);
}

async function fullRollout(dataDir: string, specs: SimAgentSpec[]): Promise<void> {
  const { coord, fleet, create, rollout } = await rolloutStage(dataDir, 'rollout', specs, { ...defaultProfile, installMs: 3000, installFailRate: 0.02 }, '10%');
  const startedAt = await create('fleet', ['--canary', '1', '--batches', '10,50,100', '--max-unavailable', '10%', '--max-failures', '1%', '--soak', '5s', '--on-failure', 'pause']);
  const timeline: string[] = [];
  let last = '';
  let r: RolloutObject | null = null;
  while (Date.now() - startedAt < 900_000) {
    await sleep(1000);
    r = await rollout('fleet');
    const at = `${fmt((Date.now() - startedAt) / 1000, 0)} s`;
    const line = `${r.status.phase} batch ${r.status.batch.index + 1}/${r.status.batch.total}`;
    if (line !== last) timeline.push(`${at} ${line} (${r.status.counts['succeeded']} ok, ${r.status.counts['failed']} failed)`);
    last = line;
    if (['Paused', 'Completed', 'Failed', 'RolledBack'].includes(r.status.phase)) break;
  }
  const installs = () => fleet.commands.filter((c) => c.kind === 'package.install');
  const atStop = installs();
  await sleep(10_000);
  const all = installs();
  await fleet.stop();
  await coord.stop();
  // An agent is sent its open commands again whenever it connects: a receipt after the stop
  // is a new command (what a stopped rollout must not send) or such a re-delivery.
  const known = new Set(atStop.map((x) => x.commandId));
  const later = all.slice(atStop.length);
  const fresh = new Set(later.filter((x) => !known.has(x.commandId)).map((x) => x.commandId)).size;
  const redelivered = all.length - new Set(all.map((x) => x.commandId)).size;
  const first = all[0] === undefined ? 'none' : `${fmt((all[0].at - startedAt) / 1000)} s`;
  const c = r?.status.counts ?? {};
  record(`rollout of ${specs.length} machines, 2 % of installs failing, --max-failures 1%`, `${r?.status.phase} after ${fmt((Date.now() - startedAt - 10_000) / 1000, 0)} s: ${c['succeeded']} succeeded, ${c['failed']} failed, ${c['inProgress']} in progress, ${c['waiting']} waiting; reason ${r?.status.reason}: ${r?.status.message.slice(0, 160)}; installs received in the 10 s after the stop: ${later.length} (${fresh} new commands); first install received ${first} after the create; installs received twice or more over the rollout: ${redelivered}; timeline: ${timeline.join('; ')}`);
}

try {
  for (const [i, n] of sizes.entries()) {
    say(`N=${n}: enrolling`);
    const { dataDir, specs } = await enrolled(n);
    if (scenarios.has('steady')) await steady(n, dataDir, specs);
    if (scenarios.has('storm') && i === sizes.length - 1) await storm(n, dataDir, specs);
    if (scenarios.has('fanout') && (n === 5000 || (i === sizes.length - 1 && !sizes.includes(5000)))) await fanout(dataDir, specs);
    if (scenarios.has('rollout') && (n === 5000 || (i === sizes.length - 1 && !sizes.includes(5000)))) await fullRollout(dataDir, specs);
    if (!values.keep) await rm(path.join(root, `n${n}`), { recursive: true, force: true });
  }
} finally {
  await stopAll();
}
if (!values.keep) await rm(root, { recursive: true, force: true });
