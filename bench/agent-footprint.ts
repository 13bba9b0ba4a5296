/**
 * Benchmark (not a test): the steady-state footprint of one agent process. One real
 * agent with its real probes (a supervised kubelet stand-in, a real containerd, Debian's
 * CNI plugins) at the agent's default 10 s probe interval, connected to a real
 * coordinator. After the machine is Ready and a 20 s warm-up, the agent process's memory
 * (/proc/PID/status: VmRSS, and its split into RssAnon, what the process allocated, and
 * RssFile, mapped files such as the node binary's pages it touched) and CPU time
 * (utime+stime in /proc/PID/stat) are sampled every second; the result is RSS p50/max,
 * anonymous and file-backed p50 in MiB, and the CPU share of one core over the window.
 *
 * Beside it, over the same window, two floors run by the same binary with the same Node
 * flags and environment: bare `node` idling on `-e 'setInterval(() => {}, 1e9)'`, what
 * any agent written for Node costs before its first line runs; and `node` that has
 * loaded the Node built-in modules the agent uses (https, http2, crypto, child_process,
 * ...: AGENT_BUILTINS) and idles, what any Node agent speaking wss and CRI and running
 * probes costs before its own code. After the window, each
 * process's JS heap (process.memoryUsage()) is read through its inspector (SIGUSR1,
 * 127.0.0.1:9229, one process at a time; "n/a" when the port is taken), so the window
 * itself runs without an inspector.
 *
 *   node bench/agent-footprint.ts [--minutes N] [--launch=release|sources]
 *
 * `--launch release` (the default) runs the agent as a node does: the x64 release
 * tarball (test/harness/release.ts builds it with scripts/release), its launcher
 * `bin/nodekeeper-agent` (the release's Node, the shipped Node flags, the bundle), with
 * the unit's Environment= read from agent/systemd/nodekeeper-agent.service so the two
 * cannot drift (NODE_COMPILE_CACHE moved to a fresh dir of the bench's own: a first
 * start, as after an install). `sources` runs the checkout's TypeScript sources with the
 * test Node and no flags, as the test harness does. Appends three rows to bench/results.md
 * (the agent, the two floors); the CPU share is from a box shared with other jobs, whose load
 * average each row gives.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { percentile, record } from './lib/results.ts';
import { startContainerdWithNetwork } from '../test/harness/containerd.ts';
import { REPO, createToken, nkctl, spawnLogged, startCoordinator, waitFor, type Proc } from '../test/harness/processes.ts';
import { agentRelease } from '../test/harness/release.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from '../test/harness/supervised-node.ts';

const WARM_UP_MS = 20_000;
/** The agent's default --probe-interval (agent/src/config.ts); the harness's own is 1 s. */
const DEFAULT_PROBE_INTERVAL_MS = 10_000;
const MIB = 1024 * 1024;

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '3' }, launch: { type: 'string', default: 'release' } } });
const minutes = Number(values.minutes);
if (!Number.isFinite(minutes) || minutes <= 0) throw new RangeError(`--minutes must be a positive number, got ${values.minutes}`);
if (values.launch !== 'release' && values.launch !== 'sources') throw new RangeError(`--launch must be release or sources, got ${values.launch}`);

/** The unit's Environment= assignments, with NODE_COMPILE_CACHE moved to `cacheDir`. */
function unitEnvironment(cacheDir: string): Record<string, string> {
  const unit = readFileSync(path.join(REPO, 'agent/systemd/nodekeeper-agent.service'), 'utf8');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(.*)$/gm)) {
    for (const assignment of (m[1] ?? '').trim().split(/\s+/)) {
      const eq = assignment.indexOf('=');
      if (eq > 0) env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  if (env['NODE_COMPILE_CACHE'] !== undefined) env['NODE_COMPILE_CACHE'] = cacheDir;
  return env;
}

/** The release's agent on a supervised node: the args the harness gives an agent, through the release launcher. */
function startReleaseAgent(launcher: string, n: SupervisedNode, o: { server: string; token: string; caHash: string | null }, env: Record<string, string>): Proc {
  const args = [
    '--server', o.server, '--state-dir', n.stateDir, '--host-root', n.root, '--kubelet-healthz-url', n.kubeletUrl,
    '--cni-bin-dir', '/usr/lib/cni', '--token', o.token, ...(o.caHash ? ['--discovery-ca-hash', o.caHash] : []),
    '--service-manager', 'supervisor', '--probe-interval', String(DEFAULT_PROBE_INTERVAL_MS),
  ];
  n.agent = spawnLogged(launcher, args, `${n.stateDir}.log`, { env });
  return n.agent;
}

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** Resident memory of a process in bytes: all of it (VmRSS), the anonymous part (RssAnon) and the file-backed part (RssFile). */
function residentBytes(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => {
    const v = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
    if (v === undefined) throw new Error(`no ${field} for pid ${pid}`);
    return Number(v) * 1024;
  };
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** utime + stime of a process (its own threads, not its children), in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5)
}

