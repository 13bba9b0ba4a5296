/**
 * Real processes for cross-process tests and the demo: the coordinator, agents and
 * nkctl, each started from the repository's own launchers with this Node binary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = {
  coordinator: path.join(REPO, 'coordinator/bin/nodekeeper-coordinator'),
  agent: path.join(REPO, 'agent/bin/nodekeeper-agent'),
  nkctl: path.join(REPO, 'coordinator/bin/nkctl'),
};

/** Polls `check` until it returns a value other than undefined/false, or throws after timeoutMs. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface Proc {
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** Sends a signal and waits for the exit; SIGKILL after 5 s. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  log(): string;
}

/**
 * This process's environment without any of the programs' own variables (NODEKEEPER_*,
 * NKCTL_*), plus `extra`: a test configures the coordinator, agents and nkctl through
 * flags and what it passes here, never through whatever the shell that ran it exported
 * (an old NODEKEEPER_CONFIG there would make every program refuse to start).
 */
export function programEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(NODEKEEPER|NKCTL)_/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** Spawns `command`, appending its stderr (and, with `stdoutToLog`, its stdout) to `logFile`. */
export function spawnLogged(command: string, args: readonly string[], logFile: string, opts: { env?: NodeJS.ProcessEnv; stdoutToLog?: boolean } = {}): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: programEnv(opts.env) });
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stderr?.pipe(log);
  if (opts.stdoutToLog === true) child.stdout?.pipe(log);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')));
  return {
    child,
    logFile,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
}

const run = (file: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = {}): Proc =>
  spawnLogged(process.execPath, [file, ...args], logFile, { env });

export interface CoordinatorProc extends Proc {
  readonly url: string;
  readonly port: number;
  readonly caHash: string | null;
  readonly dataDir: string;
  /** nkctl config written by the coordinator (admin credential). */
  readonly nkctlConfig: string;
}

/** The coordinator's first stdout line, `{listening, port, caHash}`; rejects if it exits first. */
export function listeningLine(p: Proc): Promise<{ listening: string; port: number; caHash: string | null }> {
  return new Promise((resolve, reject) => {
    let out = '';
    p.child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        try {
          resolve(JSON.parse(out.slice(0, nl)));
        } catch (err) {
          reject(err);
        }
      }
    });
    void p.exited.then((code) => reject(new Error(`coordinator exited (${code}) before listening:\n${p.log().slice(-2000)}`)));
  });
}

/** Starts a coordinator on 127.0.0.1 and waits for its "listening" line. */
export async function startCoordinator(dataDir: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CoordinatorProc> {
  await mkdir(dataDir, { recursive: true });
  const p = run(BIN.coordinator, ['--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', ...args], path.join(dataDir, '..', `${path.basename(dataDir)}.log`), env);
  const line = await listeningLine(p);
  return { ...p, url: line.listening, port: line.port, caHash: line.caHash, dataDir, nkctlConfig: path.join(dataDir, 'nkctl.yaml') };
}

export interface AgentOptions {
  readonly server: string;
  readonly stateDir: string;
  readonly hostRoot: string;
  readonly kubeletHealthzUrl: string;
  readonly token?: string;
  readonly caHash?: string | null;
  readonly extraArgs?: readonly string[];
}

/** Starts an agent against a host root (the CNI bin dir is Debian's, linked in the root). */
export function startAgent(o: AgentOptions): Proc {
  const args = [
    '--server', o.server,
    '--state-dir', o.stateDir,
    '--host-root', o.hostRoot,
    '--kubelet-healthz-url', o.kubeletHealthzUrl,
    '--cni-bin-dir', '/usr/lib/cni',
    '--probe-interval', '1000',
    ...(o.token === undefined ? [] : ['--token', o.token]),
    ...(o.caHash ? ['--discovery-ca-hash', o.caHash] : []),
    ...(o.server.startsWith('http:') ? ['--insecure'] : []),
    ...(o.extraArgs ?? []),
  ];
  return run(BIN.agent, args, `${o.stateDir}.log`);
}

export interface NkctlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real nkctl with the given config file (as NKCTL_CONFIG). */
export function nkctl(config: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<NkctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN.nkctl, ...args], { env: programEnv({ NKCTL_CONFIG: config, ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs nkctl and returns its stdout; throws with stderr when it exits non-zero. */
export async function nkctlOk(config: string, args: readonly string[]): Promise<string> {
  const r = await nkctl(config, args);
  if (r.code !== 0) throw new Error(`nkctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `nkctl token create -o json` -> the token and the CA hash to pin. */
export async function createToken(config: string, uses = 10): Promise<{ token: string; caCertHash: string | null }> {
  const r = await nkctl(config, ['token', 'create', '--uses', String(uses), '--ttl', '1h', '-o', 'json']);
  if (r.code !== 0) throw new Error(`nkctl token create failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { token: string; caCertHash: string | null };
}
