/**
 * Machines: enrollment with a bootstrap token, per-machine credentials, revocation and
 * reads. A Machine's name is its node's hostname, as Kubernetes names the Node.
 */
import { AppError } from '@nodekeeper/common';
import type { MachineIdentity, NodeReport } from '@nodekeeper/protocol';
import type { Condition, Liveness, MachineRecord, PackageOverride } from './types.ts';
import { parseJson, type StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { DECOY_HASH, newCredential, parseCredential, secretMatches } from './secrets.ts';
import { spendToken } from './tokens.ts';
import { recordEvent } from './events.ts';

export interface EnrollRequest {
  readonly token: string;
  readonly identity: MachineIdentity;
  readonly agentVersion: string;
}

/** RFC 1123 subdomain, the rule for Kubernetes Node names. */
const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME = 253;

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
  last_seen_at: number | null;
  liveness_state: Liveness['state'];
  liveness_since: number;
  liveness_reason: string;
  liveness_message: string;
  conditions: string;
  agent_version: string | null;
  status_updated_at: number | null;
  package_overrides: string;
}

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

function machineRow(ctx: StoreContext, name: string): MachineRow | undefined {
  return ctx.stmt('SELECT * FROM machines WHERE name = ?').get(name) as MachineRow | undefined;
}

/** The machine of that name, or null. */
export function getMachine(ctx: StoreContext, name: string): MachineRecord | null {
  const row = machineRow(ctx, name);
  return row === undefined ? null : toMachineRecord(row);
}

/** Every machine, sorted by name. */
export function listMachines(ctx: StoreContext): MachineRecord[] {
  return (ctx.stmt('SELECT * FROM machines ORDER BY name').all() as MachineRow[]).map(toMachineRecord);
}

/**
 * Enrolls a machine with a bootstrap token, or re-enrolls one (same name, same machine
 * id) with a fresh credential that replaces its old one. One transaction: when any check
 * fails nothing changes, not even the token's use count. The credential is returned
 * once; only its hash is kept.
 */
export function enroll(ctx: StoreContext, req: EnrollRequest): { machine: MachineRecord; credential: string } {
  return ctx.tx(() => {
    const token = spendToken(ctx, req.token);
    const { identity } = req;
    const name = identity.hostname;
    if (typeof name !== 'string' || name.length > MAX_NAME || !NAME_RE.test(name)) {
      throw new AppError(
        StoreErrorCode.machineNameInvalid,
        `hostname ${JSON.stringify(name)} is not a valid Machine name (lowercase RFC 1123 subdomain)`,
        { context: { name } },
      );
    }
    const existing = machineRow(ctx, name);
    if (existing !== undefined && existing.machine_id !== identity.machineId) {
      throw new AppError(
        StoreErrorCode.machineNameConflict,
        `machine ${name} is enrolled with another machine id (${existing.machine_id}, not ${identity.machineId})`,
        { context: { name, enrolledMachineId: existing.machine_id, presentedMachineId: identity.machineId } },
      );
    }
    if (existing !== undefined && existing.revoked_at !== null) {
      throw new AppError(StoreErrorCode.machineRevoked, `machine ${name} was revoked and cannot enroll again`, { context: { name } });
    }
    const cred = newCredential('machine');
    const now = ctx.now();
    const spec = {
      name,
      machineId: identity.machineId,
      credentialId: cred.id,
      credentialHash: cred.hash,
      labels: JSON.stringify(identity.labels),
      zone: identity.zone,
      addresses: JSON.stringify(identity.addresses),
      token: token.id,
      agentVersion: req.agentVersion,
    };
    if (existing === undefined) {
      ctx
        .stmt(
          `INSERT INTO machines (name, machine_id, credential_id, credential_hash, labels, zone, addresses, enrolled_at,
             enrolled_by_token, liveness_state, liveness_since, liveness_reason, liveness_message, agent_version)
           VALUES (@name, @machineId, @credentialId, @credentialHash, @labels, @zone, @addresses, @now,
             @token, 'Pending', @now, 'AwaitingFirstReport', 'enrolled; no report received yet', @agentVersion)`,
        )
        .run({ ...spec, now });
    } else {
      // The old credential's row is overwritten: from now on it matches nothing.
      ctx
        .stmt(
          `UPDATE machines SET credential_id = @credentialId, credential_hash = @credentialHash, labels = @labels,
             zone = @zone, addresses = @addresses, enrolled_at = @now, enrolled_by_token = @token, agent_version = @agentVersion
           WHERE name = @name`,
        )
        .run({ ...spec, now });
    }
    recordEvent(ctx, {
      object: `machine/${name}`,
      type: 'Normal',
      reason: 'Enrolled',
      message: `${existing === undefined ? 'enrolled' : 're-enrolled with a new credential'} using bootstrap token ${token.id} (agent ${req.agentVersion})`,
    });
    const row = machineRow(ctx, name);
    if (row === undefined) throw new Error(`machine ${name} vanished inside its enrollment transaction`);
    return { machine: toMachineRecord(row), credential: cred.credential };
  });
}

/**
 * The machine a presented credential speaks for. NK_AUTH_CREDENTIAL_INVALID when it is
 * malformed, unknown or wrong (a re-enrolled machine's old credential is unknown);
 * NK_MACHINE_REVOKED when its machine was revoked.
 */
export function authenticateMachine(ctx: StoreContext, presented: unknown): MachineRecord {
  const parsed = parseCredential(presented, 'machine');
  const invalid = () => new AppError(StoreErrorCode.credentialInvalid, 'machine credential is not valid');
  if (parsed === null) throw invalid();
  const row = ctx.stmt('SELECT * FROM machines WHERE credential_id = ?').get(parsed.id) as MachineRow | undefined;
  if (!secretMatches(parsed.secret, row?.credential_hash ?? DECOY_HASH) || row === undefined) throw invalid();
  if (row.revoked_at !== null) {
    throw new AppError(StoreErrorCode.machineRevoked, `machine ${row.name} was revoked`, { context: { name: row.name } });
  }
  return toMachineRecord(row);
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
