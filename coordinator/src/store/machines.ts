/**
 * Machines: rows, reads, pins and revocation. A Machine's name is its node's hostname,
 * as Kubernetes names the Node. Enrollment and credentials: machine-identity.ts.
 */
import { AppError } from '@nodekeeper/common';
import type { NodeReport } from '@nodekeeper/protocol';
import type { Condition, Liveness, MachineRecord, PackageOverride } from '../model/machine.ts';
import { parseJson, type StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { recordEvent } from './events.ts';

export interface MachineRow {
  name: string;
  machine_id: string;
  credential_id: string;
  credential_hash: Buffer;
  labels: string;
  zone: string | null;
  addresses: string;
  enrolled_at: number;
  enrolled_by_token: string | null;
  revoked_at: number | null;
  report: string | null;
  report_changed_at: number | null;
  /** From machine_seen (SELECT_MACHINE_ROWS). */
  last_seen_at: number | null;
  liveness_state: Liveness['state'];
  liveness_since: number;
  liveness_reason: string;
  liveness_message: string;
  conditions: string;
  agent_version: string | null;
  status_updated_at: number | null;
  package_overrides: string;
  public_key: string | null;
  credential_expires_at: number | null;
  next_credential_id: string | null;
  next_credential_hash: Buffer | null;
  next_credential_expires_at: number | null;
  reset_at: number | null;
}

/**
 * Machine rows as MachineRow reads them: the last-seen time is kept in machine_seen
 * (migration 14). Append a WHERE or ORDER BY naming the machine's columns as `m.`.
 */
const SELECT_MACHINE_ROWS = 'SELECT m.*, s.at AS last_seen_at FROM machines m LEFT JOIN machine_seen s ON s.name = m.name';

/** A row as the record everyone else sees (no secret hash). */
export function toMachineRecord(r: MachineRow): MachineRecord {
  const what = `machine ${r.name}`;
  return {
    name: r.name,
    machineId: r.machine_id,
    credentialId: r.credential_id,
    labels: parseJson<Record<string, string>>(r.labels, `${what} labels`),
    zone: r.zone,
    addresses: parseJson<string[]>(r.addresses, `${what} addresses`),
    enrolledAt: r.enrolled_at,
    revokedAt: r.revoked_at,
    report: r.report === null ? null : parseJson<NodeReport>(r.report, `${what} report`),
    reportChangedAt: r.report_changed_at,
    lastSeenAt: r.last_seen_at,
    liveness: { state: r.liveness_state, since: r.liveness_since, reason: r.liveness_reason, message: r.liveness_message },
    conditions: parseJson<Condition[]>(r.conditions, `${what} conditions`),
    agentVersion: r.agent_version,
    packageOverrides: parseJson<Record<string, PackageOverride>>(r.package_overrides, `${what} package overrides`),
    publicKey: r.public_key,
    credentialExpiresAt: r.credential_expires_at,
    resetAt: r.reset_at,
  };
}

/** Replaces a machine's package overrides (NK_MACHINE_NOT_FOUND); records an event. */
export function setPackageOverrides(ctx: StoreContext, name: string, overrides: Readonly<Record<string, PackageOverride>>): MachineRecord {
  return ctx.tx(() => {
    const r = ctx.stmt('UPDATE machines SET package_overrides = ? WHERE name = ?').run(JSON.stringify(overrides), name);
    if (r.changes !== 1) throw new AppError(StoreErrorCode.machineNotFound, `machine "${name}" not found`);
    const pins = Object.entries(overrides).map(([p, o]) => `${p}=${o.version}`).join(', ');
    recordEvent(ctx, { object: `machine/${name}`, type: 'Normal', reason: 'PackagesPinned', message: pins === '' ? 'no package pinned: the cluster defaults apply' : `pinned ${pins}` });
    return getMachine(ctx, name)!;
  });
}

/** The row of machine `name` (secret hash included: for the store's own modules). */
export function machineRow(ctx: StoreContext, name: string): MachineRow | undefined {
  return ctx.stmt(`${SELECT_MACHINE_ROWS} WHERE m.name = ?`).get(name) as MachineRow | undefined;
}

/** The machine of that name, or null. */
export function getMachine(ctx: StoreContext, name: string): MachineRecord | null {
  const row = machineRow(ctx, name);
  return row === undefined ? null : toMachineRecord(row);
}

/** Every machine, sorted by name. */
export function listMachines(ctx: StoreContext): MachineRecord[] {
  return (ctx.stmt(`${SELECT_MACHINE_ROWS} ORDER BY m.name`).all() as MachineRow[]).map(toMachineRecord);
}

/** Revokes a machine (idempotent): its credential is refused from then on. */
export function revokeMachine(ctx: StoreContext, name: string): MachineRecord {
  return ctx.tx(() => {
    const row = machineRow(ctx, name);
    if (row === undefined) {
      throw new AppError(StoreErrorCode.machineNotFound, `no machine named ${JSON.stringify(name)}`, { context: { name } });
    }
    if (row.revoked_at !== null) return toMachineRecord(row);
    const now = ctx.now();
    ctx.stmt('UPDATE machines SET revoked_at = ? WHERE name = ?').run(now, name);
    recordEvent(ctx, { object: `machine/${name}`, type: 'Warning', reason: 'Revoked', message: 'machine revoked: its credential is refused from now on' });
    return toMachineRecord({ ...row, revoked_at: now });
  });
}
