/**
 * The servers the fleet benchmarks measure, behind one shape: the coordinator (started
 * from its real launcher) and the bare baseline. Numbers come from /proc (CPU, RSS) and
 * from what each server exposes (/metrics, /stats).
 */
import { execFileSync, spawn } from 'node:child_process';
import { COORDINATOR_NODE_FLAGS } from '../../scripts/lib/node-flags.ts';
import { readdirSync, readFileSync } from 'node:fs';
import tls from 'node:tls';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startCoordinator, type CoordinatorProc } from '../../test/harness/processes.ts';
import { REPO } from './results.ts';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const statFields = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
};

/** The process and its children alive now: a coordinator's gateway workers (--gateway-workers) count as its own. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (Number(statFields(Number(d))[1]) === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU time (user + system) the process and its children alive now have used, in ms. */
export function cpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const fields = statFields(p);
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // a child gone meanwhile
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** Resident set size of the process and its children alive now, in bytes. */
export function rssBytes(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // a child gone meanwhile
    }
  }
  return kb * 1024;
}

export interface ServerStats {
  /** Event-loop delay since the previous call (the histogram is reset by each read). */
  readonly loopP99Ms: number;
  readonly loopMaxMs: number;
  /** SQLite rows written since start. */
  readonly rowsWritten: number;
  readonly connected: number;
  /** Machines by liveness state (coordinator only). */
  readonly states: Readonly<Record<string, number>>;
  /** Agent frames received since start. */
  readonly framesReceived: number;
}

export interface BenchServer {
  readonly kind: 'coordinator' | 'baseline';
  readonly url: string;
  /** The CA agents pin (wss), or null for plain ws. */
  readonly caPem: string | null;
  readonly pid: number;
  stats(): Promise<ServerStats>;
  stop(signal?: NodeJS.Signals): Promise<unknown>;
}

/** Parses Prometheus text into "name{labels}" -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const sum = (m: Map<string, number>, prefix: string) => [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

/** CAs this process's own TLS clients (fetch of /metrics and the API) trust, besides the defaults. */
const trusted = new Set<string>();
function trust(caPem: string): void {
  if (trusted.has(caPem)) return;
  trusted.add(caPem);
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), ...trusted]);
}

/** The coordinator, over plain ws (`--insecure`) or, with `wss`, its own TLS and generated CA. */
export async function coordinatorServer(dataDir: string, args: readonly string[], wss = false, env: NodeJS.ProcessEnv = {}): Promise<BenchServer & { proc: CoordinatorProc }> {
  // The release launcher's Node flags first, so a later one (--coordinator-node-options) wins.
  const nodeOptions = `${COORDINATOR_NODE_FLAGS} ${env['NODE_OPTIONS'] ?? process.env['NODE_OPTIONS'] ?? ''}`.trim();
  const proc = await startCoordinator(dataDir, [...(wss ? [] : ['--insecure']), ...args], { ...env, NODE_OPTIONS: nodeOptions });
  const caPem = wss ? readFileSync(path.join(dataDir, 'ca.crt'), 'utf8') : null;
  if (caPem !== null) trust(caPem);
  return {
    kind: 'coordinator',
    proc,
    caPem,
    url: proc.url,
    pid: proc.child.pid!,
    async stats() {
      const m = parseMetrics(await (await fetch(new URL('/metrics', proc.url))).text());
      // The default metrics carry no prefix (coordinator/src/metrics.ts), so stock dashboards work.
      const p = 'nodejs_eventloop_lag_';
      const states: Record<string, number> = {};
      for (const s of ['Pending', 'Ready', 'NotReady', 'Unknown']) states[s] = m.get(`nodekeeper_machines{state="${s}"}`) ?? 0;
      return {
        loopP99Ms: (m.get(`${p}p99_seconds`) ?? NaN) * 1000,
        loopMaxMs: (m.get(`${p}max_seconds`) ?? NaN) * 1000,
        rowsWritten: sum(m, 'nodekeeper_store_rows_written_total'),
        connected: m.get('nodekeeper_connected_agents') ?? 0,
        states,
        framesReceived: sum(m, 'nodekeeper_agent_frames_received_total'),
      };
    },
    stop: (signal) => proc.stop(signal),
  };
}

/**
 * The bare baseline (bench/baseline-server.ts) in `processes` processes sharing its port
 * (1: one process, as it always was); CPU and RSS are the process tree's, /stats the totals.
 * With `tlsDir` (a coordinator's data dir's pki/) it serves wss with that coordinator's serving
 * certificate, so agents pinning its CA connect to either.
 */
export async function baselineServer(dir: string, heartbeatIntervalMs: number, processes = 1, tlsDir?: string): Promise<BenchServer> {
  await mkdir(dir, { recursive: true });
  const caPem = tlsDir === undefined ? null : readFileSync(path.join(tlsDir, 'ca.crt'), 'utf8');
  if (caPem !== null) trust(caPem); // the stats URL is https with one process
  const tlsArgs = tlsDir === undefined ? [] : ['--tls-dir', tlsDir];
  const child = spawn(process.execPath, [path.join(REPO, 'bench/baseline-server.ts'), '--db', path.join(dir, 'baseline.db'), '--heartbeat-interval', String(heartbeatIntervalMs), '--processes', String(processes), ...tlsArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const { url, statsUrl } = await new Promise<{ url: string; statsUrl: string }>((resolve, reject) => {
    child.stdout.once('data', (c: Buffer) => {
      const line = JSON.parse(c.toString('utf8').split('\n')[0]!) as { listening: string; stats: string };
      resolve({ url: line.listening, statsUrl: line.stats });
    });
    child.once('exit', (code) => reject(new Error(`baseline server exited ${code}`)));
  });
  return {
    kind: 'baseline',
    caPem,
    url,
    pid: child.pid!,
    async stats() {
      const s = (await (await fetch(statsUrl)).json()) as { rowsWritten: number; frames: number; connections: number; loopP99Ms: number; loopMaxMs: number };
      return { loopP99Ms: s.loopP99Ms, loopMaxMs: s.loopMaxMs, rowsWritten: s.rowsWritten, connected: s.connections, states: {}, framesReceived: s.frames };
    },
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      await exited;
    },
  };
}
