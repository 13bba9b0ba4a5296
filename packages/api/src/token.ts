/** Bootstrap tokens (`/v1/tokens`) and API credentials (`/v1/apicredentials`). Secrets are shown once, in the answer to their creation. */
import { Type, type Static } from '@sinclair/typebox';
import { Condition, ListOf, Nullable, ObjectMetaFields, Time } from './meta.ts';

export const Token = Type.Object({
  /** Kubernetes-style metadata (name = id) beside the flat fields, when the store's metadata is given. */
  metadata: Type.Optional(Type.Object({ name: Type.String(), ...ObjectMetaFields })),
  status: Type.Optional(Type.Object({ observedGeneration: Type.Integer({ minimum: 0 }), conditions: Type.Array(Condition) })),
  id: Type.String(),
  description: Type.String(),
  createdAt: Time,
  expiresAt: Time,
  /** Enrollments allowed in all. */
  uses: Type.Integer({ minimum: 0 }),
  /** Enrollments made so far. */
  used: Type.Integer({ minimum: 0 }),
  revoked: Type.Boolean(),
  revokedAt: Nullable(Time),
});
export type Token = Static<typeof Token>;

export const TokenList = ListOf('TokenList', Token);
export type TokenList = Static<typeof TokenList>;

/** Answer of `POST /v1/tokens`: the only time the secret is ever shown. */
export const TokenCreated = Type.Object({
  token: Type.String(),
  id: Type.String(),
  expiresAt: Time,
  uses: Type.Integer({ minimum: 1 }),
  /** `sha256:<hex>` of the coordinator CA's public key, or null when serving plain http. */
  caCertHash: Nullable(Type.String()),
});
export type TokenCreated = Static<typeof TokenCreated>;

export const ApiRole = Type.Union([Type.Literal('admin'), Type.Literal('read-only')]);
export type ApiRole = Static<typeof ApiRole>;

export const ApiCredential = Type.Object({
  id: Type.String(),
  role: ApiRole,
  description: Type.String(),
  createdAt: Time,
  revoked: Type.Boolean(),
  revokedAt: Nullable(Time),
});
export type ApiCredential = Static<typeof ApiCredential>;

export const ApiCredentialList = ListOf('ApiCredentialList', ApiCredential);
export type ApiCredentialList = Static<typeof ApiCredentialList>;

/** Answer of `POST /v1/apicredentials`: the only time the credential is shown. */
export const ApiCredentialCreated = Type.Composite([ApiCredential, Type.Object({ credential: Type.String() })]);
export type ApiCredentialCreated = Static<typeof ApiCredentialCreated>;
