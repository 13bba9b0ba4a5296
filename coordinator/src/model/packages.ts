/**
 * Desired package versions: the cluster-wide defaults (the ClusterPackageVersion), how
 * they converge by themselves, and the artifacts pushed to the coordinator.
 */
import type { PackageManifest } from '@nodekeeper/protocol';
import type { ObjectMeta } from './object-meta.ts';

/** One package's cluster-wide default, as the ClusterPackageVersion holds it. */
export interface PackageDefault {
  readonly name: string;
  readonly version: string;
  readonly artifact: { readonly url: string; readonly sha256: string; readonly size: number; readonly signature?: string };
  /** How it installs; the coordinator's built-in manifest for known packages when absent. */
  readonly manifest?: PackageManifest;
  readonly parameters?: Readonly<Record<string, string>>;
  /** This package's convergence strategy; replaces the CPV's default field by field (convergence/). */
  readonly updateStrategy?: UpdateStrategyInput;
}

/**
 * How desired versions converge by themselves (docs/declarative.md, Convergence): the
 * Rollout's spec.strategy fields plus paused, selector and onSupersede, as written.
 */
export interface UpdateStrategyInput {
  readonly paused?: boolean;
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly onSupersede?: 'Keep' | 'Rollback';
  readonly canary?: { readonly count?: number; readonly percent?: number };
  readonly soakSeconds?: number;
  readonly batches?: readonly number[];
  readonly batchSize?: number;
  readonly maxUnavailable?: number | string;
  readonly maxFailures?: number | string;
  readonly onFailure?: 'Pause' | 'Rollback';
  readonly maxPerZone?: number;
  readonly window?: { readonly days?: readonly string[]; readonly start: string; readonly end: string; readonly timeZone?: string };
}

export interface ClusterPackageVersionRecord {
  readonly packages: readonly PackageDefault[];
  /** The default convergence strategy of every package; absent: convergence is off unless a package has its own. */
  readonly updateStrategy?: UpdateStrategyInput;
  /** Moves by one each time the packages change. */
  readonly generation: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Object metadata (store/object-meta.ts); the store always fills it. */
  readonly meta?: ObjectMeta;
}

export interface ArtifactRecord {
  readonly sha256: string;
  readonly package: string;
  readonly version: string;
  readonly size: number;
  /** base64 ed25519 signature over the raw sha256 digest, or null. */
  readonly signature: string | null;
  readonly createdAt: number;
}
