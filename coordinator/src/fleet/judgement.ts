/**
 * One machine's judgement at an instant: its next liveness and conditions from what we
 * know of it, whether its served state changed, and the next instant at which the answer
 * can change with no new input (when the fleet view's deadline queue re-judges it). Pure:
 * the fleet view adds the events, the logs and the writes.
 */
import type { NodeReport } from '@nodekeeper/protocol';
import type { Condition, Liveness } from '../model/machine.ts';
import { deriveConditions, nextConditionsChangeAt, nodeHealth } from './conditions.ts';
import { nextLiveness, nextLivenessChangeAt, type LivenessConfig } from './liveness.ts';

/** What a judgement reads of a machine. */
export interface Judged {
  readonly report: NodeReport | null;
  readonly liveness: Liveness;
  readonly conditions: readonly Condition[];
  readonly lastMessageAt: number | null;
  readonly contactSince: number | null;
  /** False until heard from after a coordinator restart (liveness.ts, the restart grace); absent: heard. */
  readonly heardSinceStart?: boolean;
}

export interface Judgement {
  readonly liveness: Liveness;
  readonly conditions: Condition[];
  /** The liveness state or any condition's status, reason or message moved. */
  readonly changed: boolean;
  /** Re-judge at or after this instant; Infinity when only a new input can change it. */
  readonly nextAt: number;
}

export function judgeMachine(m: Judged, now: number, cfg: LivenessConfig): Judgement {
  const health = nodeHealth(m.report);
  const contact = { now, lastMessageAt: m.lastMessageAt, contactSince: m.contactSince, heardSinceStart: m.heardSinceStart !== false };
  const liveness = nextLiveness(m.liveness, { ...contact, nodeHealthy: health.healthy, nodeReason: health.reason, nodeMessage: health.message }, cfg);
  const conditions = deriveConditions(m.conditions, m.report, liveness, now);
  const changed = liveness.state !== m.liveness.state || !sameConditions(conditions, m.conditions);
  const nextAt = Math.min(nextLivenessChangeAt(liveness, contact, cfg), nextConditionsChangeAt(m.report, liveness, now));
  return { liveness, conditions, changed, nextAt };
}

/** Same type, status, reason and message, in order (lastTransitionTime follows status). */
export function sameConditions(a: readonly Condition[], b: readonly Condition[]): boolean {
  return a.length === b.length && a.every((c, i) => {
    const d = b[i];
    return d !== undefined && c.type === d.type && c.status === d.status && c.reason === d.reason && c.message === d.message;
  });
}
