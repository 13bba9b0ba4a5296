/**
 * A real containerd for tests and the demo: Debian's /usr/bin/containerd with its own
 * root, state, socket and CNI dirs, no systemd needed. Its sockets go under a short
 * runtime dir of their own (runtime-dir.ts), not under `dir`: a socket path must fit
 * sun_path, and `dir` may sit in a checkout at any depth.
 *
 *   const ctd = await startContainerd({ dir, cniConfDir, cniBinDir });
 *   ... dial ctd.socket over CRI ...
 *   await ctd.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CNI_CONFIG_NAME, DEBIAN_CNI_BIN_DIR, bridgeConflist } from './host-root.ts';
import { assertSocketPath, makeRuntimeDir } from './runtime-dir.ts';

export const CONTAINERD_BIN = '/usr/bin/containerd';

export interface ContainerdOptions {
  /** A directory of its own: config, root, state and log go under it (the sockets do not: see above). */
  readonly dir: string;
  readonly cniConfDir: string;
  readonly cniBinDir: string;
  /** How long to wait for the socket to answer (default 20 s: a cold start on a busy machine). */
  readonly startTimeoutMs?: number;
}

export interface RunningContainerd {
  /** Absolute path of the gRPC (and CRI) socket. */
  readonly socket: string;
  readonly pid: number;
  /** containerd's own log, for assertions' messages. */
  readonly logFile: string;
  /**
   * SIGTERM (containerd removes its socket), then SIGKILL after a grace period; or
   * `{ kill: true }`: SIGKILL at once, leaving a stale socket behind as a crash does.
   * Resolves once the process is gone. Idempotent.
   */
  stop(opts?: { kill?: boolean }): Promise<void>;
}

/** Plugins a probe test never needs; leaving them out makes start-up faster and quieter. */
const DISABLED_PLUGINS = [
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

/**
 * The config.toml the harness writes (exported so a failing test can print it). The
 * sockets go in `socketDir`: startContainerd passes a short runtime dir; tests that
 * want the socket at a host root's run/containerd leave it as `dir` (a short tmp dir).
 */
export function containerdConfig(dir: string, cniConfDir: string, cniBinDir: string, socketDir = dir): string {
  const q = (s: string): string => JSON.stringify(s); // TOML basic strings share JSON's escapes
  return [
    'version = 2',
    `root = ${q(path.join(dir, 'root'))}`,
    `state = ${q(path.join(dir, 'state'))}`,
    `disabled_plugins = [${DISABLED_PLUGINS.map(q).join(', ')}]`,
    '',
    '[grpc]',
    `  address = ${q(path.join(socketDir, 'containerd.sock'))}`,
    '',
    '[ttrpc]',
    `  address = ${q(path.join(socketDir, 'containerd.sock.ttrpc'))}`,
    '',
    '[metrics]',
    '  address = ""',
    '',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(path.join(dir, 'opt'))}`,
    '',
    '[plugins."io.containerd.grpc.v1.cri".cni]',
    `  bin_dir = ${q(cniBinDir)}`,
    `  conf_dir = ${q(cniConfDir)}`,
    '',
  ].join('\n');
}

/** Starts containerd and waits until its socket accepts connections. */
export async function startContainerd(opts: ContainerdOptions): Promise<RunningContainerd> {
  try {
    await access(CONTAINERD_BIN, constants.X_OK);
  } catch (err) {
    throw new Error(`${CONTAINERD_BIN} is missing: install Debian's containerd package (scripts/test does it)`, { cause: err });
  }
  await mkdir(opts.dir, { recursive: true });
  const configFile = path.join(opts.dir, 'config.toml');
  const logFile = path.join(opts.dir, 'containerd.log');
  // Removed after a clean stop; after a SIGKILL the stale socket stays (tests probe it) until the process exits.
  const sockets = makeRuntimeDir('ctd');
  const socket = path.join(sockets.dir, 'containerd.sock');
  assertSocketPath(`${socket}.ttrpc`);
  await writeFile(configFile, containerdConfig(opts.dir, opts.cniConfDir, opts.cniBinDir, sockets.dir));

  const log = await open(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(CONTAINERD_BIN, ['--config', configFile], { stdio: ['ignore', log.fd, log.fd] });
  } finally {
    // The child holds its own copy of the descriptor.
    await log.close();
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let spawnError: Error | null = null;
  child.once('error', (err) => { spawnError = err; });

  let stopping: Promise<void> | undefined;
  const stop = (how: { kill?: boolean } = {}): Promise<void> => (stopping ??= halt(how.kill === true));
  const halt = async (kill: boolean): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (kill) {
      child.kill('SIGKILL');
      await exited;
      return;
    }
    child.kill('SIGTERM');
    const gone = await exitsWithin(exited, 10_000);
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
    sockets.remove();
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
  for (;;) {
    if (spawnError !== null || child.exitCode !== null || child.signalCode !== null) {
      const tail = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`containerd exited during start-up (${spawnError ?? `code ${child.exitCode}`}); log tail:\n${tail.slice(-3000)}`);
    }
    if (await answers(socket)) break;
    if (Date.now() > deadline) {
      await stop();
      const tail = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`containerd socket ${socket} did not answer in time; log tail:\n${tail.slice(-3000)}`);
    }
    await sleep(100);
  }
  return { socket, pid: child.pid ?? -1, logFile, stop };
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socket);
    conn.once('connect', () => { conn.destroy(); resolve(true); });
    conn.once('error', () => { conn.destroy(); resolve(false); });
  });
}

/** True when `exited` settles within `ms`; the grace timer never outlives the wait. */
async function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  const grace = new AbortController();
  try {
    return await Promise.race([exited.then(() => true), sleep(ms, false, { signal: grace.signal })]);
  } finally {
    grace.abort();
  }
}

/**
 * A containerd whose CRI has a valid network config (Debian's plugins), so it reports
 * NetworkReady=true, as a node's runtime does once its CNI is installed. Used by the
 * fleet tests and the demo, where several host roots share this one runtime.
 */
export async function startContainerdWithNetwork(dir: string): Promise<RunningContainerd> {
  const netDir = path.join(dir, 'net.d');
  await mkdir(netDir, { recursive: true });
  await writeFile(path.join(netDir, CNI_CONFIG_NAME), bridgeConflist());
  return startContainerd({ dir, cniConfDir: netDir, cniBinDir: DEBIAN_CNI_BIN_DIR });
}
