/**
 * The remediation policy's persisted state (one row, JSON) and the applied rules.
 * The shapes belong to coordinator/src/remediation; the store keeps them as JSON.
 */
import { AppError } from '@nodekeeper/common';
import type { StoreContext } from './context.ts';
import { parseJson } from './context.ts';

export interface RemediationRecord {
  readonly state: unknown;
  readonly faults: Readonly<Record<string, unknown>>;
  readonly paused: boolean;
  readonly dryRun: boolean;
  readonly pausedMachines: readonly string[];
}

interface Row { state: string; faults: string; paused: number; dry_run: number; paused_machines: string }

export function getRemediation(ctx: StoreContext): RemediationRecord | null {
  const r = ctx.stmt("SELECT * FROM remediation WHERE name = 'cluster'").get() as Row | undefined;
  if (r === undefined) return null;
  return {
    state: parseJson<unknown>(r.state, 'remediation state'),
    faults: parseJson<Record<string, unknown>>(r.faults, 'remediation faults'),
    paused: r.paused === 1,
    dryRun: r.dry_run === 1,
    pausedMachines: parseJson<string[]>(r.paused_machines, 'paused machines'),
  };
}

export function saveRemediation(ctx: StoreContext, rec: RemediationRecord): void {
  ctx.tx(() => {
    ctx.stmt(
      `INSERT INTO remediation (name, state, faults, paused, dry_run, paused_machines, updated_at) VALUES ('cluster', ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET state = excluded.state, faults = excluded.faults, paused = excluded.paused,
         dry_run = excluded.dry_run, paused_machines = excluded.paused_machines, updated_at = excluded.updated_at`,
    ).run(JSON.stringify(rec.state), JSON.stringify(rec.faults), rec.paused ? 1 : 0, rec.dryRun ? 1 : 0, JSON.stringify(rec.pausedMachines), ctx.now());
  });
}

export function listRules(ctx: StoreContext): Array<{ name: string; object: unknown }> {
  return (ctx.stmt('SELECT name, object FROM remediation_rules ORDER BY name').all() as Array<{ name: string; object: string }>).map((r) => ({ name: r.name, object: parseJson<unknown>(r.object, 'remediation rule') }));
}

export function putRule(ctx: StoreContext, name: string, object: unknown): void {
  ctx.tx(() => {
    ctx.stmt('INSERT INTO remediation_rules (name, object, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET object = excluded.object, updated_at = excluded.updated_at').run(name, JSON.stringify(object), ctx.now());
  });
}

export function deleteRule(ctx: StoreContext, name: string): void {
  ctx.tx(() => {
    const r = ctx.stmt('DELETE FROM remediation_rules WHERE name = ?').run(name);
    if (r.changes !== 1) throw new AppError('NK_REMEDIATION_RULE_NOT_FOUND', `no applied remediation rule "${name}"`);
  });
}
