/**
 * The API's view of API credentials (`/v1/apicredentials`): the contract's shape
 * (@nodekeeper/api) built from a record. A credential's secret is shown once, in the answer
 * to its creation, and never again.
 */
import type { ApiCredential } from '@nodekeeper/api';
import type { ApiCredentialRecord } from '../store/types.ts';
import { rfc3339 } from './objects.ts';

/** A credential as the API lists it (the contract's ApiCredential). */
export function toApiCredentialObject(c: ApiCredentialRecord): ApiCredential {
  return {
    id: c.id,
    role: c.role,
    description: c.description,
    createdAt: rfc3339(c.createdAt),
    revoked: c.revokedAt !== null,
    revokedAt: c.revokedAt === null ? null : rfc3339(c.revokedAt),
  };
}
