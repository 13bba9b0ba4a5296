/**
 * Liveness of a machine, judged on the coordinator's own clock only: the time since the
 * last message we received. An agent's timestamps are never compared with ours
 * (architecture invariant 8), so a skewed node clock cannot make a node look alive or
 * dead. Modelled on the Kubernetes node lifecycle controller, which marks a Node
 * Unknown when its kubelet has not renewed its Lease within the grace period
 * (node-monitor-grace-period, 40 s by default):
 * https://kubernetes.io/docs/concepts/architecture/nodes/#node-controller
 *
 *   Pending   enrolled, never heard from
 *   Ready     heard within the grace period, and the node reports healthy
 *   NotReady  heard within the grace period, but kubelet, runtime or CNI is unhealthy
 *   Unknown   silent for longer than the grace period
 *
 * Hysteresis: leaving Unknown takes `recoverMs` of unbroken contact, so a flapping
 * connection holds the machine at Unknown instead of flapping it. Pure.
 */
import type { Liveness, LivenessState } from '../model/machine.ts';

export interface LivenessInput {
  /** Coordinator clock. */
  readonly now: number;
  /** When we last received any message from the agent (our clock), or null if never. */
  readonly lastMessageAt: number | null;
  /** Start of the current unbroken run of contact (our clock), or null while there is none. */
  readonly contactSince: number | null;
  /** From nodeHealth(report): true healthy, false unhealthy, null not known yet. */
  readonly nodeHealthy: boolean | null;
  readonly nodeReason: string;
  readonly nodeMessage: string;
  /**
   * False while nothing was heard since the coordinator (re)started: silence is then
   * judged against `restartGraceMs`. Absent means heard (the ordinary grace).
   */
  readonly heardSinceStart?: boolean;
}

export interface LivenessConfig {
  /** Silence longer than this makes a machine Unknown. */
  readonly graceMs: number;
  /** Unbroken contact needed to leave Unknown. */
  readonly recoverMs: number;
  /**
   * Silence allowed, counted from the coordinator's start, before a machine not heard
   * from since is Unknown (restart-grace.ts sizes it to the fleet's readmission); never
   * less than graceMs. Absent: graceMs.
   */
  readonly restartGraceMs?: number;
}

/** The grace that applies to this silence: the restart grace until the machine is heard again. */
export function graceFor(input: Pick<LivenessInput, 'heardSinceStart'>, cfg: LivenessConfig): number {
  return input.heardSinceStart === false ? Math.max(cfg.graceMs, cfg.restartGraceMs ?? cfg.graceMs) : cfg.graceMs;
}

/** Kubernetes' node-monitor-grace-period, and a recovery window of a few heartbeats. */
export const defaultLivenessConfig: LivenessConfig = Object.freeze({ graceMs: 40_000, recoverMs: 15_000 });

/** Which state may follow which; anything else is a bug in nextLiveness. */
export const LIVENESS_TRANSITIONS: Readonly<Record<LivenessState, readonly LivenessState[]>> = Object.freeze({
  Pending: ['Ready', 'NotReady', 'Unknown'],
  Ready: ['NotReady', 'Unknown'],
  NotReady: ['Ready', 'Unknown'],
  Unknown: ['Ready', 'NotReady'],
});

/** The liveness of a machine just enrolled. */
export function initialLiveness(now: number): Liveness {
  return { state: 'Pending', since: now, reason: 'AwaitingFirstReport', message: 'enrolled; no message received yet' };
}

/**
 * The next liveness from the previous one and what we know now. `since` moves only when
 * the state changes; reason and message may be refreshed within a state.
 */
export function nextLiveness(prev: Liveness, input: LivenessInput, cfg: LivenessConfig): Liveness {
  if (!(cfg.graceMs > 0)) throw new RangeError(`graceMs must be > 0, got ${cfg.graceMs}`);
  if (!(cfg.recoverMs >= 0)) throw new RangeError(`recoverMs must be >= 0, got ${cfg.recoverMs}`);
  const next = judge(prev, input, cfg);
  if (next.state === prev.state) {
    return next.reason === prev.reason && next.message === prev.message ? prev : { ...next, since: prev.since };
  }
  if (!LIVENESS_TRANSITIONS[prev.state].includes(next.state)) {
    throw new Error(`liveness: no transition ${prev.state} -> ${next.state}`); // unreachable by construction
  }
  return { ...next, since: input.now };
}

/**
 * The earliest instant at which nextLiveness can answer differently from `current` (its
 * last answer for these inputs) with no new input: the grace end (lastMessageAt + the
 * grace for this silence, graceFor; Unknown just after it) and, while Unknown with unbroken contact, the recovery
 * end (contactSince + recoverMs). Infinity when neither lies ahead (never heard from, or
 * silent past the grace already). Conservative: nothing changes before the answer, and
 * re-judging exactly at it may find nothing changed yet (Unknown comes strictly after the
 * grace end), so a caller that re-judges then asks again. The fleet view's deadline queue
 * (fleet-view.ts) re-judges a machine only when this instant has passed.
 */
