/**
 * Install durations for /metrics. An install's result carries no timings, so the
 * coordinator times what it sees: the whole command from sending to its result, and
 * each step between the agent's progress frames (a frame names the step it starts; the
 * last step ends at the result). Step times therefore include the network's delay, and
 * a coordinator restart mid-install loses that install's steps (the whole is still timed
 * from the stored send time).
 */
import { INSTALL_STEPS } from '@nodekeeper/protocol';
import type { CommandRecord } from '../model/commands.ts';

const INSTALL_KIND = 'package.install';
/** Open installs tracked at most (a command that never finishes is dropped, oldest first). */
const MAX_TRACKED = 10_000;
const STEPS: ReadonlySet<string> = new Set(INSTALL_STEPS);

export interface InstallObserver {
  whole(labels: { package: string; outcome: string }, seconds: number): void;
  step(labels: { package: string; step: string }, seconds: number): void;
}

/** The outcome label of a finished install: the result's outcome, else failed or timed-out. */
export function installOutcome(c: Pick<CommandRecord, 'state' | 'result'>): string {
  const outcome = c.result?.['outcome'];
  if (typeof outcome === 'string' && ['installed', 'already-installed', 'rolled-back', 'refused'].includes(outcome)) return outcome;
  return c.state === 'TimedOut' ? 'timed-out' : 'failed';
}

export class InstallTiming {
  readonly #steps = new Map<string, Array<{ step: string; at: number }>>();
  readonly #observe: InstallObserver;

  constructor(observe: InstallObserver) {
    this.#observe = observe;
  }

  /** A progress frame for a command (any kind: only installs are kept at finish). */
  progress(commandId: string, step: string, at: number): void {
    let seen = this.#steps.get(commandId);
    if (seen === undefined) {
      if (this.#steps.size >= MAX_TRACKED) this.#steps.delete(this.#steps.keys().next().value!);
      seen = [];
      this.#steps.set(commandId, seen);
    }
    // A step repeated (a message within the same step) keeps its first time.
    if (seen.at(-1)?.step !== step) seen.push({ step: STEPS.has(step) ? step : 'other', at });
  }

  /** A finished command: observes an install's whole time and its steps' times. */
  finished(c: Pick<CommandRecord, 'id' | 'kind' | 'params' | 'state' | 'result' | 'sentAt' | 'finishedAt'>): void {
    const seen = this.#steps.get(c.id) ?? [];
    this.#steps.delete(c.id);
    if (c.kind !== INSTALL_KIND || c.finishedAt === null) return;
    const pkg = typeof c.params['package'] === 'string' ? c.params['package'] : 'unknown';
    if (c.sentAt !== null) this.#observe.whole({ package: pkg, outcome: installOutcome(c) }, Math.max(0, c.finishedAt - c.sentAt) / 1000);
    for (const [i, s] of seen.entries()) {
      const end = seen[i + 1]?.at ?? c.finishedAt;
      this.#observe.step({ package: pkg, step: s.step }, Math.max(0, end - s.at) / 1000);
    }
  }

  /** Installs being timed now (for tests). */
  get tracked(): number {
    return this.#steps.size;
  }
}
