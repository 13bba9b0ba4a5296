/**
 * Rollouts: their spec and the planner's state, persisted after every step so a
 * restarted coordinator resumes exactly where it was. The shapes belong to
 * coordinator/src/rollout; the store keeps them as JSON.
 */
import { AppError } from '@nodekeeper/common';
import type { StoreContext } from './context.ts';
import { parseJson } from './context.ts';
import type { RolloutRecord } from '../model/records.ts';

interface RolloutRow { name: string; spec: string; state: string; created_at: number; updated_at: number; uid: string | null; resource_version: number; generation: number }

const toRollout = (r: RolloutRow): RolloutRecord => ({
  name: r.name,
  spec: parseJson<unknown>(r.spec, 'rollout spec'),
  state: parseJson<unknown>(r.state, 'rollout state'),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  meta: { uid: r.uid ?? '', resourceVersion: String(r.resource_version), generation: r.generation, createdAt: r.created_at },
});

/** Creates a rollout (NK_ROLLOUT_EXISTS when the name is taken). */
export function createRollout(ctx: StoreContext, r: { name: string; spec: unknown; state: unknown }): RolloutRecord {
  return ctx.tx(() => {
    if (getRollout(ctx, r.name) !== null) throw new AppError('NK_ROLLOUT_EXISTS', `rollout "${r.name}" already exists`);
    const now = ctx.now();
    ctx.stmt('INSERT INTO rollouts (name, spec, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(r.name, JSON.stringify(r.spec), JSON.stringify(r.state), now, now);
    return getRollout(ctx, r.name)!;
  });
}

export function getRollout(ctx: StoreContext, name: string): RolloutRecord | null {
  const row = ctx.stmt('SELECT * FROM rollouts WHERE name = ?').get(name) as RolloutRow | undefined;
  return row === undefined ? null : toRollout(row);
}

export function listRollouts(ctx: StoreContext): RolloutRecord[] {
  return (ctx.stmt('SELECT * FROM rollouts ORDER BY created_at, name').all() as RolloutRow[]).map(toRollout);
}

/** Saves the planner's state (NK_ROLLOUT_NOT_FOUND). */
export function saveRolloutState(ctx: StoreContext, name: string, state: unknown): void {
  ctx.tx(() => {
    const r = ctx.stmt('UPDATE rollouts SET state = ?, updated_at = ? WHERE name = ?').run(JSON.stringify(state), ctx.now(), name);
    if (r.changes !== 1) throw new AppError('NK_ROLLOUT_NOT_FOUND', `rollout "${name}" not found`);
  });
}

/**
 * Replaces a rollout's spec (the caller checked what may change) and moves its
 * generation by one; NK_ROLLOUT_NOT_FOUND. The state is left alone: the controller
 * reads the new spec from its next step.
 */
export function updateRolloutSpec(ctx: StoreContext, name: string, spec: unknown): RolloutRecord {
  return ctx.tx(() => {
    const r = ctx.stmt('UPDATE rollouts SET spec = ?, generation = generation + 1, updated_at = ? WHERE name = ?').run(JSON.stringify(spec), ctx.now(), name);
    if (r.changes !== 1) throw new AppError('NK_ROLLOUT_NOT_FOUND', `rollout "${name}" not found`);
    return getRollout(ctx, name)!;
  });
}

/** Deletes a rollout's row (the caller checked it is finished); NK_ROLLOUT_NOT_FOUND. Its commands stay as history. */
export function deleteRollout(ctx: StoreContext, name: string): void {
  ctx.tx(() => {
    const r = ctx.stmt('DELETE FROM rollouts WHERE name = ?').run(name);
    if (r.changes !== 1) throw new AppError('NK_ROLLOUT_NOT_FOUND', `rollout "${name}" not found`);
  });
}
