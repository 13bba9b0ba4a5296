/**
 * Who may speak for a machine (architecture invariants 4 and 10): enrollment with a
 * bootstrap token, re-enrollment with proof of the machine's key, an admin's reset,
 * per-machine credentials with an expiry, and their rotation over the live connection.
 *
 * A bootstrap token enrolls new machines only. Replacing an enrolled machine's
 * credential needs a signature by the key it registered (the agent's own recovery
 * after a lost or expired credential) or an explicit admin reset; nothing here ever
 * tells a caller another machine's id.
 */
import { AppError, verifyEd25519 } from '@nodekeeper/common';
import { reenrollStatement, type KeyProof, type MachineIdentity } from '@nodekeeper/protocol';
import type { MachineRecord } from '../model/machine.ts';
import type { StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { DECOY_HASH, newCredential, parseCredential, secretMatches } from './secrets.ts';
import { spendToken } from './tokens.ts';
import { recordEvent } from './events.ts';
import { machineRow, toMachineRecord, type MachineRow } from './machines.ts';

/** How long a machine credential is accepted unless the coordinator is told otherwise. */
export const DEFAULT_CREDENTIAL_TTL_MS = 30 * 86_400_000;

export interface EnrollRequest {
  /** A bootstrap token: enrolls a new machine, or one an admin reset. */
  readonly token?: string;
  readonly identity: MachineIdentity;
  readonly agentVersion: string;
  /** The machine key to register (base64 raw ed25519). */
  readonly publicKey?: string;
  /**
   * Proof of the enrolled machine's key, over a nonce the caller has already taken from
   * its nonce book (single use, bound to this machine's name).
   */
  readonly proof?: KeyProof;
  readonly credentialTtlMs?: number;
}

/** RFC 1123 subdomain, the rule for Kubernetes Node names. */
const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME = 253;

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length > MAX_NAME || !NAME_RE.test(name)) {
    throw new AppError(StoreErrorCode.machineNameInvalid, `hostname ${JSON.stringify(name)} is not a valid Machine name (lowercase RFC 1123 subdomain)`, {
      context: { name },
    });
  }
}

const alreadyEnrolled = (name: string) =>
  new AppError(
    StoreErrorCode.machineAlreadyEnrolled,
    `machine ${name} is already enrolled, and a bootstrap token cannot replace its credential: its agent re-enrolls with its machine key, ` +
      `or an admin runs 'nkctl machine reset ${name}' first`,
    { context: { name } },
  );

const proofInvalid = (name: string) =>
  new AppError(StoreErrorCode.proofInvalid, `proof of machine ${name}'s key was not accepted`, { context: { name } });

/** How a request earns the right to (re-)enroll `existing`; throws when it has none. */
function authorise(ctx: StoreContext, req: EnrollRequest, name: string, existing: MachineRow | undefined): { via: string; tokenId: string | null } {
  if (req.proof !== undefined) {
    // Proof of the registered key: the machine itself, recovering a lost or expired
    // credential. No token is needed or spent.
    if (existing === undefined || existing.public_key === null || req.publicKey === undefined) throw proofInvalid(name);
    const statement = reenrollStatement({ machine: name, machineId: req.identity.machineId, nonce: req.proof.nonce, publicKey: req.publicKey });
    if (!verifyEd25519(statement, req.proof.signature, existing.public_key)) throw proofInvalid(name);
    if (existing.revoked_at !== null) throw new AppError(StoreErrorCode.machineRevoked, `machine ${name} was revoked and cannot enroll again`, { context: { name } });
    return { via: 'proof of its machine key', tokenId: null };
  }
  if (req.token === undefined) {
    throw new AppError(StoreErrorCode.enrollUnauthorised, 'enrollment needs a bootstrap token, or proof of the machine key for an enrolled machine');
  }
  // The token is checked first, so nobody without one learns which names are enrolled.
  const token = spendToken(ctx, req.token);
  if (existing !== undefined && existing.reset_at === null) {
    if (existing.revoked_at !== null) throw new AppError(StoreErrorCode.machineRevoked, `machine ${name} was revoked and cannot enroll again`, { context: { name } });
    throw alreadyEnrolled(name);
  }
  return { via: `bootstrap token ${token.id}${existing === undefined ? '' : ' after an admin reset'}`, tokenId: token.id };
}

/**
 * Enrolls a new machine (bootstrap token), or re-enrolls an enrolled one (proof of its
 * key, or a token after an admin reset), with a fresh credential that replaces any
 * earlier one. One transaction: when any check fails nothing changes, not even the
 * token's use count. The credential is returned once; only its hash is kept.
 */
