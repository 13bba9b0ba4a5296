/**
 * What nkctl's tests share: one real coordinator on port 0 with a temp data dir, its CA
 * and admin credential, the API read directly over HTTPS (to compare nkctl's output with
 * what the coordinator serves), and nkctl run as a child process with a clean
 * environment (no NKCTL_* or NODEKEEPER_* from the shell that ran the tests).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { BIN, startCoordinator, type CoordinatorProc } from './processes.ts';
import { ScriptedAgent, type ScriptedAgentOptions } from './scripted-agent.ts';

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ApiAnswer {
  readonly status: number;
  readonly json: any;
}

export interface NkctlCoordinator {
  readonly dir: string;
  readonly coord: CoordinatorProc;
  readonly ca: string;
  readonly caFile: string;
  /** The admin credential the coordinator wrote at its first start. */
  readonly admin: string;
  /** A read-only credential made with nkctl credential create. */
  readonly readOnly: string;
  /** GET (or any method) on the API as admin, unless `token` is given. */
  api(method: string, pathname: string, body?: unknown, token?: string): Promise<ApiAnswer>;
  /** nkctl with a clean environment (PATH to this node, HOME in the temp dir), no connection settings. */
  run(args: readonly string[], opts?: { env?: Record<string, string>; cwd?: string; file?: string; stdin?: string }): Promise<Run>;
  /** nkctl against this coordinator as admin (or with `token`). */
  nk(args: readonly string[], opts?: { token?: string; stdin?: string }): Promise<Run>;
  /** nkctl as admin, started: its stdout so far, and its end (for -w, to act while it watches). */
  start(args: readonly string[]): { stdout(): string; done: Promise<Run> };
  /** A scripted agent enrolled with `token` (or a fresh one), not yet connected. */
  enroll(identity: MachineIdentity, opts?: Omit<ScriptedAgentOptions, 'url' | 'ca' | 'identity'>, token?: string): Promise<ScriptedAgent>;
  stop(): Promise<void>;
}

export const identity = (name: string, i: number, over: Partial<MachineIdentity> = {}): MachineIdentity => ({
  machineId: `${(i % 9) + 1}`.repeat(32), hostname: name, addresses: ['10.0.0.11'], zone: 'zone-a', labels: { role: 'worker', zone: 'zone-a' }, ...over,
});

export async function startNkctlCoordinator(prefix: string, args: readonly string[]): Promise<NkctlCoordinator> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const coord = await startCoordinator(path.join(dir, 'coordinator'), args);
  const caFile = path.join(coord.dataDir, 'ca.crt');
  const ca = await readFile(caFile, 'utf8');
  const admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
  const home = path.join(dir, 'home');
  const nodeDir = path.dirname(process.execPath);

  const api = (method: string, pathname: string, body?: unknown, token = admin) => new Promise<ApiAnswer>((resolve, reject) => {
    const req = https.request(new URL(pathname, coord.url), { method, ca, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: t === '' ? null : JSON.parse(t) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });

  const run: NkctlCoordinator['run'] = (argv, opts = {}) => new Promise((resolve) => {
    const env = { PATH: `${nodeDir}:/usr/bin:/bin`, HOME: home, ...opts.env };
    const child = execFile(opts.file ?? BIN.nkctl, [...argv], { env, cwd: opts.cwd ?? dir, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
    child.stdin?.end(opts.stdin ?? '');
  });
  const nk: NkctlCoordinator['nk'] = (argv, opts = {}) => run([...argv, '--server', coord.url, '--token', opts.token ?? admin, '--ca', caFile], opts.stdin === undefined ? {} : { stdin: opts.stdin });

  const start: NkctlCoordinator['start'] = (argv) => {
    let out = '';
    let err = '';
    const child = spawn(BIN.nkctl, [...argv, '--server', coord.url, '--token', admin, '--ca', caFile], { env: { PATH: `${nodeDir}:/usr/bin:/bin`, HOME: home }, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    // A watch that never ends is killed, so the test fails on its output rather than hangs.
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const done = new Promise<Run>((resolve) => child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: out, stderr: err });
    }));
    return { stdout: () => out, done };
  };

  const made = await api('POST', '/v1/apicredentials', { role: 'read-only', description: 'nkctl tests' });
  if (made.status !== 201) throw new Error(`read-only credential: ${made.status} ${JSON.stringify(made.json)}`);
  await mkdir(home, { recursive: true });

  const enroll: NkctlCoordinator['enroll'] = async (id, opts = {}, token) => {
    if (token === undefined) {
      const t = await api('POST', '/v1/tokens', { ttlSeconds: 600, uses: 1, description: `enroll ${id.hostname}` });
      if (t.status !== 201) throw new Error(`token: ${t.status} ${JSON.stringify(t.json)}`);
      token = t.json.token as string;
    }
    return ScriptedAgent.enroll({ ...opts, url: coord.url, ca, identity: id }, token);
  };

  return {
    dir, coord, ca, caFile, admin, readOnly: made.json.credential as string, api, run, nk, start, enroll,
    async stop() {
      await coord.stop();
      if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
