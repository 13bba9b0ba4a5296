/**
 * Reboot operations: one row per reboot of a machine, its step and facts as JSON (the
 * shapes belong to coordinator/src/reboot). Written on every step, so a coordinator
 * killed at any step resumes it from here.
 */
import type { StoreContext } from './context.ts';
import { parseJson } from './context.ts';

export interface RebootRecord {
  readonly id: string;
  readonly machine: string;
  /** Who asked: `rollout/<name>` or `remediation/<machine>`. */
  readonly owner: string;
  readonly state: unknown;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
}

interface RebootRow { id: string; machine: string; owner: string; state: string; created_at: number; updated_at: number; finished_at: number | null }

const toRecord = (r: RebootRow): RebootRecord => ({
  id: r.id,
  machine: r.machine,
  owner: r.owner,
  state: parseJson<unknown>(r.state, 'reboot state'),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  finishedAt: r.finished_at,
});

/** Creates a reboot unless one with that id exists (ids are deterministic); returns the stored one. */
export function createReboot(ctx: StoreContext, r: { id: string; machine: string; owner: string; state: unknown }): RebootRecord {
  return ctx.tx(() => {
    const existing = getReboot(ctx, r.id);
    if (existing !== null) return existing;
    const now = ctx.now();
    ctx.stmt('INSERT INTO reboots (id, machine, owner, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(r.id, r.machine, r.owner, JSON.stringify(r.state), now, now);
    return getReboot(ctx, r.id)!;
  });
}

export function getReboot(ctx: StoreContext, id: string): RebootRecord | null {
  const row = ctx.stmt('SELECT * FROM reboots WHERE id = ?').get(id) as RebootRow | undefined;
  return row === undefined ? null : toRecord(row);
}

/** Reboots not finished yet, oldest first. */
export function openReboots(ctx: StoreContext): RebootRecord[] {
  return (ctx.stmt('SELECT * FROM reboots WHERE finished_at IS NULL ORDER BY created_at, id').all() as RebootRow[]).map(toRecord);
}

/** Every reboot of one owner, oldest first. */
export function rebootsByOwner(ctx: StoreContext, owner: string): RebootRecord[] {
  return (ctx.stmt('SELECT * FROM reboots WHERE owner = ? ORDER BY created_at, id').all(owner) as RebootRow[]).map(toRecord);
}

/** Saves a reboot's state; `finished` marks it done (it is then never resumed). */
export function saveReboot(ctx: StoreContext, id: string, state: unknown, finished: boolean): void {
  ctx.tx(() => {
    const now = ctx.now();
    ctx.stmt('UPDATE reboots SET state = ?, updated_at = ?, finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?').run(JSON.stringify(state), now, finished ? 1 : 0, now, id);
  });
}