export function enroll(ctx: StoreContext, req: EnrollRequest): { machine: MachineRecord; credential: string } {
  return ctx.tx(() => {
    const name = req.identity.hostname;
    checkName(name);
    const existing = machineRow(ctx, name);
    const { via, tokenId } = authorise(ctx, req, name, existing);
    const cred = newCredential('machine');
    const now = ctx.now();
    const spec = {
      name,
      machineId: req.identity.machineId,
      credentialId: cred.id,
      credentialHash: cred.hash,
      expiresAt: now + (req.credentialTtlMs ?? DEFAULT_CREDENTIAL_TTL_MS),
      publicKey: req.publicKey ?? null,
      labels: JSON.stringify(req.identity.labels),
      zone: req.identity.zone,
      addresses: JSON.stringify(req.identity.addresses),
      token: tokenId,
      agentVersion: req.agentVersion,
      now,
    };
    if (existing === undefined) {
      ctx
        .stmt(
          `INSERT INTO machines (name, machine_id, credential_id, credential_hash, credential_expires_at, public_key, labels, zone,
             addresses, enrolled_at, enrolled_by_token, liveness_state, liveness_since, liveness_reason, liveness_message, agent_version)
           VALUES (@name, @machineId, @credentialId, @credentialHash, @expiresAt, @publicKey, @labels, @zone,
             @addresses, @now, @token, 'Pending', @now, 'AwaitingFirstReport', 'enrolled; no report received yet', @agentVersion)`,
        )
        .run(spec);
    } else {
      // The old credential (and any pending rotation) is overwritten: it matches nothing now.
      ctx
        .stmt(
          `UPDATE machines SET machine_id = @machineId, credential_id = @credentialId, credential_hash = @credentialHash,
             credential_expires_at = @expiresAt, public_key = @publicKey, next_credential_id = NULL, next_credential_hash = NULL,
             next_credential_expires_at = NULL, reset_at = NULL, revoked_at = NULL, labels = @labels, zone = @zone,
             addresses = @addresses, enrolled_at = @now, enrolled_by_token = COALESCE(@token, enrolled_by_token), agent_version = @agentVersion
           WHERE name = @name`,
        )
        .run(spec);
    }
    const idChanged = existing !== undefined && existing.machine_id !== req.identity.machineId ? ' (its machine-id changed)' : '';
    recordEvent(ctx, {
      object: `machine/${name}`,
      type: existing === undefined ? 'Normal' : 'Warning',
      reason: existing === undefined ? 'Enrolled' : 'ReEnrolled',
      message: `${existing === undefined ? 'enrolled' : 're-enrolled with a new credential'}${idChanged} using ${via} (agent ${req.agentVersion})`,
    });
    const row = machineRow(ctx, name);
    if (row === undefined) throw new Error(`machine ${name} vanished inside its enrollment transaction`);
    return { machine: toMachineRecord(row), credential: cred.credential };
  });
}

/** What authentication tells of a machine: what opening its session needs, nothing parsed. */
export interface AuthenticatedMachine {
  readonly name: string;
  readonly machineId: string;
  readonly credentialExpiresAt: number | null;
}

/** The machine a credential speaks for, and the id of the credential that matched. */
export interface Authenticated {
  readonly machine: AuthenticatedMachine;
  readonly credentialId: string;
}

/** The columns authentication reads: never the report or other JSON (a storm checks a credential per dial). */
interface CredentialRow {
  name: string;
  machine_id: string;
  credential_hash: Buffer;
  credential_expires_at: number | null;
  next_credential_id: string | null;
  next_credential_hash: Buffer | null;
  revoked_at: number | null;
  reset_at: number | null;
}

const CREDENTIAL_COLUMNS = 'name, machine_id, credential_hash, credential_expires_at, next_credential_id, next_credential_hash, revoked_at, reset_at';

/**
 * The machine a presented credential speaks for. The current credential, or the one
 * sent by a rotation and not yet confirmed (presenting it confirms it: the agent has it
 * saved). NK_AUTH_CREDENTIAL_INVALID when malformed, unknown or wrong (a replaced
 * credential is unknown); NK_AUTH_CREDENTIAL_EXPIRED past its expiry; NK_MACHINE_REVOKED.
 */
export function authenticateMachine(ctx: StoreContext, presented: unknown): Authenticated {
  const parsed = parseCredential(presented, 'machine');
  const invalid = () => new AppError(StoreErrorCode.credentialInvalid, 'machine credential is not valid');
  if (parsed === null) throw invalid();
  const row = ctx.stmt(`SELECT ${CREDENTIAL_COLUMNS} FROM machines WHERE credential_id = ? OR next_credential_id = ?`).get(parsed.id, parsed.id) as CredentialRow | undefined;
  const isNext = row !== undefined && row.next_credential_id === parsed.id;
  const hash = row === undefined ? DECOY_HASH : isNext ? (row.next_credential_hash ?? DECOY_HASH) : row.credential_hash;
  // An unknown id is checked against a decoy so it costs the same as a wrong secret.
  if (!secretMatches(parsed.secret, hash) || row === undefined) throw invalid();
  if (row.revoked_at !== null) throw new AppError(StoreErrorCode.machineRevoked, `machine ${row.name} was revoked`, { context: { name: row.name } });
  if (row.reset_at !== null) throw new AppError(StoreErrorCode.credentialInvalid, 'machine credential is not valid');
  if (isNext) {
    ctx.tx(() => promote(ctx, row.name, parsed.id));
    const promoted = ctx.stmt(`SELECT ${CREDENTIAL_COLUMNS} FROM machines WHERE name = ?`).get(row.name) as CredentialRow;
    return { machine: authenticated(promoted), credentialId: parsed.id };
  }
  if (row.credential_expires_at !== null && ctx.now() >= row.credential_expires_at) {
    throw new AppError(StoreErrorCode.credentialExpired, `the credential of machine ${row.name} has expired; the agent re-enrolls with its machine key`, {
      context: { name: row.name },
    });
  }
  return { machine: authenticated(row), credentialId: parsed.id };
}

