/**
 * Packages: an Artifact in the coordinator's store (`/v1/artifacts`), the cluster's
 * ClusterPackageVersion (`/v1/clusterpackageversion`: the input schema is what the
 * server validates with, and the host CRD is generated from it: scripts/gen-crds.ts),
 * and the per-package summary (`/v1/packages`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { ArtifactRef, PackageManifest, PackageName, PackageVersion } from '@nodekeeper/protocol';
import { ApiVersionField, Condition, ListOf, Nullable, ObjectMetaFields, Time } from './meta.ts';
import { StrategySchema } from './rollout.ts';

export const Artifact = Type.Object({
  kind: Type.Literal('Artifact'),
  /** Kubernetes-style metadata (name `sha256:<hex>`) beside the flat fields older clients read. */
  metadata: Type.Optional(Type.Object({ name: Type.String(), uid: Type.Optional(Type.String()), generation: Type.Optional(Type.Integer()), resourceVersion: Type.Optional(Type.String()), creationTimestamp: Type.Optional(Time) })),
  /** `Stored`: the bytes are on disk (agents can download it), not only its row. */
  status: Type.Optional(Type.Object({ observedGeneration: Type.Integer(), conditions: Type.Array(Condition) })),
  package: Type.String(),
  version: Type.String(),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  size: Type.Integer({ minimum: 0 }),
  signature: Nullable(Type.String()),
  url: Type.String(),
  createdAt: Time,
});
export type Artifact = Static<typeof Artifact>;

export const ArtifactList = ListOf('ArtifactList', Artifact);
export type ArtifactList = Static<typeof ArtifactList>;

/**
 * The ClusterPackageVersion's `updateStrategy`: the Rollout's strategy fields plus
 * `paused`, `selector` and `onSupersede`, as a default for every package or per package.
 * Its presence turns convergence on (docs/declarative.md).
 */
export const UpdateStrategySchema = Type.Object(
  {
    paused: Type.Optional(Type.Boolean()),
    /** Machines that follow the ClusterPackageVersion; absent: all. */
    selector: Type.Optional(Type.Object({ matchLabels: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 317 }), Type.String({ maxLength: 63 }), { maxProperties: 64 })) }, { additionalProperties: false })),
    /** What a newer generation does with what the older rollout changed. */
    onSupersede: Type.Optional(Type.Union([Type.Literal('Keep'), Type.Literal('Rollback')])),
    ...StrategySchema.properties,
  },
  { additionalProperties: false },
);
export type UpdateStrategy = Static<typeof UpdateStrategySchema>;

const PackageParameters = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }), { maxProperties: 64 });

/** One package of `ClusterPackageVersion.spec.packages`, as applied. */
export const CpvPackageInput = Type.Object(
  {
    name: PackageName,
    version: PackageVersion,
    artifact: ArtifactRef,
    manifest: Type.Optional(PackageManifest),
    parameters: Type.Optional(PackageParameters),
    updateStrategy: Type.Optional(UpdateStrategySchema),
  },
  { additionalProperties: false },
);

/** The body of `PUT /v1/clusterpackageversion` (and the host CRD's schema). */
export const ClusterPackageVersionInput = Type.Object({
  apiVersion: ApiVersionField,
  kind: Type.Literal('ClusterPackageVersion'),
  metadata: Type.Optional(Type.Object({ name: Type.Optional(Type.Literal('cluster')) })),
  spec: Type.Object(
    {
      packages: Type.Array(CpvPackageInput, { maxItems: 64 }),
      updateStrategy: Type.Optional(UpdateStrategySchema),
    },
    { additionalProperties: false },
  ),
  status: Type.Optional(Type.Unknown()),
});
export type ClusterPackageVersionInput = Static<typeof ClusterPackageVersionInput>;

/** How the fleet stands against one package's desired version. */
export const PackageSummary = Type.Object({
  name: Type.String(),
  desiredVersion: Nullable(Type.String()),
  /** Machines that report the package at all. */
  machines: Type.Integer({ minimum: 0 }),
  atDesired: Type.Integer({ minimum: 0 }),
  healthy: Type.Integer({ minimum: 0 }),
  /** Version (semver reading, else raw) -> machines running it. */
  versions: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
});
export type PackageSummary = Static<typeof PackageSummary>;

export const PackageList = ListOf('PackageList', PackageSummary);
export type PackageList = Static<typeof PackageList>;

/** One package of the served `spec.packages`. */
export const CpvPackage = Type.Object({
  name: Type.String(),
  version: Type.String(),
  artifact: ArtifactRef,
  manifest: Type.Optional(PackageManifest),
  parameters: Type.Optional(Type.Record(Type.String(), Type.String())),
  updateStrategy: Type.Optional(UpdateStrategySchema),
});
export type CpvPackage = Static<typeof CpvPackage>;

export const ClusterPackageVersion = Type.Object({
  apiVersion: ApiVersionField,
  kind: Type.Literal('ClusterPackageVersion'),
  metadata: Type.Object({
    name: Type.Literal('cluster'),
    /** 0 before the first apply. */
    generation: Type.Integer({ minimum: 0 }),
    creationTimestamp: Type.Optional(Time),
    uid: Type.Optional(ObjectMetaFields.uid),
    resourceVersion: Type.Optional(ObjectMetaFields.resourceVersion),
  }),
  spec: Type.Object({ updateStrategy: Type.Optional(UpdateStrategySchema), packages: Type.Array(CpvPackage) }),
  /** Besides `packages`, the converger's summary and conditions (convergence/status.ts). */
  status: Type.Object({ observedGeneration: Type.Integer({ minimum: 0 }), packages: Type.Array(PackageSummary), conditions: Type.Optional(Type.Array(Condition)) }),
});
export type ClusterPackageVersion = Static<typeof ClusterPackageVersion>;
