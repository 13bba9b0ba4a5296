/**
 * Fleet-page sessions (docs/ui.md): an API credential exchanged for a cookie. The
 * cookie carries `nks.<secret>` (32 random bytes); only the secret's sha256 is stored.
 * A session has no role of its own: it is its credential's role, read at every request,
 * so revoking the credential ends its sessions from the next request on.
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '@nodekeeper/common';
import type { ApiCredentialRecord, ApiRole } from './types.ts';
import type { StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { hashSecret } from './secrets.ts';

const SESSION_RE = /^nks\.([A-Za-z0-9_-]{43})$/;

export interface SessionRecord {
  readonly credentialId: string;
  readonly role: ApiRole;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** Opens a session for an authenticated credential; the session string is returned once. */
export function createSession(ctx: StoreContext, credential: ApiCredentialRecord, ttlMs: number): { session: string; record: SessionRecord } {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`session ttl must be a positive integer of ms, got ${ttlMs}`);
  return ctx.tx(() => {
    const secret = randomBytes(32).toString('base64url');
    const now = ctx.now();
    // Expired sessions go as new ones come: the table stays the size of the sessions in use.
    ctx.stmt('DELETE FROM ui_sessions WHERE expires_at <= ?').run(now);
    ctx.stmt('INSERT INTO ui_sessions (id_hash, credential_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(hashSecret(secret), credential.id, now, now + ttlMs);
    return { session: `nks.${secret}`, record: { credentialId: credential.id, role: credential.role, createdAt: now, expiresAt: now + ttlMs } };
  });
}

/** Splits a presented session string, or null when malformed. */
export function parseSession(presented: string): string | null {
  return SESSION_RE.exec(presented)?.[1] ?? null;
}

/** The session a cookie value names (NK_AUTH_SESSION_INVALID, NK_AUTH_SESSION_EXPIRED). */
export function authenticateSession(ctx: StoreContext, presented: string): SessionRecord {
  const secret = parseSession(presented);
  const invalid = () => new AppError(StoreErrorCode.sessionInvalid, 'the session is not valid (signed out, unknown, or its credential was revoked): sign in again');
  if (secret === null) throw invalid();
  // A lookup by hash: the hash of a 32-byte random secret leaks nothing through timing.
  const row = ctx.stmt(`SELECT s.credential_id, s.created_at, s.expires_at, c.role, c.revoked_at FROM ui_sessions s
    JOIN api_credentials c ON c.id = s.credential_id WHERE s.id_hash = ?`).get(hashSecret(secret)) as
    { credential_id: string; created_at: number; expires_at: number; role: ApiRole; revoked_at: number | null } | undefined;
  if (row === undefined || row.revoked_at !== null) throw invalid();
  if (row.expires_at <= ctx.now()) throw new AppError(StoreErrorCode.sessionExpired, 'the session has expired: sign in again');
  return { credentialId: row.credential_id, role: row.role, createdAt: row.created_at, expiresAt: row.expires_at };
}

/** Ends a session (sign out); false when there was none. */
export function deleteSession(ctx: StoreContext, presented: string): boolean {
  const secret = parseSession(presented);
  if (secret === null) return false;
  return ctx.tx(() => ctx.stmt('DELETE FROM ui_sessions WHERE id_hash = ?').run(hashSecret(secret)).changes > 0);
}
