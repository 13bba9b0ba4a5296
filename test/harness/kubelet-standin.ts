/**
 * A stand-in for the kubelet binary, honouring the part of its contract nodekeeper
 * probes: `kubelet --version` prints `Kubernetes v<version>`, and the daemon, started
 * with the real flags `--healthz-bind-address` and `--healthz-port`, answers
 * GET /healthz with 200 `ok`. There is no kubelet binary on the test machine.
 *
 * As a script:  NK_KUBELET_STANDIN_VERSION=1.31.2 node kubelet-standin.ts --version
 *               node kubelet-standin.ts --healthz-bind-address=127.0.0.1 --healthz-port=0
 * The daemon prints `healthz listening on http://<addr>:<port>/healthz` once it serves
 * (so port 0 can be used), and exits on SIGTERM or SIGINT.
 *
 * As a module: installKubeletStandin() writes `<hostRoot>/usr/bin/kubelet`, a #!/bin/sh
 * wrapper with the version baked in; startKubeletStandin() runs that wrapper as a daemon.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** The env var the wrapper sets; `--standin-version=X` overrides it. */
export const VERSION_ENV = 'NK_KUBELET_STANDIN_VERSION';
/** `fail`: healthz answers 500 (a version that installs but never becomes healthy). */
export const HEALTHZ_ENV = 'NK_KUBELET_STANDIN_HEALTHZ';
/** Milliseconds after its start during which healthz answers 500 (a kubelet slow to come up). */
export const STARTUP_ENV = 'NK_KUBELET_STANDIN_STARTUP_MS';
/** A path: healthz answers 500 until that file exists (a test decides the moment a kubelet comes up); latched per process. */
export const READY_FILE_ENV = 'NK_KUBELET_STANDIN_READY_FILE';
/** `1`: the daemon exits 1 at once (a version that cannot start: its unit ends failed); `--version` still answers. */
export const EXIT_ENV = 'NK_KUBELET_STANDIN_EXIT_AT_START';
const SCRIPT = fileURLToPath(import.meta.url);
/** This file: a copy of it runs the stand-in where the checkout is not visible (a service with PrivateTmp=, a checkout under /tmp). */
export const STANDIN_SCRIPT = SCRIPT;
const LISTENING = /healthz listening on (http:\/\/\S+:(\d+)\/healthz)/;

/** Reads `--name=value` or `--name value`. */
function flag(argv: readonly string[], name: string): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg === `--${name}`) return argv[i + 1];
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return undefined;
}

async function main(argv: readonly string[]): Promise<void> {
  const version = flag(argv, 'standin-version') ?? process.env[VERSION_ENV] ?? '0.0.0';
  if (argv.includes('--version') || argv.includes('--version=true')) {
    process.stdout.write(`Kubernetes v${version.replace(/^v/, '')}\n`);
    return;
  }
  if (process.env[EXIT_ENV] === '1') {
    process.stderr.write('kubelet stand-in: failed to start (NK_KUBELET_STANDIN_EXIT_AT_START)\n');
    process.exit(1);
  }
  const address = flag(argv, 'healthz-bind-address') ?? '127.0.0.1';
  const port = Number(flag(argv, 'healthz-port') ?? '10248');
  const upAt = Date.now() + Number(process.env[STARTUP_ENV] ?? 0);
  const readyFile = process.env[READY_FILE_ENV];
  // Latched: once this process saw the file it stays up, so removing the file holds only
  // the NEXT start (a restart, a rollback to this version) and not the running kubelet.
  let sawReadyFile = false;
  const server = http.createServer((req, res) => {
    if (readyFile !== undefined && !sawReadyFile) sawReadyFile = existsSync(readyFile);
    const held = Date.now() < upAt || (readyFile !== undefined && !sawReadyFile);
    if (req.method === 'GET' && req.url?.split('?')[0] === '/healthz' && (process.env[HEALTHZ_ENV] === 'fail' || held)) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('[-]standin failed: healthz check failed\n');
    } else if (req.method === 'GET' && req.url?.split('?')[0] === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
    }
  });
  server.listen(port, address, () => {
    const actual = (server.address() as { port: number }).port;
    process.stdout.write(`healthz listening on http://${address}:${actual}/healthz\n`);
  });
  const shutdown = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

