/**
 * The converger's memory (coordinator/src/convergence): the rollouts it created, the
 * targets RolloutController.create refused, and each package's last recorded state.
 * Everything else it decides from the CPV, the fleet and the rollouts themselves.
 */
import type { ConvergenceRolloutRow } from '../model/records.ts';
import type { StoreContext } from './context.ts';

export type { ConvergenceRolloutRow } from '../model/records.ts';

export interface ConvergenceRefusal {
  readonly package: string;
  readonly track: string;
  readonly key: string;
  readonly code: string;
  readonly message: string;
  readonly at: number;
}

interface Row { name: string; package: string; track: string; generation: number; version: string; spec_key: string; paused_by_us: number; created_at: number }

export function listConvergenceRollouts(ctx: StoreContext): ConvergenceRolloutRow[] {
  return (ctx.stmt('SELECT * FROM convergence_rollouts ORDER BY created_at, name').all() as Row[]).map((r) => ({
    name: r.name, package: r.package, track: r.track, generation: r.generation, version: r.version, specKey: r.spec_key, pausedByUs: r.paused_by_us === 1, createdAt: r.created_at,
  }));
}

export function addConvergenceRollout(ctx: StoreContext, r: Omit<ConvergenceRolloutRow, 'pausedByUs' | 'createdAt'>): void {
  ctx.stmt('INSERT OR REPLACE INTO convergence_rollouts (name, package, track, generation, version, spec_key, paused_by_us, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)')
    .run(r.name, r.package, r.track, r.generation, r.version, r.specKey, ctx.now());
}

export function removeConvergenceRollout(ctx: StoreContext, name: string): void {
  ctx.stmt('DELETE FROM convergence_rollouts WHERE name = ?').run(name);
}

export function setPausedByUs(ctx: StoreContext, name: string, paused: boolean): void {
  ctx.stmt('UPDATE convergence_rollouts SET paused_by_us = ? WHERE name = ?').run(paused ? 1 : 0, name);
}

export function listRefusals(ctx: StoreContext): ConvergenceRefusal[] {
  return ctx.stmt('SELECT package, track, key, code, message, at FROM convergence_refusals ORDER BY at').all() as ConvergenceRefusal[];
}

export function addRefusal(ctx: StoreContext, r: Omit<ConvergenceRefusal, 'at'>): void {
  ctx.stmt('INSERT OR REPLACE INTO convergence_refusals (package, track, key, code, message, at) VALUES (?, ?, ?, ?, ?, ?)').run(r.package, r.track, r.key, r.code, r.message, ctx.now());
}

export function packageStates(ctx: StoreContext): Map<string, { state: string; reason: string }> {
  const rows = ctx.stmt('SELECT package, state, reason FROM convergence_packages').all() as { package: string; state: string; reason: string }[];
  return new Map(rows.map((r) => [r.package, { state: r.state, reason: r.reason }]));
}

export function setPackageState(ctx: StoreContext, pkg: string, state: string, reason: string): void {
  ctx.stmt('INSERT INTO convergence_packages (package, state, reason, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (package) DO UPDATE SET state = excluded.state, reason = excluded.reason, updated_at = excluded.updated_at')
    .run(pkg, state, reason, ctx.now());
}
