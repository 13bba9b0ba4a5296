/**
 * The API's view of API credentials (`/v1/apicredentials`), shared by the server and
 * nkctl: one home for the contract. A credential's secret is shown once, in the answer
 * to its creation, and never again.
 */
import type { ApiCredentialRecord, ApiRole } from '../store/types.ts';
import { rfc3339 } from './objects.ts';

export interface ApiCredentialObject {
  readonly id: string;
  readonly role: ApiRole;
  readonly description: string;
  readonly createdAt: string;
  readonly revoked: boolean;
  readonly revokedAt: string | null;
}

export interface ApiCredentialList {
  readonly kind: 'ApiCredentialList';
  readonly items: readonly ApiCredentialObject[];
}

/** Response of `POST /v1/apicredentials`: the only time the credential is shown. */
export interface ApiCredentialCreated extends ApiCredentialObject {
  readonly credential: string;
}

export function toApiCredentialObject(c: ApiCredentialRecord): ApiCredentialObject {
  return {
    id: c.id,
    role: c.role,
    description: c.description,
    createdAt: rfc3339(c.createdAt),
    revoked: c.revokedAt !== null,
    revokedAt: c.revokedAt === null ? null : rfc3339(c.revokedAt),
  };
}
