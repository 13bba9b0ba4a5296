/**
 * What applying a Rollout over an existing one does (docs/declarative.md, "Objects"):
 * the same spec again changes nothing; `packages`, `reboot` and `selector` never change
 * after creation (they decided which machines and versions the rollout is about);
 * `strategy`, `drain`, `allowDowngrade` and `paused` may, and the controller uses them
 * from its next step. Pure: the controller persists the result.
 */
import { AppError } from '@nodekeeper/common';
import { waveEnds } from './candidates.ts';
import { sameJson } from './same-state.ts';
import type { RolloutSpec } from './spec.ts';
import type { OperatorRequest, RolloutState } from './types.ts';

export const IMMUTABLE_ROLLOUT_FIELDS = ['packages', 'reboot', 'selector'] as const;

export type SpecUpdate =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'update'; readonly spec: RolloutSpec; readonly state: RolloutState; readonly request: OperatorRequest | null };

/**
 * Plans replacing `current.spec` by `next` for rollout `name`. Throws
 * NK_ROLLOUT_FIELD_IMMUTABLE naming the first immutable field that differs.
 * The batches are cut again from the new strategy over the same candidates and canaries
 * (the planner finds the running wave from what is settled, so a new cut is safe
 * mid-rollout); the canaries chosen at creation stay. A change of `paused` becomes the
 * operator request that does the same, when the phase allows it.
 */
export function planSpecUpdate(name: string, current: { readonly spec: RolloutSpec; readonly state: RolloutState }, next: RolloutSpec): SpecUpdate {
  for (const field of IMMUTABLE_ROLLOUT_FIELDS) {
    if (!sameJson(current.spec[field] ?? null, next[field] ?? null)) {
      throw new AppError('NK_ROLLOUT_FIELD_IMMUTABLE', `rollout "${name}": spec.${field} cannot change after creation (it chose the machines and versions); create a new rollout instead`, { context: { rollout: name, field: `spec.${field}` } });
    }
  }
  if (sameJson(current.spec, next)) return { kind: 'unchanged' };
  const cutAgain = !sameJson(current.spec.strategy.batches ?? null, next.strategy.batches ?? null) || current.spec.strategy.batchSize !== next.strategy.batchSize;
  const state = cutAgain ? { ...current.state, waves: waveEnds(next.strategy, current.state.canaryCount, current.state.candidates.length) } : current.state;
  const wasPaused = current.spec.paused === true;
  const paused = next.paused === true;
  const request: OperatorRequest | null = paused === wasPaused ? null : paused ? 'pause' : 'resume';
  return { kind: 'update', spec: next, state, request };
}
