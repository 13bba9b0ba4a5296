/**
 * A Rollout's status conditions, with a Deployment's meanings
 * (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status),
 * derived purely from the planner's persisted state: nothing else is stored, so they can
 * never disagree with the phase.
 *
 * - Progressing: True while the rollout moves machines (or has completed: Deployment's
 *   NewReplicaSetAvailable); Unknown while paused (DeploymentPaused); False once it
 *   failed or was rolled back (ProgressDeadlineExceeded's place).
 * - Paused: True while paused (by `nkctl rollout pause`, `spec.paused` or the planner).
 * - Failed: True once the failure budget stopped it (phase Failed), and while a failed
 *   rollout is rolled back.
 * - Complete: True once every selected machine runs the target (phase Completed).
 *
 * lastTransitionTime is the time of the phase change that set the status, as far as
 * the state keeps it (`since`, `resumedAt`, `completedAt`, `createdAt`).
 */
import type { RolloutPhase, RolloutState } from './types.ts';

export const ROLLOUT_CONDITION_TYPES = ['Progressing', 'Paused', 'Failed', 'Complete'] as const;
export type RolloutConditionType = (typeof ROLLOUT_CONDITION_TYPES)[number];

/** metav1.Condition, with times in epoch milliseconds. */
export interface RolloutCondition {
  readonly type: RolloutConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: number;
  readonly observedGeneration: number;
}

const MOVING: ReadonlySet<RolloutPhase> = new Set(['Pending', 'Canary', 'Soaking', 'Progressing', 'RollingBack']);

/** The state fields conditions are derived from (the whole RolloutState fits). */
export type ConditionInput = Pick<RolloutState, 'phase' | 'reason' | 'message' | 'since' | 'createdAt' | 'completedAt' | 'resumedAt' | 'counters'>;

/**
 * The four conditions, in a fixed order, for a rollout in `state` whose spec has
 * `generation` (the controller reads the spec of every step, so status always observes it).
 */
export function rolloutConditions(state: ConditionInput, generation: number): RolloutCondition[] {
  const { phase, since } = state;
  const c = (type: RolloutConditionType, status: RolloutCondition['status'], reason: string, message: string, at: number): RolloutCondition => ({
    type, status, reason, message, lastTransitionTime: at, observedGeneration: generation,
  });
  // A rollback after a failure keeps the failure visible: Failed stays True while it runs.
  const failed = phase === 'Failed' || ((phase === 'RollingBack' || phase === 'RolledBack') && state.counters.failed > 0 && state.reason !== 'RollbackRequested');
  const progressing = MOVING.has(phase)
    ? c('Progressing', 'True', phase === 'RollingBack' ? 'RollingBack' : 'RolloutProgressing', state.message, since)
    : phase === 'Completed'
      ? c('Progressing', 'True', 'RolloutComplete', state.message, since)
      : phase === 'Paused'
        ? c('Progressing', 'Unknown', 'RolloutPaused', state.message, since)
        : c('Progressing', 'False', phase === 'RolledBack' ? 'RolledBack' : state.reason, state.message, since);
  return [
    progressing,
    phase === 'Paused'
      ? c('Paused', 'True', state.reason, state.message, since)
      : c('Paused', 'False', state.resumedAt === null ? 'NotPaused' : 'Resumed', '', state.resumedAt ?? state.createdAt),
    failed
      ? c('Failed', 'True', phase === 'Failed' ? state.reason : 'Failed', phase === 'Failed' ? state.message : `${state.counters.failed} machine(s) failed`, phase === 'Failed' ? since : state.completedAt ?? since)
      : c('Failed', 'False', 'NoFailure', '', state.createdAt),
    phase === 'Completed'
      ? c('Complete', 'True', 'RolloutComplete', state.message, state.completedAt ?? since)
      : c('Complete', 'False', phase === 'RolledBack' ? 'RolledBack' : 'NotComplete', '', phase === 'RolledBack' ? since : state.createdAt),
  ];
}
