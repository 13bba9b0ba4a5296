/**
 * Error codes raised by the coordinator's store (enrollment, credentials, machines,
 * the SQLite file itself). Each is listed with its meaning in docs/errors.md; codes are
 * never reused for another meaning.
 */
import type { CommonCode } from '@nodekeeper/common';
import type { CoordinatorCode } from '../codes.ts';

export const StoreErrorCode = {
  /** The SQLite file could not be opened or is not a database (see the cause). */
  openFailed: 'NK_STORE_OPEN_FAILED',
  /** The file was written by a newer coordinator (its schema version is above ours). */
  schemaTooNew: 'NK_STORE_SCHEMA_TOO_NEW',
  /** A schema migration failed and was rolled back (see the cause). */
  migrationFailed: 'NK_STORE_MIGRATION_FAILED',
  /** A batched write (last-seen times, status) could not be committed; it stays queued. */
  writeFailed: 'NK_STORE_WRITE_FAILED',
  /**
   * SQLite cannot write now (a full disk, an I/O error, a lock held too long): nothing
   * was changed; the coordinator reports it on /readyz and retries (store-health.ts).
   */
  unavailable: 'NK_STORE_UNAVAILABLE',
  /** A stored JSON column could not be read back. */
  rowCorrupt: 'NK_STORE_ROW_CORRUPT',
  /** A presented machine or API credential is malformed, unknown, wrong or revoked. */
  credentialInvalid: 'NK_AUTH_CREDENTIAL_INVALID',
  /** A fleet-page session cookie that is malformed, unknown, signed out, or whose credential was revoked. */
  sessionInvalid: 'NK_AUTH_SESSION_INVALID',
  /** A fleet-page session cookie past its expiry: sign in again. */
  sessionExpired: 'NK_AUTH_SESSION_EXPIRED',
  /** No API credential with that id. */
  apiCredentialNotFound: 'NK_API_CREDENTIAL_NOT_FOUND',
  /** Revoking it would leave no admin credential: nobody could administer the coordinator. */
  apiCredentialLastAdmin: 'NK_API_CREDENTIAL_LAST_ADMIN',
  /** No bootstrap token with that id. */
  tokenNotFound: 'NK_TOKEN_NOT_FOUND',
  /** The presented bootstrap token is malformed, unknown or its secret is wrong. */
  tokenInvalid: 'NK_TOKEN_INVALID',
  /** The bootstrap token's time to live has passed. */
  tokenExpired: 'NK_TOKEN_EXPIRED',
  /** The bootstrap token was revoked. */
  tokenRevoked: 'NK_TOKEN_REVOKED',
  /** Every use the bootstrap token allowed has been spent. */
  tokenExhausted: 'NK_TOKEN_EXHAUSTED',
  /** A bootstrap token cannot replace an enrolled machine's credential (proof of its key, or an admin reset, can). */
  machineAlreadyEnrolled: 'NK_MACHINE_ALREADY_ENROLLED',
  /** A re-enrollment's proof of the machine key failed: wrong signature, unknown or used nonce, or no key registered. */
  proofInvalid: 'NK_ENROLL_PROOF_INVALID',
  /** An enrollment carried neither a bootstrap token nor proof of a machine key. */
  enrollUnauthorised: 'NK_ENROLL_UNAUTHORISED',
  /** The machine credential's lifetime is over (the agent re-enrolls with its key). */
  credentialExpired: 'NK_AUTH_CREDENTIAL_EXPIRED',
  /** The hostname is not a valid Machine name (an RFC 1123 subdomain, as Node names are). */
  machineNameInvalid: 'NK_MACHINE_NAME_INVALID',
  /** The machine was revoked: it can neither connect nor re-enroll. */
  machineRevoked: 'NK_MACHINE_REVOKED',
  /** No machine of that name. */
  machineNotFound: 'NK_MACHINE_NOT_FOUND',
} as const satisfies Record<string, CoordinatorCode | CommonCode>;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];