export function nextLivenessChangeAt(current: Liveness, input: Pick<LivenessInput, 'now' | 'lastMessageAt' | 'contactSince' | 'heardSinceStart'>, cfg: LivenessConfig): number {
  const { now, lastMessageAt, contactSince } = input;
  if (lastMessageAt === null) return Infinity;
  const graceEnd = lastMessageAt + graceFor(input, cfg);
  let at = graceEnd >= now ? graceEnd : Infinity;
  if (current.state === 'Unknown' && contactSince !== null) {
    const recovered = contactSince + cfg.recoverMs;
    if (recovered > now && recovered < at) at = recovered;
  }
  return at;
}

type Judgement = Omit<Liveness, 'since'>;

function judge(prev: Liveness, input: LivenessInput, cfg: LivenessConfig): Judgement {
  const { now, lastMessageAt, contactSince } = input;
  if (lastMessageAt === null) {
    if (prev.state === 'Pending') return { state: 'Pending', reason: 'AwaitingFirstReport', message: 'enrolled; no message received yet' };
    return { state: 'Unknown', reason: 'AgentSilent', message: 'no message received from the agent' };
  }
  const graceMs = graceFor(input, cfg);
  if (now - lastMessageAt > graceMs) {
    // The message is fixed (no running duration) so a silent machine is not rewritten every tick.
    const since = input.heardSinceStart === false ? ' since the coordinator started' : '';
    return { state: 'Unknown', reason: 'AgentSilent', message: `no message for more than ${seconds(graceMs)}${since}` };
  }
  if (prev.state === 'Unknown') {
    if (contactSince === null) return prev; // heard within grace, but the contact is gone again
    if (now - contactSince < cfg.recoverMs) {
      return { state: 'Unknown', reason: 'ContactRecovering', message: `in contact again; waiting for ${seconds(cfg.recoverMs)} of steady contact` };
    }
  }
  if (input.nodeHealthy === true) return { state: 'Ready', reason: 'AgentHeartbeat', message: 'agent is reporting and the node is healthy' };
  if (input.nodeHealthy === false) return { state: 'NotReady', reason: 'NodeUnhealthy', message: `${input.nodeReason}: ${input.nodeMessage}` };
  if (prev.state === 'Pending') return { state: 'Pending', reason: 'AwaitingFirstReport', message: 'agent connected; no report received yet' };
  return { state: 'NotReady', reason: 'NodeHealthUnknown', message: `${input.nodeReason}: ${input.nodeMessage}` };
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

/** What the coordinator tracks about contact with one agent, on its own clock. */
export interface Contact {
  readonly lastMessageAt: number | null;
  readonly contactSince: number | null;
  /** False until the first message after our start (the restart grace applies until then). */
  readonly heardSinceStart: boolean;
}

/**
 * Contact after a coordinator restart: silence is counted from our start, not from a
 * persisted last-seen time, so a restart (however long the coordinator was down) cannot
 * mark the fleet Unknown; and until the agent is heard again it is judged against the
 * restart grace (LivenessConfig.restartGraceMs, sized by restart-grace.ts to the time the
 * whole fleet needs to be readmitted), not the ordinary one. Machines never heard from
 * stay never heard from.
 */
export function contactAfterRestart(persisted: { liveness: Liveness; lastSeenAt: number | null }, startedAt: number): Contact {
  const neverHeard = persisted.liveness.state === 'Pending' && persisted.lastSeenAt === null;
  return { lastMessageAt: neverHeard ? null : startedAt, contactSince: null, heardSinceStart: false };
}

/**
 * Contact after a message arrives at `now`. A gap longer than the grace period breaks
 * the run of contact, even on one connection (it had stalled).
 */
export function contactOnMessage(c: Contact, now: number, cfg: Pick<LivenessConfig, 'graceMs'>): Contact {
  const broken = c.contactSince === null || c.lastMessageAt === null || now - c.lastMessageAt > cfg.graceMs;
  return { lastMessageAt: now, contactSince: broken ? now : c.contactSince, heardSinceStart: true };
}

/**
 * Contact after a hello (a connection welcomed) at `now`: contact as for any message, but
 * not yet "heard since start". In a reconnect storm on a busy coordinator, an agent whose
 * welcome came too late gives up on that connection and queues at the door again; had
 * its hello ended the restart grace, its wait there would be judged by the ordinary grace
 * (the 5,000-agent storm over wss marked 11 machines Unknown that way). The first message
 * after the welcome (the agent's full report follows it at once) ends the restart grace;
 * until then a silence is judged against it, from the hello.
 */
export function contactOnHello(c: Contact, now: number, cfg: Pick<LivenessConfig, 'graceMs'>): Contact {
  return { ...contactOnMessage(c, now, cfg), heardSinceStart: c.heardSinceStart };
}

/** Contact after the connection closed: the run of contact ends; the last message stays. */
export function contactOnDisconnect(c: Contact): Contact {
  return { lastMessageAt: c.lastMessageAt, contactSince: null, heardSinceStart: c.heardSinceStart };
}