function authenticated(row: CredentialRow): AuthenticatedMachine {
  return { name: row.name, machineId: row.machine_id, credentialExpiresAt: row.credential_expires_at };
}

/**
 * Makes the machine's next credential (replacing any unconfirmed one) for a rotation over
 * the live connection. The current credential keeps working until the agent confirms.
 */
export function issueNextCredential(ctx: StoreContext, name: string, ttlMs: number): { credential: string; id: string; expiresAt: number } {
  return ctx.tx(() => {
    const cred = newCredential('machine');
    const expiresAt = ctx.now() + ttlMs;
    const r = ctx
      .stmt('UPDATE machines SET next_credential_id = ?, next_credential_hash = ?, next_credential_expires_at = ? WHERE name = ? AND revoked_at IS NULL AND reset_at IS NULL')
      .run(cred.id, cred.hash, expiresAt, name);
    if (r.changes !== 1) throw new AppError(StoreErrorCode.machineNotFound, `machine "${name}" not found, revoked or reset`, { context: { name } });
    return { credential: cred.credential, id: cred.id, expiresAt };
  });
}

/**
 * The agent saved credential `id`: it becomes the machine's credential and the old one
 * is refused from now on. False when `id` is not the machine's pending credential
 * (already promoted, or replaced by a later rotation).
 */
export function confirmCredential(ctx: StoreContext, name: string, id: string): boolean {
  return ctx.tx(() => promote(ctx, name, id));
}

function promote(ctx: StoreContext, name: string, id: string): boolean {
  const r = ctx
    .stmt(
      `UPDATE machines SET credential_id = next_credential_id, credential_hash = next_credential_hash,
         credential_expires_at = next_credential_expires_at, next_credential_id = NULL, next_credential_hash = NULL,
         next_credential_expires_at = NULL
       WHERE name = ? AND next_credential_id = ?`,
    )
    .run(name, id);
  if (r.changes === 1) recordEvent(ctx, { object: `machine/${name}`, type: 'Normal', reason: 'CredentialRotated', message: 'the agent saved its new credential; the old one is refused from now on' });
  return r.changes === 1;
}

/**
 * Registers the key of a machine enrolled before keys existed (its agent's hello, over
 * its credential). Returns 'registered', 'same', or 'different' (nothing changes then).
 */
export function registerMachineKey(ctx: StoreContext, name: string, publicKey: string): 'registered' | 'same' | 'different' {
  // Every hello presents the key: the common case (already registered) is a read, so a
  // reconnect storm does not queue write transactions behind the batcher.
  if (machineRow(ctx, name)?.public_key === publicKey) return 'same';
  return ctx.tx(() => {
    const row = machineRow(ctx, name);
    if (row === undefined) throw new AppError(StoreErrorCode.machineNotFound, `machine "${name}" not found`, { context: { name } });
    if (row.public_key === publicKey) return 'same';
    if (row.public_key !== null) return 'different';
    ctx.stmt('UPDATE machines SET public_key = ? WHERE name = ?').run(publicKey, name);
    recordEvent(ctx, { object: `machine/${name}`, type: 'Normal', reason: 'MachineKeyRegistered', message: 'the agent registered its machine key' });
    return 'registered';
  });
}

/**
 * An admin's reset: the machine's credentials and key are dropped (its connections must
 * be closed by the caller), a revocation is lifted, and the next bootstrap-token
 * enrollment of this name is accepted as the machine. Its state (report, pins,
 * history) stays. NK_MACHINE_NOT_FOUND.
 */
export function resetMachine(ctx: StoreContext, name: string, by: string): MachineRecord {
  return ctx.tx(() => {
    const row = machineRow(ctx, name);
    if (row === undefined) throw new AppError(StoreErrorCode.machineNotFound, `no machine named ${JSON.stringify(name)}`, { context: { name } });
    const now = ctx.now();
    ctx
      .stmt(
        `UPDATE machines SET public_key = NULL, next_credential_id = NULL, next_credential_hash = NULL,
           next_credential_expires_at = NULL, credential_expires_at = ?, revoked_at = NULL, reset_at = ? WHERE name = ?`,
      )
      .run(now, now, name);
    recordEvent(ctx, {
      object: `machine/${name}`,
      type: 'Warning',
      reason: 'MachineReset',
      message: `reset by ${by}: its credential and key are void; the next bootstrap-token enrollment of ${name} becomes this machine`,
    });
    return toMachineRecord(machineRow(ctx, name)!);
  });
}
