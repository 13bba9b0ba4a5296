/**
 * Bootstrap tokens (kubeadm's `<id>.<secret>` form): made by an admin, presented once by
 * an agent to enroll, limited in time and in uses, revocable.
 */
import { AppError } from '@nodekeeper/common';
import type { TokenRecord } from '../model/records.ts';
import type { StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { DECOY_HASH, newToken, parseToken, secretMatches } from './secrets.ts';
import { recordEvent } from './events.ts';

export interface NewToken {
  readonly ttlMs: number;
  readonly maxUses: number;
  readonly description: string;
}

interface TokenRow {
  id: string;
  secret_hash: Buffer;
  description: string;
  created_at: number;
  expires_at: number;
  max_uses: number;
  used: number;
  revoked_at: number | null;
}

function toRecord(r: TokenRow): TokenRecord {
  return {
    id: r.id,
    description: r.description,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    maxUses: r.max_uses,
    used: r.used,
    revokedAt: r.revoked_at,
  };
}

/** Makes a token. The token string is returned once and never stored. */
export function createToken(ctx: StoreContext, t: NewToken): { token: string; record: TokenRecord } {
  if (!Number.isFinite(t.ttlMs) || t.ttlMs <= 0) throw new RangeError(`ttlMs must be > 0, got ${t.ttlMs}`);
  if (!Number.isInteger(t.maxUses) || t.maxUses < 1) throw new RangeError(`maxUses must be an integer >= 1, got ${t.maxUses}`);
  if (typeof t.description !== 'string') throw new TypeError('description must be a string');
  return ctx.tx(() => {
    // Six random [a-z0-9] characters can collide; draw again rather than fail.
    let fresh = newToken();
    while (ctx.stmt('SELECT 1 FROM tokens WHERE id = ?').get(fresh.id) !== undefined) fresh = newToken();
    const now = ctx.now();
    const expiresAt = now + Math.round(t.ttlMs);
    ctx
      .stmt('INSERT INTO tokens (id, secret_hash, description, created_at, expires_at, max_uses) VALUES (?, ?, ?, ?, ?, ?)')
      .run(fresh.id, fresh.hash, t.description, now, expiresAt, t.maxUses);
    recordEvent(ctx, {
      object: `token/${fresh.id}`,
      type: 'Normal',
      reason: 'TokenCreated',
      message: `bootstrap token created: ${t.maxUses} use(s), expires in ${Math.round(t.ttlMs / 1000)}s`,
    });
    const record: TokenRecord = { id: fresh.id, description: t.description, createdAt: now, expiresAt, maxUses: t.maxUses, used: 0, revokedAt: null };
    return { token: fresh.token, record };
  });
}

/** Every token, oldest first. */
export function listTokens(ctx: StoreContext): TokenRecord[] {
  return (ctx.stmt('SELECT * FROM tokens ORDER BY created_at, id').all() as TokenRow[]).map(toRecord);
}

/** Revokes a token (idempotent); NK_TOKEN_NOT_FOUND when there is none with that id. */
export function revokeToken(ctx: StoreContext, id: string): TokenRecord {
  return ctx.tx(() => {
    const row = ctx.stmt('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRow | undefined;
    if (row === undefined) {
      throw new AppError(StoreErrorCode.tokenNotFound, `no bootstrap token with id ${JSON.stringify(id)}`, { context: { id } });
    }
    if (row.revoked_at !== null) return toRecord(row);
    const now = ctx.now();
    ctx.stmt('UPDATE tokens SET revoked_at = ? WHERE id = ?').run(now, id);
    recordEvent(ctx, { object: `token/${id}`, type: 'Normal', reason: 'TokenRevoked', message: 'bootstrap token revoked' });
    return toRecord({ ...row, revoked_at: now });
  });
}

/**
 * Checks a presented token and spends one use of it. Must run inside the caller's
 * transaction, so a later failure of the enrollment gives the use back.
 */
export function spendToken(ctx: StoreContext, presented: unknown): TokenRecord {
  const parsed = parseToken(presented);
  const invalid = () => new AppError(StoreErrorCode.tokenInvalid, 'bootstrap token is not valid');
  if (parsed === null) throw invalid();
  const row = ctx.stmt('SELECT * FROM tokens WHERE id = ?').get(parsed.id) as TokenRow | undefined;
  // An unknown id is checked against a decoy so it costs the same as a wrong secret.
  if (!secretMatches(parsed.secret, row?.secret_hash ?? DECOY_HASH) || row === undefined) throw invalid();
  const context = { tokenId: row.id };
  if (row.revoked_at !== null) throw new AppError(StoreErrorCode.tokenRevoked, `bootstrap token ${row.id} was revoked`, { context });
  if (ctx.now() >= row.expires_at) throw new AppError(StoreErrorCode.tokenExpired, `bootstrap token ${row.id} has expired`, { context });
  if (row.used >= row.max_uses) {
    throw new AppError(StoreErrorCode.tokenExhausted, `bootstrap token ${row.id} has no uses left (${row.max_uses} allowed)`, { context });
  }
  ctx.stmt('UPDATE tokens SET used = used + 1 WHERE id = ?').run(row.id);
  return toRecord({ ...row, used: row.used + 1 });
}
