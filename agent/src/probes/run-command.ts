/**
 * Running node binaries (systemctl, kubelet --version, CNI plugins) the careful way:
 * a timeout, a clean environment, bounded output. Probes take a CommandRunner so
 * tests can feed real output samples to the parsers without a systemd.
 */
import { spawn } from 'node:child_process';

export interface CommandOptions {
  readonly timeoutMs: number;
  /** The whole environment of the child; nothing is inherited from the agent. */
  readonly env?: Readonly<Record<string, string>>;
  /** Written to stdin, which is then closed. Without it stdin is closed at once. */
  readonly input?: string;
  /** Per stream; the child is killed when it writes more. Default 64 KiB. */
  readonly maxBytes?: number;
}

export interface CommandResult {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  /** True when output passed maxBytes and the child was killed. */
  readonly truncated: boolean;
  /** Set when the child could not be started (ENOENT, EACCES, ...). */
  readonly spawnError: NodeJS.ErrnoException | null;
}

export type CommandRunner = (file: string, args: readonly string[], opts: CommandOptions) => Promise<CommandResult>;

/** A PATH for children that need one (a #!/bin/sh wrapper calling other tools). */
export const MINIMAL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const DEFAULT_MAX_BYTES = 64 * 1024;

/** Runs `file` with `args`; resolves (never rejects) with what happened. */
export const runCommand: CommandRunner = (file, args, opts) => {
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${opts.timeoutMs}`);
  }
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  return new Promise((resolve) => {
    const child = spawn(file, [...args], {
      env: { PATH: MINIMAL_PATH, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let truncated = false;
    let spawnError: NodeJS.ErrnoException | null = null;

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);

    const collect = (chunks: Buffer[], chunk: Buffer, used: number): number => {
      const room = maxBytes - used;
      if (room > 0) chunks.push(chunk.subarray(0, room));
      if (chunk.length > room && !truncated) {
        truncated = true;
        child.kill('SIGKILL');
      }
      return used + chunk.length;
    };
    child.stdout.on('data', (chunk: Buffer) => { outBytes = collect(out, chunk, outBytes); });
    child.stderr.on('data', (chunk: Buffer) => { errBytes = collect(err, chunk, errBytes); });
    // A child that exits without reading stdin makes our write fail with EPIPE: not a fault.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');

    child.on('error', (e: NodeJS.ErrnoException) => { spawnError = e; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        truncated,
        spawnError,
      });
    });
  });
};

/** One line describing how a command ended, for probe messages. */
export function describeFailure(file: string, r: CommandResult): string {
  if (r.spawnError !== null) return `${file}: ${r.spawnError.code ?? 'spawn failed'}: ${r.spawnError.message}`;
  if (r.timedOut) return `${file} did not finish in time and was killed`;
  if (r.truncated) return `${file} wrote more output than allowed and was killed`;
  if (r.signal !== null) return `${file} was killed by ${r.signal}`;
  const detail = firstLine(r.stderr) || firstLine(r.stdout);
  return `${file} exited with code ${r.code}${detail === '' ? '' : `: ${detail}`}`;
}

/** First non-empty line, trimmed and bounded. */
export function firstLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  return line.slice(0, 300);
}
