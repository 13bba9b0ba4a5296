/**
 * The package objects of the API as nkctl reads them (docs/nkctl.md, "API"): an
 * Artifact in the coordinator's store, the cluster's ClusterPackageVersion and the
 * per-package summary. nkctl only renders and forwards these; the coordinator owns
 * their validation.
 */
import type { PackageSummary } from '../packages/cluster-package-version.ts';
import type { ArtifactRef, PackageManifest } from '@nodekeeper/protocol';

/** `PUT /v1/artifacts` answer and `ArtifactList` item. */
export interface ArtifactObject {
  readonly kind: 'Artifact';
  readonly package: string;
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
  readonly signature: string | null;
  readonly url: string;
  readonly createdAt: string;
}

export interface ArtifactList {
  readonly kind: 'ArtifactList';
  readonly items: ArtifactObject[];
}

/** One package of `ClusterPackageVersion.spec.packages`. */
export interface CpvPackage {
  readonly name: string;
  readonly version: string;
  readonly artifact: ArtifactRef;
  readonly manifest?: PackageManifest;
  readonly parameters?: Record<string, string>;
}

/** How the fleet stands against one package's desired version (the server's shape). */
export type { PackageSummary };

export interface ClusterPackageVersionObject {
  readonly apiVersion: string;
  readonly kind: 'ClusterPackageVersion';
  readonly metadata: { readonly name: string; readonly creationTimestamp?: string; readonly generation: number; readonly uid?: string; readonly resourceVersion?: string };
  readonly spec: { readonly packages: CpvPackage[] };
  readonly status: { readonly packages: PackageSummary[] };
}

export interface PackageList {
  readonly kind: 'PackageList';
  readonly items: PackageSummary[];
}
