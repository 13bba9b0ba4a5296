/**
 * `nkctl rollout status NAME -w`: follow the rollout with the server-side watch
 * (`GET /v1/rollouts?watch=1&name=NAME`, cli/watch-follow.ts) until it stops
 * (Completed, RolledBack, Failed, or Paused). On a terminal the view is redrawn in place,
 * fitted to the terminal (cli/rollout-layout.ts) and once a second for the ages and the
 * soak timer; otherwise (a CI log, a pipe) one summary line and the machines that changed
 * are appended per change, so the log reads as a history. A dropped connection or a
 * restarting coordinator is reconnected to, from the last version seen.
 *
 * A coordinator that serves no watch (older than it: its list has no resourceVersion) is
 * polled every `intervalMs` instead, as nkctl did before.
 */
import { AppError, backoffDelay } from '@nodekeeper/common';
import type { WatchLine } from './api-client.ts';
import { CliErrorCode } from './cli-errors.ts';
import { layoutRolloutStatus } from './rollout-layout.ts';
import { TERMINAL_PHASES, type RolloutObject } from './rollout-objects.ts';
import { machineChanges, renderStatus, summaryLine } from './rollout-views.ts';
import { follow } from './watch-follow.ts';

export interface WatchDeps {
  /** GET the rollout (its 404 is the answer for a name that does not exist). */
  readonly fetch: () => Promise<RolloutObject>;
  /** GET /v1/rollouts?name=NAME, with the list's resourceVersion. */
  readonly list?: () => Promise<{ readonly items: readonly RolloutObject[]; readonly metadata?: { readonly resourceVersion?: string } }>;
  /** The watch of that list from a version. */
  readonly watch?: (resourceVersion: string, onEvent: (e: WatchLine) => void) => Promise<void>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly write: (text: string) => void;
  /** Notes about retries go to stderr, not into the status. */
  readonly warn: (text: string) => void;
  /** stdout is a terminal: redraw in place. */
  readonly tty: boolean;
  /** The terminal's size (rows, columns); 24x80 when it is not known. */
  readonly size?: () => { rows: number; columns: number };
  readonly now: () => number;
  /** Poll interval for a coordinator without watch. */
  readonly intervalMs: number;
  readonly random?: () => number;
  /** How often a terminal view is redrawn with nothing new (ages, soak timer); 0: never. */
  readonly redrawMs?: number;
}

/** Consecutive failed polls tolerated while the coordinator is unreachable. */
const MAX_RETRIES = 10;
const RETRYABLE: ReadonlySet<string> = new Set([CliErrorCode.connectionRefused, CliErrorCode.unreachable, CliErrorCode.timeout]);

/** Stopped: nothing more happens without an operator (terminal, or Paused). */
export function isStopped(r: RolloutObject): boolean {
  const phase = r.status?.phase ?? 'Pending';
  return TERMINAL_PHASES.has(phase) || phase === 'Paused';
}

/** What decides whether a line is due off a terminal: phase, batch, counts and machine phases. */
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

/** Shows successive states of one rollout: redrawn on a terminal, appended off one. */
class View {
  #last: RolloutObject | null = null;
  #lastPrint = '';
  #lastBlock = '';
  readonly #deps: WatchDeps;
  constructor(deps: WatchDeps) {
    this.#deps = deps;
  }

  get last(): RolloutObject | null {
    return this.#last;
  }

  show(r: RolloutObject): void {
    const d = this.#deps;
    const print = fingerprint(r);
    // The same state again (a list after a reconnect) redraws nothing; the timer keeps ages fresh.
    if (d.tty) {
      if (print !== this.#lastPrint) this.#draw(r);
    } else if (this.#last === null) d.write(renderStatus(r, d.now()));
    else if (print !== this.#lastPrint) d.write(summaryLine(r) + machineChanges(this.#last, r));
    this.#last = r;
    this.#lastPrint = print;
  }

  /** Redraws the last state (ages move). */
  redraw(): void {
    if (this.#deps.tty && this.#last !== null) this.#draw(this.#last);
  }

  #draw(r: RolloutObject): void {
    const d = this.#deps;
    const { rows, columns } = d.size?.() ?? { rows: 24, columns: 80 };
    // One row short of the terminal: a block as tall as the screen scrolls it by a line
    // when its last newline is written, and the next redraw could not reach its top.
    const lines = layoutRolloutStatus(r, d.now(), Math.max(1, rows - 1), Math.max(20, columns));
    const text = lines.map((l) => `${l}\n`).join('');
    d.write((this.#lastBlock === '' ? '' : eraseBlock(this.#lastBlock)) + text);
    this.#lastBlock = text;
  }
}

/** Follows the rollout until it stops; resolves to its last state. */
export async function watchRollout(deps: WatchDeps): Promise<RolloutObject> {
  if (!(deps.intervalMs > 0)) throw new RangeError(`poll interval must be positive, got ${deps.intervalMs}`);
  const view = new View(deps);
  const first = await deps.fetch();
  view.show(first);
  if (isStopped(first)) return first;
  if (deps.list !== undefined && deps.watch !== undefined) {
    const probe = await deps.list();
    if (probe.metadata?.resourceVersion !== undefined) {
      const timer = deps.tty && (deps.redrawMs ?? 1000) > 0 ? setInterval(() => view.redraw(), deps.redrawMs ?? 1000) : null;
      timer?.unref();
      try {
        await follow<RolloutObject>({
          list: deps.list,
          initial: probe,
          watch: deps.watch,
          nameOf: (r) => r.metadata.name,
          // It may have stopped between the first GET and the list.
          onList: (items) => {
            items.forEach((r) => view.show(r));
            return items.some(isStopped);
          },
          onChange: (type, r) => {
            if (type === 'DELETED') throw new AppError('NK_ROLLOUT_NOT_FOUND', `rollout "${r.metadata.name}" was deleted while it was watched`);
            view.show(r);
            return isStopped(r);
          },
          sleep: deps.sleep,
          warn: deps.warn,
          ...(deps.random === undefined ? {} : { random: deps.random }),
        });
      } finally {
        if (timer !== null) clearInterval(timer);
      }
      return view.last ?? first;
    }
  }
  return poll(deps, view);
}

/** For a coordinator without server-side watch: GET every intervalMs. */
async function poll(deps: WatchDeps, view: View): Promise<RolloutObject> {
  let failures = 0;
  for (;;) {
    await deps.sleep(deps.intervalMs);
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
    view.show(current);
    if (isStopped(current)) return current;
  }
}
