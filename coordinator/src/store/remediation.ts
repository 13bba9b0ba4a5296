/**
 * The remediation policy's persisted state and the applied rules. The cluster row holds
 * the storm guard's state and the switches; each machine's ladder and its fault state
 * are rows of their own, so a step writes only the machines it moved. The shapes belong
 * to coordinator/src/remediation; the store keeps them as JSON.
 */
import { AppError } from '@nodekeeper/common';
import type { StoreContext } from './context.ts';
import { parseJson } from './context.ts';

export interface RemediationRecord {
  /** The policy's RemediationState ({ machines, storm }), or null before its first step. */
  readonly state: unknown;
  /** Machine -> its FaultState. */
  readonly faults: ReadonlyMap<string, unknown>;
  readonly paused: boolean;
  readonly dryRun: boolean;
  readonly pausedMachines: readonly string[];
}

/** The cluster row: what is not per machine. */
export interface RemediationCluster {
  /** The storm guard's StormState; null before the policy's first step. */
  readonly storm: unknown;
  readonly paused: boolean;
  readonly dryRun: boolean;
  readonly pausedMachines: readonly string[];
}

/** What one save writes; parts left out are left as they are. */
export interface RemediationChanges {
  readonly cluster?: RemediationCluster;
  /** Machine -> its MachineRemediation; null deletes the machine's row. */
  readonly machines?: Iterable<readonly [string, unknown]>;
  /** Machine -> its FaultState; null deletes the machine's row. */
  readonly faults?: Iterable<readonly [string, unknown]>;
}

interface ClusterRow { storm: string | null; paused: number; dry_run: number; paused_machines: string }
interface MachineRow { machine: string; state: string }

/** The whole record (read at start; the controller keeps it), or null when nothing was ever saved. */
export function getRemediation(ctx: StoreContext): RemediationRecord | null {
  const r = ctx.stmt("SELECT storm, paused, dry_run, paused_machines FROM remediation WHERE name = 'cluster'").get() as ClusterRow | undefined;
  const rows = ctx.stmt('SELECT machine, state FROM remediation_machines ORDER BY machine').all() as MachineRow[];
  const faultRows = ctx.stmt('SELECT machine, state FROM remediation_faults ORDER BY machine').all() as MachineRow[];
  if (r === undefined && rows.length === 0 && faultRows.length === 0) return null;
  const storm = r === undefined || r.storm === null ? null : parseJson<unknown>(r.storm, 'remediation storm state');
  const machines: Record<string, unknown> = {};
  for (const m of rows) machines[m.machine] = parseJson<unknown>(m.state, `remediation state of ${m.machine}`);
  const faults = new Map<string, unknown>();
  for (const f of faultRows) faults.set(f.machine, parseJson<unknown>(f.state, `fault state of ${f.machine}`));
  return {
    state: storm === null && rows.length === 0 ? null : { machines, storm },
    faults,
    paused: r?.paused === 1,
    dryRun: r?.dry_run === 1,
    pausedMachines: r === undefined ? [] : parseJson<string[]>(r.paused_machines, 'paused machines'),
  };
}

/** Writes the parts given, in one transaction. */
export function saveRemediation(ctx: StoreContext, changes: RemediationChanges): void {
  ctx.tx(() => {
    const c = changes.cluster;
    if (c !== undefined) {
      ctx.stmt(
        `INSERT INTO remediation (name, storm, paused, dry_run, paused_machines, updated_at) VALUES ('cluster', ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET storm = excluded.storm, paused = excluded.paused, dry_run = excluded.dry_run,
           paused_machines = excluded.paused_machines, updated_at = excluded.updated_at`,
      ).run(c.storm === null ? null : JSON.stringify(c.storm), c.paused ? 1 : 0, c.dryRun ? 1 : 0, JSON.stringify(c.pausedMachines), ctx.now());
    }
    writeRows(ctx, 'remediation_machines', changes.machines);
    writeRows(ctx, 'remediation_faults', changes.faults);
  });
}

function writeRows(ctx: StoreContext, table: 'remediation_machines' | 'remediation_faults', rows: Iterable<readonly [string, unknown]> | undefined): void {
  if (rows === undefined) return;
  const put = ctx.stmt(`INSERT INTO ${table} (machine, state) VALUES (?, ?) ON CONFLICT (machine) DO UPDATE SET state = excluded.state`);
  const drop = ctx.stmt(`DELETE FROM ${table} WHERE machine = ?`);
  for (const [machine, state] of rows) {
    if (state === null) drop.run(machine);
    else put.run(machine, JSON.stringify(state));
  }
}

export function listRules(ctx: StoreContext): Array<{ name: string; object: unknown }> {
  return (ctx.stmt('SELECT name, object FROM remediation_rules ORDER BY name').all() as Array<{ name: string; object: string }>).map((r) => ({ name: r.name, object: parseJson<unknown>(r.object, 'remediation rule') }));
}

/**
 * Creates or replaces a rule. The same object again is no write at all (same
 * resourceVersion); a changed one moves the generation. Returns whether anything changed.
 */
export function putRule(ctx: StoreContext, name: string, object: unknown): boolean {
  return ctx.tx(() => ctx.stmt(
    `INSERT INTO remediation_rules (name, object, created_at, updated_at) VALUES (@name, @object, @now, @now)
     ON CONFLICT (name) DO UPDATE SET object = excluded.object, updated_at = excluded.updated_at, generation = generation + 1
     WHERE remediation_rules.object IS NOT excluded.object`,
  ).run({ name, object: JSON.stringify(object), now: ctx.now() }).changes === 1);
}

export function deleteRule(ctx: StoreContext, name: string): void {
  ctx.tx(() => {
    const r = ctx.stmt('DELETE FROM remediation_rules WHERE name = ?').run(name);
    if (r.changes !== 1) throw new AppError('NK_REMEDIATION_RULE_NOT_FOUND', `no applied remediation rule "${name}"`);
  });
}
