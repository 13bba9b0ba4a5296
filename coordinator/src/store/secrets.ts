/**
 * Bootstrap tokens and credentials: how they are made, parsed and checked. Only the
 * sha256 of a secret is ever stored; a presented secret is compared in constant time.
 *
 *   bootstrap token    `<id>.<secret>`           kubeadm's form: id [a-z0-9]{6}, secret [a-z0-9]{16}
 *   machine credential `nkm.<id>.<secret>`       secret: 32 random bytes, base64url
 *   API credential     `nka.<id>.<secret>`       same shape, for the HTTP API's bearer auth
 *
 * See https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const TOKEN_RE = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const CREDENTIAL_RE = /^(nkm|nka)\.([a-f0-9]{16})\.([A-Za-z0-9_-]{43})$/;
/** Presented strings longer than this are rejected before any parsing or hashing. */
const MAX_PRESENTED = 256;

export type CredentialKind = 'machine' | 'api';
const PREFIX: Record<CredentialKind, string> = { machine: 'nkm', api: 'nka' };

/** A random string over [a-z0-9] without modulo bias (bytes >= 252 are redrawn). */
export function randomAlnum(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b >= 252) continue; // 252 = 7 * 36: the largest multiple of 36 below 256
      out += ALPHABET[b % 36];
      if (out.length === length) break;
    }
  }
  return out;
}

/** sha256 of a secret: what the store keeps instead of the secret. */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Constant-time check of a presented secret against a stored hash. */
export function secretMatches(secret: string, storedHash: Uint8Array): boolean {
  const presented = hashSecret(secret);
  return storedHash.length === presented.length && timingSafeEqual(presented, storedHash);
}

/**
 * A hash no secret matches in practice: compared against when the id is unknown, so an
 * unknown id and a wrong secret take the same path (no timing hint of which ids exist).
 */
export const DECOY_HASH: Buffer = hashSecret(randomBytes(32).toString('hex'));

/** A new bootstrap token: the string to hand out, its public id and the secret's hash. */
export function newToken(): { token: string; id: string; hash: Buffer } {
  const id = randomAlnum(6);
  const secret = randomAlnum(16);
  return { token: `${id}.${secret}`, id, hash: hashSecret(secret) };
}

/** Splits a presented bootstrap token, or null when it is not of the form `<id>.<secret>`. */
export function parseToken(presented: unknown): { id: string; secret: string } | null {
  if (typeof presented !== 'string' || presented.length > MAX_PRESENTED) return null;
  const m = TOKEN_RE.exec(presented);
  return m === null ? null : { id: m[1] ?? '', secret: m[2] ?? '' };
}

/** A new credential of the given kind: the string to hand out once, its id and hash. */
export function newCredential(kind: CredentialKind): { credential: string; id: string; hash: Buffer } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { credential: `${PREFIX[kind]}.${id}.${secret}`, id, hash: hashSecret(secret) };
}

/** Splits a presented credential of the given kind, or null when malformed. */
export function parseCredential(presented: unknown, kind: CredentialKind): { id: string; secret: string } | null {
  if (typeof presented !== 'string' || presented.length > MAX_PRESENTED) return null;
  const m = CREDENTIAL_RE.exec(presented);
  if (m === null || m[1] !== PREFIX[kind]) return null;
  return { id: m[2] ?? '', secret: m[3] ?? '' };
}