export interface StandinOptions {
  readonly version: string;
  readonly healthz?: 'ok' | 'fail';
  readonly startupMs?: number;
  /** An absolute path (as the kubelet sees it): healthz fails, after each start, until this file exists. */
  readonly readyFile?: string;
  /** The daemon exits 1 at start (a version whose unit fails). */
  readonly exitAtStart?: boolean;
  /** Where the node sees a Node binary and a copy of STANDIN_SCRIPT (default: this process's, in the checkout). */
  readonly runtime?: { readonly node: string; readonly script: string };
}

/**
 * Writes an executable `<hostRoot>/usr/bin/kubelet` that runs this stand-in with
 * `version` (and, with `healthz: 'fail'`, a failing healthz; with `startupMs`, a healthz
 * that fails for that long after each start; with `readyFile`, one that fails until the
 * file exists; with `exitAtStart`, a daemon that exits 1 at once) baked in. Returns the wrapper's path.
 */
export async function installKubeletStandin(hostRoot: string, opts: StandinOptions): Promise<string> {
  if (!/^v?\d+\.\d+\.\d+[0-9A-Za-z.+-]*$/.test(opts.version)) throw new TypeError(`not a kubelet version: ${opts.version}`);
  const file = path.join(hostRoot, 'usr/bin/kubelet');
  await mkdir(path.dirname(file), { recursive: true });
  const sq = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  await writeFile(
    file,
    `#!/bin/sh\n# nodekeeper test stand-in for the kubelet (test/harness/kubelet-standin.ts)\n` +
      `${opts.healthz === 'fail' ? `${HEALTHZ_ENV}=fail ` : ''}${opts.startupMs === undefined ? '' : `${STARTUP_ENV}=${Math.floor(opts.startupMs)} `}${opts.readyFile === undefined ? '' : `${READY_FILE_ENV}=${sq(opts.readyFile)} `}${opts.exitAtStart === true ? `${EXIT_ENV}=1 ` : ''}${VERSION_ENV}=${sq(opts.version)} exec ${sq(opts.runtime?.node ?? process.execPath)} --disable-warning=ExperimentalWarning ${sq(opts.runtime?.script ?? SCRIPT)} "$@"\n`,
  );
  await chmod(file, 0o755);
  return file;
}

export interface RunningKubeletStandin {
  /** The healthz URL, with the actual port. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, SIGKILL if it lingers; resolves when it is gone. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs `<hostRoot>/usr/bin/kubelet` (see installKubeletStandin) as a daemon on
 * 127.0.0.1:`port` (0: any free port) and waits until it serves.
 */
export async function startKubeletStandin(hostRoot: string, opts: { port: number }): Promise<RunningKubeletStandin> {
  const file = path.join(hostRoot, 'usr/bin/kubelet');
  const child = spawn(file, ['--healthz-bind-address=127.0.0.1', `--healthz-port=${opts.port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-4000); });

  const listening = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer): void => {
      out += c.toString('utf8');
      const m = LISTENING.exec(out);
      if (m !== null && m[1] !== undefined && m[2] !== undefined) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve({ url: m[1], port: Number(m[2]) });
      }
    };
    child.stdout.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`kubelet stand-in exited (${code ?? signal}) before serving: ${stderr}`)));
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const gone = await exitsWithin(exited, 5000);
      if (!gone) {
        child.kill('SIGKILL');
        await exited;
      }
    })());
  return { ...listening, pid: child.pid ?? -1, stop };
}

if (import.meta.main) await main(process.argv.slice(2));

/** True when `exited` settles within `ms`; the grace timer never outlives the wait. */
async function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  const grace = new AbortController();
  try {
    return await Promise.race([exited.then(() => true), sleep(ms, false, { signal: grace.signal })]);
  } finally {
    grace.abort();
  }
}
