/**
 * Bearer credentials for the HTTP API (`nka.<id>.<secret>`), each with a role.
 */
import { AppError } from '@nodekeeper/common';
import type { ApiCredentialRecord, ApiRole } from '../model/records.ts';
import type { StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { DECOY_HASH, newCredential, parseCredential, secretMatches } from './secrets.ts';
import { recordEvent } from './events.ts';

interface ApiCredentialRow {
  id: string;
  secret_hash: Buffer;
  role: ApiRole;
  description: string;
  created_at: number;
  revoked_at: number | null;
}

function toRecord(r: ApiCredentialRow): ApiCredentialRecord {
  return { id: r.id, role: r.role, description: r.description, createdAt: r.created_at, revokedAt: r.revoked_at };
}

/** Makes an API credential; the credential string is returned once and never stored. */
export function createApiCredential(
  ctx: StoreContext,
  req: { role: ApiRole; description: string },
): { credential: string; record: ApiCredentialRecord } {
  if (req.role !== 'admin' && req.role !== 'read-only') throw new TypeError(`role must be admin or read-only, got ${String(req.role)}`);
  if (typeof req.description !== 'string') throw new TypeError('description must be a string');
  return ctx.tx(() => {
    const cred = newCredential('api');
    const now = ctx.now();
    ctx
      .stmt('INSERT INTO api_credentials (id, secret_hash, role, description, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(cred.id, cred.hash, req.role, req.description, now);
    recordEvent(ctx, { object: `apicredential/${cred.id}`, type: 'Normal', reason: 'ApiCredentialCreated', message: `${req.role} API credential created` });
    return { credential: cred.credential, record: { id: cred.id, role: req.role, description: req.description, createdAt: now, revokedAt: null } };
  });
}

/** The record a presented API credential belongs to; NK_AUTH_CREDENTIAL_INVALID otherwise (also when revoked). */
export function authenticateApi(ctx: StoreContext, presented: unknown): ApiCredentialRecord {
  const parsed = parseCredential(presented, 'api');
  const invalid = () => new AppError(StoreErrorCode.credentialInvalid, 'API credential is not valid');
  if (parsed === null) throw invalid();
  const row = ctx.stmt('SELECT * FROM api_credentials WHERE id = ?').get(parsed.id) as ApiCredentialRow | undefined;
  if (!secretMatches(parsed.secret, row?.secret_hash ?? DECOY_HASH) || row === undefined || row.revoked_at !== null) throw invalid();
  return toRecord(row);
}

/**
 * How many API credentials exist, revoked ones included: the coordinator creates the
 * first admin credential only on a store that never had one, so revoking every
 * credential does not make a restart mint a fresh admin.
 */
export function countApiCredentials(ctx: StoreContext): number {
  return Number((ctx.stmt('SELECT count(*) AS n FROM api_credentials').get() as { n: number }).n);
}

/** Every API credential, revoked ones included (never a secret), oldest first. */
export function listApiCredentials(ctx: StoreContext): ApiCredentialRecord[] {
  return (ctx.stmt('SELECT * FROM api_credentials ORDER BY created_at, id').all() as ApiCredentialRow[]).map(toRecord);
}

/**
 * Revokes an API credential: refused from the next request on (authenticateApi reads
 * the row every time). Revoking a revoked one changes nothing. NK_API_CREDENTIAL_NOT_FOUND;
 * NK_API_CREDENTIAL_LAST_ADMIN when it is the last admin credential not revoked.
 */
export function revokeApiCredential(ctx: StoreContext, id: string): ApiCredentialRecord {
  return ctx.tx(() => {
    const row = ctx.stmt('SELECT * FROM api_credentials WHERE id = ?').get(id) as ApiCredentialRow | undefined;
    if (row === undefined) throw new AppError(StoreErrorCode.apiCredentialNotFound, `API credential "${id}" not found`, { context: { id } });
    if (row.revoked_at !== null) return toRecord(row);
    if (row.role === 'admin') {
      const admins = Number((ctx.stmt(`SELECT count(*) AS n FROM api_credentials WHERE role = 'admin' AND revoked_at IS NULL`).get() as { n: number }).n);
      if (admins <= 1) throw new AppError(StoreErrorCode.apiCredentialLastAdmin, `API credential "${id}" is the last admin credential; create another admin credential before revoking it`, { context: { id } });
    }
    const now = ctx.now();
    ctx.stmt('UPDATE api_credentials SET revoked_at = ? WHERE id = ?').run(now, id);
    recordEvent(ctx, { object: `apicredential/${id}`, type: 'Normal', reason: 'ApiCredentialRevoked', message: `${row.role} API credential revoked${row.description === '' ? '' : ` (${row.description})`}` });
    return toRecord({ ...row, revoked_at: now });
  });
}
