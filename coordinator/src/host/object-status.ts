/**
 * The status a member writes back to the Rollouts and RemediationRules authored for it
 * on the host. Pure. Condition transition times move only when a condition's status
 * does (as meta.SetStatusCondition has it), so an unchanged picture yields the very
 * status the host holds and nothing is written.
 */
import type { RolloutState } from '../rollout/types.ts';
import type { ApiCondition } from '../api/object-meta.ts';
import { canonicalJson } from './cluster-status.ts';
import type { RefusalReason } from './object-pull.ts';

/** A condition in a host object's status: metav1.Condition, as the member's API serves them. */
export type HostCondition = ApiCondition;

/** What the member decided about one host generation. */
export type Acceptance = { readonly accepted: true; readonly message: string } | { readonly accepted: false; readonly reason: RefusalReason; readonly message: string };

type Wanted = Omit<HostCondition, 'lastTransitionTime'>;

/** Conditions with the earlier transition time kept where the status did not change. */
export function withTransitions(wanted: readonly Wanted[], previous: readonly Partial<HostCondition>[] | undefined, now: string): HostCondition[] {
  return wanted.map((c) => {
    const before = previous?.find((p) => p?.type === c.type);
    const keep = before !== undefined && before.status === c.status && typeof before.lastTransitionTime === 'string';
    return { ...c, reason: c.reason.slice(0, 128), message: c.message.slice(0, 4000), lastTransitionTime: keep ? before.lastTransitionTime! : now };
  });
}

const accepted = (a: Acceptance, generation: number): Wanted => a.accepted
  ? { type: 'Accepted', status: 'True', reason: 'Valid', message: a.message, observedGeneration: generation }
  : { type: 'Accepted', status: 'False', reason: a.reason, message: a.message, observedGeneration: generation };

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A host Rollout's status: the verdict, and while the member holds the rollout, its
 * phase, counters and Deployment-style conditions (Progressing, Paused, Failed, Complete).
 */
export function hostRolloutStatus(generation: number, acceptance: Acceptance, state: RolloutState | null, previous: readonly Partial<HostCondition>[] | undefined, now: string) {
  const wanted: Wanted[] = [accepted(acceptance, generation)];
  if (state === null) return { observedGeneration: generation, conditions: withTransitions(wanted, previous, now) };
  const phase = state.phase;
  const cond = (type: string, on: boolean, reason: string): Wanted => ({ type, status: on ? 'True' : 'False', reason, message: on ? state.message : '', observedGeneration: generation });
  const moving = phase === 'Pending' || phase === 'Canary' || phase === 'Soaking' || phase === 'Progressing' || phase === 'RollingBack';
  wanted.push(
    cond('Progressing', moving, moving ? phase : 'NotProgressing'),
    cond('Paused', phase === 'Paused', phase === 'Paused' ? state.reason || 'Paused' : 'NotPaused'),
    cond('Failed', phase === 'Failed' || phase === 'RolledBack', phase === 'Failed' || phase === 'RolledBack' ? state.reason || phase : 'NotFailed'),
    cond('Complete', phase === 'Completed', phase === 'Completed' ? state.reason || 'Completed' : 'NotComplete'),
  );
  const c = state.counters;
  return {
    observedGeneration: generation,
    phase,
    reason: state.reason.slice(0, 128),
    message: state.message.slice(0, 4000),
    progress: `${c.succeeded + c.skipped}/${c.total}`,
    counts: { ...c },
    conditions: withTransitions(wanted, previous, now),
    startedTime: iso(state.startedAt),
    completedTime: iso(state.completedAt),
  };
}

/** A host RemediationRule's status: the verdict, and whether the rule is in force on the member. */
export function hostRuleStatus(generation: number, acceptance: Acceptance, previous: readonly Partial<HostCondition>[] | undefined, now: string) {
  return { observedGeneration: generation, enabled: acceptance.accepted, conditions: withTransitions([accepted(acceptance, generation)], previous, now) };
}

/**
 * True when the host already holds `wanted` (fields the host has beside it, and nulls,
 * do not count: a merge patch of `wanted` would change nothing).
 */
export function sameStatus(current: unknown, wanted: Record<string, unknown>): boolean {
  const cur = (current ?? {}) as Record<string, unknown>;
  const picked = Object.fromEntries(Object.keys(wanted).map((k) => [k, cur[k]]));
  return canonicalJson(picked) === canonicalJson(wanted);
}
