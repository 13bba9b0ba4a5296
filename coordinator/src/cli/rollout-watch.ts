/**
 * `nkctl rollout status NAME -w`: poll the rollout until it stops (Completed,
 * RolledBack, Failed, or Paused), showing it live. On a terminal the status block is
 * redrawn in place; otherwise (a CI log, a pipe) one summary line and the machines that
 * changed are appended per change, so the log reads as a history. A coordinator that
 * restarts mid-watch is waited for (a few jittered retries), not reported as a failure.
 */
import { AppError, backoffDelay } from '@nodekeeper/common';
import { CliErrorCode } from './cli-errors.ts';
import { TERMINAL_ROLLOUT_PHASES as TERMINAL_PHASES, type Rollout as RolloutObject } from '@nodekeeper/api';
import { machineChanges, renderStatus, summaryLine } from './rollout-views.ts';

export interface WatchDeps {
  readonly fetch: () => Promise<RolloutObject>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly write: (text: string) => void;
  /** Notes about retries go to stderr, not into the status. */
  readonly warn: (text: string) => void;
  /** stdout is a terminal: redraw in place. */
  readonly tty: boolean;
  readonly now: () => number;
  readonly intervalMs: number;
  readonly random?: () => number;
}

/** Consecutive failed polls tolerated while the coordinator is unreachable. */
const MAX_RETRIES = 10;
const RETRYABLE: ReadonlySet<string> = new Set([CliErrorCode.connectionRefused, CliErrorCode.unreachable, CliErrorCode.timeout]);

/** Stopped: nothing more happens without an operator (terminal, or Paused). */
export function isStopped(r: RolloutObject): boolean {
  const phase = r.status?.phase ?? 'Pending';
  return TERMINAL_PHASES.has(phase) || phase === 'Paused';
}

/** What decides whether a redraw or a line is due: phase, batch, counts and machine phases. */
function fingerprint(r: RolloutObject): string {
  const s = r.status;
  if (s === undefined) return 'none';
  return JSON.stringify([s.phase, s.reason, s.batch, s.counts, s.machines.map((m) => [m.name, m.package, m.phase, m.step])]);
}

/** Move the cursor up over `text` and clear to the end of the screen. */
function eraseBlock(text: string): string {
  const lines = text.split('\n').length - 1;
  return lines > 0 ? `\x1b[${lines}A\r\x1b[J` : '\r\x1b[J';
}

/** Poll until the rollout stops; resolves to its last state. */
export async function watchRollout(deps: WatchDeps): Promise<RolloutObject> {
  if (!(deps.intervalMs > 0)) throw new RangeError(`poll interval must be positive, got ${deps.intervalMs}`);
  let last: RolloutObject | null = null;
  let lastPrint = '';
  let lastBlock = '';
  let failures = 0;
  for (;;) {
    let current: RolloutObject;
    try {
      current = await deps.fetch();
      failures = 0;
    } catch (err) {
      if (!(err instanceof AppError) || !RETRYABLE.has(err.code) || failures >= MAX_RETRIES) throw err;
      const delay = backoffDelay({ baseMs: deps.intervalMs, capMs: 10_000 }, failures, deps.random);
      failures += 1;
      deps.warn(`warning: ${err.message} (${err.code}); retrying in ${(delay / 1000).toFixed(1)}s (${failures}/${MAX_RETRIES})\n`);
      await deps.sleep(delay);
      continue;
    }
    const print = fingerprint(current);
    if (deps.tty) {
      // Ages change every second, so a terminal is redrawn on every poll.
      const text = renderStatus(current, deps.now());
      deps.write((lastBlock === '' ? '' : eraseBlock(lastBlock)) + text);
      lastBlock = text;
    } else if (last === null) {
      deps.write(renderStatus(current, deps.now()));
    } else if (print !== lastPrint) {
      deps.write(summaryLine(current) + machineChanges(last, current));
    }
    last = current;
    lastPrint = print;
    if (isStopped(current)) return current;
    await deps.sleep(deps.intervalMs);
  }
}
