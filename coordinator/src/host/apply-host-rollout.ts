/**
 * What a changed spec of a host-made Rollout does to the member's rollout.
 *
 * TODO(merge, issue 13 "objects"): the create-or-update path (`apply` of a Rollout:
 * strategy, drain, allowDowngrade and paused may change; packages, reboot and selector
 * may not) replaces the body of this function; host/object-sync.ts calls only this.
 * Until then every change is refused, naming the first field that differs, and nothing
 * changes locally.
 */
import { AppError } from '@nodekeeper/common';
import { canonicalJson } from './cluster-status.ts';
import { validateRollout } from '../rollout/spec.ts';
import type { RolloutRecord } from '../store/types.ts';

const IMMUTABLE = ['packages', 'reboot', 'selector'] as const;

/** Applies `object` (a valid Rollout) over the stored `current`; throws NK_ROLLOUT_FIELD_IMMUTABLE. */
export function applyHostRollout(object: unknown, current: RolloutRecord): void {
  const r = validateRollout(object);
  if (!r.ok) throw new AppError('NK_ROLLOUT_INVALID', `invalid Rollout: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  const stored = current.spec as Record<string, unknown>;
  const next = r.spec as unknown as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(stored), ...Object.keys(next)])].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const changed = fields.find((f) => canonicalJson(stored[f] ?? null) !== canonicalJson(next[f] ?? null));
  if (changed === undefined) return;
  const why = (IMMUTABLE as readonly string[]).includes(changed) ? 'is immutable: create another Rollout' : 'cannot be changed on this member yet';
  throw new AppError('NK_ROLLOUT_FIELD_IMMUTABLE', `rollout "${current.name}": spec.${changed} ${why}`, { context: { field: `spec.${changed}` } });
}

const rank = (field: string) => {
  const i = (IMMUTABLE as readonly string[]).indexOf(field);
  return i === -1 ? IMMUTABLE.length : i;
};