/** What the process really runs: its argv, and the NODE_* variables of its environment. */
function describeProcess(pid: number): { argv: string[]; nodeEnv: string[] } {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return { argv, nodeEnv: env.filter((e) => /^NODE_(OPTIONS|COMPILE_CACHE)=./.test(e)) };
}

const INSPECTOR_PORT = 9229;

/**
 * The Node built-in modules the agent loads to do its job (ws: https, tls, zlib; CRI:
 * http2; probes and installs: child_process, fs/promises; the machine key: crypto;
 * pino: worker_threads; and what they pull in).
 */
const AGENT_BUILTINS = ['https', 'tls', 'http2', 'crypto', 'child_process', 'fs/promises', 'zlib', 'worker_threads', 'assert', 'dgram', 'timers/promises'];

/** The floors: what runs beside the agent, as `node <flags> -e <code>`. */
const FLOORS = [
  { name: 'bare node', code: 'setInterval(() => {}, 1e9)' },
  { name: "node with the agent's built-in modules loaded", code: `for (const m of ${JSON.stringify(AGENT_BUILTINS)}) require(m); setInterval(() => {}, 1e9)` },
] as const;

/** True when nothing listens on 127.0.0.1:`port`. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => (c.destroy(), resolve(false)));
    c.once('error', () => resolve(true));
  });
}

/**
 * process.memoryUsage() of a running node, through the inspector SIGUSR1 opens on
 * 127.0.0.1:9229 (nothing else listening there: checked first). The inspector stays
 * open in that process, so this is for the end of a measurement, and the process must
 * be stopped before the next one is asked.
 */
