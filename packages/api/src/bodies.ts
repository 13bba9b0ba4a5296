/**
 * Request bodies of the small routes (enrollment, tokens, credentials, pins, switches,
 * host registration): the server compiles and checks these very schemas at its edge.
 * The larger objects (Rollout, ClusterPackageVersion) have theirs beside their object.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ArtifactRef, KeyProof, MachineIdentity, MachinePublicKey, PackageName, PackageVersion } from '@nodekeeper/protocol';
import { Nullable } from './meta.ts';

/** `POST /v1/enroll`. */
export const EnrollBody = Type.Object(
  {
    /** A bootstrap token (new machines, or one an admin reset); or `proof`, never both needed. */
    token: Type.Optional(Type.String({ maxLength: 128 })),
    identity: MachineIdentity,
    agentVersion: Type.String({ maxLength: 64 }),
    /** The agent's machine key, registered with the machine. */
    publicKey: MachinePublicKey,
    /** Proof of the enrolled machine's key over a nonce from POST /v1/enroll/challenge. */
    proof: Type.Optional(KeyProof),
  },
  { additionalProperties: false },
);
export type EnrollBody = Static<typeof EnrollBody>;

/** Answer of `POST /v1/enroll`: the machine credential, shown once. */
export const Enrolled = Type.Object({ machine: Type.String(), credential: Type.String(), heartbeatIntervalMs: Type.Integer(), credentialExpiresInMs: Type.Integer() });
export type Enrolled = Static<typeof Enrolled>;

/** `POST /v1/enroll/challenge`. */
export const ChallengeBody = Type.Object({ machine: Type.String({ minLength: 1, maxLength: 253 }) }, { additionalProperties: false });
export type ChallengeBody = Static<typeof ChallengeBody>;
export const Challenge = Type.Object({ nonce: Type.String(), expiresInMs: Type.Integer() });
export type Challenge = Static<typeof Challenge>;

/** `POST /v1/tokens`. */
export const TokenCreateBody = Type.Object(
  {
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 86_400 })),
    uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    description: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type TokenCreateBody = Static<typeof TokenCreateBody>;

/** `PUT /v1/machines/{name}/packages`: the machine's pins over the ClusterPackageVersion. */
export const MachinePackagesBody = Type.Object(
  {
    packages: Type.Array(
      Type.Object(
        {
          name: PackageName,
          version: PackageVersion,
          artifact: Type.Optional(ArtifactRef),
          parameters: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }), { maxProperties: 64 })),
        },
        { additionalProperties: false },
      ),
      { maxItems: 64 },
    ),
  },
  { additionalProperties: false },
);
export type MachinePackagesBody = Static<typeof MachinePackagesBody>;

/** `POST /v1/apicredentials`. */
export const ApiCredentialCreateBody = Type.Object(
  {
    role: Type.Union([Type.Literal('admin'), Type.Literal('read-only')]),
    description: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type ApiCredentialCreateBody = Static<typeof ApiCredentialCreateBody>;

/** `POST /v1/remediations/dry-run`. */
export const DryRunBody = Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false });
export type DryRunBody = Static<typeof DryRunBody>;

/** `POST /v1/host/register`. */
export const HostRegisterBody = Type.Object(
  {
    cluster: Type.String({ minLength: 1, maxLength: 64 }),
    server: Type.String({ minLength: 1, maxLength: 2048 }),
    caPem: Type.Optional(Nullable(Type.String({ maxLength: 65_536 }))),
    caHash: Type.String({ pattern: '^sha256:[0-9a-f]{64}$' }),
    token: Type.String({ minLength: 1, maxLength: 64 }),
    provider: Type.Optional(Type.String({ maxLength: 63 })),
    region: Type.Optional(Type.String({ maxLength: 63 })),
    zone: Type.Optional(Type.String({ maxLength: 63 })),
  },
  { additionalProperties: false },
);
export type HostRegisterBody = Static<typeof HostRegisterBody>;

/** `POST /v1/host/unregister`. */
export const HostUnregisterBody = Type.Object({ localOnly: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type HostUnregisterBody = Static<typeof HostUnregisterBody>;
