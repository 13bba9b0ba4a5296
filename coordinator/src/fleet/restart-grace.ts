/**
 * How long a restarted coordinator waits before it may judge a machine Unknown that has
 * not come back yet. After a restart every agent has to redial, and none can be back
 * before admission control has let in the ones in front of it, nor before its own
 * reconnect timer fires: judging silence by the ordinary grace alone marked 255 of 19 k
 * machines Unknown (and 3 of 4 in the demo, whose agents' backoff had grown past its 8 s
 * grace while the coordinator was down). So the first silence after a restart is judged
 * against
 *
 *   grace + machines / admission rate + the longest step an agent's reconnect timer may
 *   be in (its backoff cap, or a Retry-After and its jitter),
 *
 * the earliest instant by which a live agent must have been readmitted if the event loop
 * keeps up. It may not: while the loop is saturated, admission control lets in only a
 * tenth of its rate. So while admission control is still refusing agents the grace is
 * extended, to the last refusal + the longest step + grace (a refused agent is back
 * within its step, and the door has been open since), never beyond the readmission of
 * the whole fleet at that tenth of the rate. Once a machine has been heard from again,
 * its silence is judged by the ordinary grace (liveness.ts). Pure.
 */
import { retryAfterBoundS } from '../gateway/admission.ts';

export interface RestartGraceInput {
  /** Machines the coordinator loaded at start: the fleet that will redial. */
  readonly machines: number;
  /** Upgrades admission control admits per second (`--max-upgrades-per-second`). */
  readonly admissionPerSecond: number;
  /** The agents' reconnect backoff cap (`--reconnect-backoff-cap`; the agent's default is 30 s). */
  readonly agentBackoffCapMs: number;
  /** The ordinary liveness grace (`--liveness-grace`). */
  readonly graceMs: number;
}

/**
 * The grace for a machine's first silence after a restart, from the start; never below
 * the ordinary grace. `refusedSinceStartMs`: when admission control last refused an agent,
 * from the start (extends the grace as the module comment says).
 */
export function restartGraceMs(input: RestartGraceInput, refusedSinceStartMs?: number): number {
  const { machines, admissionPerSecond, agentBackoffCapMs, graceMs } = input;
  if (!(Number.isInteger(machines) && machines >= 0)) throw new RangeError(`machines must be a non-negative integer, got ${machines}`);
  if (!(admissionPerSecond > 0)) throw new RangeError(`admissionPerSecond must be > 0, got ${admissionPerSecond}`);
  if (!(agentBackoffCapMs >= 0)) throw new RangeError(`agentBackoffCapMs must be >= 0, got ${agentBackoffCapMs}`);
  if (!(graceMs > 0)) throw new RangeError(`graceMs must be > 0, got ${graceMs}`);
  // The queue in front of the last agent, at the admission rate (the loop keeping up).
  const readmissionMs = Math.ceil((machines * 1000) / admissionPerSecond);
  // A refused agent waits its Retry-After plus jitter of up to min(cap, Retry-After)
  // (packages/common backoffDelay); otherwise its backoff step, at most the cap.
  const retryAfterMs = retryAfterBoundS(machines, admissionPerSecond) * 1000;
  const longestStepMs = Math.max(agentBackoffCapMs, retryAfterMs + Math.min(agentBackoffCapMs, retryAfterMs));
  const grace = graceMs + readmissionMs + longestStepMs;
  if (refusedSinceStartMs === undefined) return grace;
  if (!(refusedSinceStartMs >= 0)) throw new RangeError(`refusedSinceStartMs must be >= 0, got ${refusedSinceStartMs}`);
  // The trickle admission control keeps open while the loop lags (gateway/admission.ts).
  const trickleReadmissionMs = Math.ceil((machines * 1000) / Math.max(1, admissionPerSecond / 10));
  return Math.max(grace, Math.min(refusedSinceStartMs + longestStepMs + graceMs, graceMs + trickleReadmissionMs + longestStepMs));
}

/** Refusals extend the grace at most this often (each extension is a recomputation). */
const EXTEND_EVERY_MS = 1000;

/**
 * The restart grace of one coordinator start: sized from the machines loaded, extended by
 * admission control's refusals while it runs (at most once every EXTEND_EVERY_MS), final
 * once it has run out. `sizing` absent: the ordinary grace, never extended.
 */
export class RestartGrace {
  private readonly input: RestartGraceInput | null;
  private readonly startedAt: number;
  private grace: number;
  private refusalNotedAt = -Infinity;

  constructor(startedAt: number, machines: number, graceMs: number, sizing?: Omit<RestartGraceInput, 'machines' | 'graceMs'>) {
    this.startedAt = startedAt;
    this.input = sizing === undefined ? null : { machines, graceMs, ...sizing };
    this.grace = this.input === null ? graceMs : restartGraceMs(this.input);
  }

  /** Silence allowed, from the start, to a machine not heard from since. */
  get ms(): number {
    return this.grace;
  }

  /** Admission control turned an agent away at `now`; true when that extended the grace. */
  refused(now: number): boolean {
    if (this.input === null || now - this.refusalNotedAt < EXTEND_EVERY_MS || now - this.startedAt > this.grace) return false;
    this.refusalNotedAt = now;
    const grace = restartGraceMs(this.input, now - this.startedAt);
    if (grace <= this.grace) return false;
    this.grace = grace;
    return true;
  }
}