async function heapOf(pid: number): Promise<NodeJS.MemoryUsage | null> {
  if (!(await portFree(INSPECTOR_PORT))) return null;
  process.kill(pid, 'SIGUSR1');
  const targets = await waitFor('the inspector', async () => {
    try {
      return (await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    } catch {
      return false;
    }
  }, 10_000, 100);
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  try {
    await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)));
    const reply = new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(String(e.data))));
    ws.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true } }));
    const value = (JSON.parse(await reply) as { result?: { result?: { value?: string } } }).result?.result?.value;
    return value === undefined ? null : (JSON.parse(value) as NodeJS.MemoryUsage);
  } finally {
    ws.close();
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'nk-bench-footprint-'));
const release = values.launch === 'release' ? await agentRelease() : null;
const containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
const coord = await startCoordinator(path.join(dir, 'coordinator'));
const node = await makeSupervisedNode(dir, { name: 'node-a', machineId: 'a'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
// A real host has an os-release; the harness's host root does not, and without one the
// host probe falls back to loading systeminformation, which a production node never does.
await copyFile('/etc/os-release', path.join(node.root, 'etc/os-release'));
const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);

const agent = release !== null
  ? startReleaseAgent(path.join(release.agentDir, 'bin/nodekeeper-agent'), node, { server: coord.url, token, caHash: caCertHash }, unitEnvironment(path.join(dir, 'compile-cache')))
  : startNodeAgent(node, { server: coord.url, token, caHash: caCertHash, extraArgs: ['--probe-interval', String(DEFAULT_PROBE_INTERVAL_MS)] });

/** Memory samples of one process over the window. */
interface Samples { rss: number[]; anon: number[]; file: number[] }
const agentMem: Samples = { rss: [], anon: [], file: [] };
/** A floor process: its samples over the same window, CPU share, heap after it. */
interface Floor { readonly name: string; readonly code: string; proc: Proc | null; pid: number; ticks0: number; mem: Samples; cpuPercent: number; heap: NodeJS.MemoryUsage | null; launched: string }
const floors: Floor[] = FLOORS.map((f) => ({ ...f, proc: null, pid: 0, ticks0: 0, mem: { rss: [], anon: [], file: [] }, cpuPercent: Number.NaN, heap: null, launched: '' }));
let cpuPercent = Number.NaN;
let agentHeap: NodeJS.MemoryUsage | null = null;
let launched = '';
let load = '';
try {
  const pid = agent.child.pid;
  if (pid === undefined) throw new Error('the agent did not start');
  // The launcher is sh until its exec: wait for node to take the pid over.
  await waitFor('the launcher to exec node', async () => describeProcess(pid).argv[0]?.endsWith('/node') === true, 10_000, 20);
  const { argv, nodeEnv } = describeProcess(pid);
  // The measured process must be node running the agent, not a shell: the launcher execs node.
  const script = argv.find((a) => a.endsWith('/lib/nodekeeper-agent.mjs') || a.endsWith('agent/bin/nodekeeper-agent'));
  if (!argv[0]?.endsWith('/node') || script === undefined) throw new Error(`pid ${pid} is not node running the agent: ${argv.join(' ')}`);
  const flags = argv.slice(1, argv.indexOf(script));
  launched = release !== null
    ? `release ${release.version} (bundle, launcher flags ${flags.join(' ')}${nodeEnv.some((e) => e.startsWith('NODE_COMPILE_CACHE=')) ? ', NODE_COMPILE_CACHE from a first start' : ''})`
    : 'sources (type stripping), bare node';
  process.stdout.write(`agent pid ${pid}: ${argv.slice(0, argv.indexOf(script) + 1).join(' ')} (${nodeEnv.join(' ') || 'no NODE_* variables'})\n`);
  // The floors: the same node binary, Node flags and environment, running (next to) nothing.
  for (const [i, f] of floors.entries()) {
    f.proc = spawnLogged(argv[0]!, [...flags, '-e', f.code], path.join(dir, `floor-${i}.log`), { env: release !== null ? unitEnvironment(path.join(dir, `floor-${i}-compile-cache`)) : {} });
    if (f.proc.child.pid === undefined) throw new Error(`the floor process "${f.name}" did not start`);
    f.pid = f.proc.child.pid;
    f.launched = `${f.name}: node ${flags.join(' ') || '(no flags)'} -e '${f.code}'${release !== null ? ", the unit's Environment=" : ''}`;
  }

  const phase = async () => JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-a', '-o', 'json'])).stdout).status.phase as string;
  await waitFor('node-a Ready', async () => (await phase()) === 'Ready', 120_000, 500);
  process.stdout.write(`node-a Ready; warming up ${WARM_UP_MS / 1000} s, then sampling for ${minutes} min\n`);
  await sleep(WARM_UP_MS);

  const t0 = performance.now();
  const ticks0 = cpuTicks(pid);
  for (const f of floors) f.ticks0 = cpuTicks(f.pid);
  const end = t0 + minutes * 60_000;
  // Sample on a fixed one-second grid (not "sleep 1 s" after each), so drift cannot stretch the window.
  for (let next = t0; next <= end; next += 1000) {
    await sleep(Math.max(0, next - performance.now()));
    if (agent.child.exitCode !== null) throw new Error(`the agent exited (${agent.child.exitCode}):\n${agent.log().slice(-2000)}`);
    for (const f of floors) if (f.proc!.child.exitCode !== null) throw new Error(`the floor process "${f.name}" exited (${f.proc!.child.exitCode}):\n${f.proc!.log().slice(-2000)}`);
    for (const [p, into] of [[pid, agentMem], ...floors.map((f) => [f.pid, f.mem] as const)] as const) {
      const r = residentBytes(p);
      into.rss.push(r.rss);
      into.anon.push(r.anon);
      into.file.push(r.file);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  cpuPercent = ((cpuTicks(pid) - ticks0) / clockTicks / seconds) * 100;
  for (const f of floors) f.cpuPercent = ((cpuTicks(f.pid) - f.ticks0) / clockTicks / seconds) * 100;
  load = loadavg().map((l) => l.toFixed(1)).join(' ');
  if ((await phase()) !== 'Ready') throw new Error('node-a is no longer Ready: the window did not measure a healthy agent');
  // The heaps after the window (an inspector opened in the window would be measured too).
  for (const f of floors) {
    f.heap = await heapOf(f.pid);
    await f.proc!.stop();
  }
  agentHeap = await heapOf(pid);
} finally {
  for (const f of floors) await f.proc?.stop();
  await stopNode(node);
  await coord.stop();
  await containerd.stop();
  await rm(dir, { recursive: true, force: true });
}

const mib = (b: number) => (b / MIB).toFixed(1);
const memory = (m: Samples, heap: NodeJS.MemoryUsage | null) =>
  `RSS p50 ${mib(percentile(m.rss, 50))} MB, max ${mib(Math.max(...m.rss))} MB (anonymous p50 ${mib(percentile(m.anon, 50))} MB, file-backed p50 ${mib(percentile(m.file, 50))} MB); ` +
  `JS heap used ${heap === null ? 'n/a (inspector port taken)' : `${mib(heap.heapUsed)} MB of ${mib(heap.heapTotal)} MB, external ${mib(heap.external)} MB`}`;
const shared = `load average ${load}, a shared box: the CPU share is indicative`;
record(
  `agent footprint, real probes, default intervals, ${minutes} min, ${launched}`,
  `${memory(agentMem, agentHeap)}; CPU ${cpuPercent.toFixed(2)} % of one core (${agentMem.rss.length} samples; ${shared})`,
);
for (const f of floors) {
  record(
    `agent footprint floor, same window, ${f.launched}`,
    `${memory(f.mem, f.heap)}; CPU ${f.cpuPercent.toFixed(2)} % of one core; the agent above is ${mib(percentile(agentMem.rss, 50) - percentile(f.mem.rss, 50))} MB over it (${shared})`,
  );
}
