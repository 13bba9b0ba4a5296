/**
 * The coordinator's records as the store keeps them. Times are milliseconds since the
 * epoch on the coordinator's own clock (never an agent's).
 */
import type { NodeReport } from '@nodekeeper/protocol';

/** Connection-level liveness, judged on the coordinator's clock (see fleet/liveness.ts). */
export type LivenessState = 'Pending' | 'Ready' | 'NotReady' | 'Unknown';

export interface Liveness {
  readonly state: LivenessState;
  /** When the state last changed. */
  readonly since: number;
  readonly reason: string;
  readonly message: string;
}

/** A Kubernetes-style condition (metav1.Condition without observedGeneration). */
export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  /** Only moves when `status` changes. */
  readonly lastTransitionTime: number;
}

export interface MachineRecord {
  /** The Machine's name: the node's hostname, as Kubernetes names the Node. */
  readonly name: string;
  /** /etc/machine-id of the node. */
  readonly machineId: string;
  /** Public part of the machine's credential (the secret is stored hashed only). */
  readonly credentialId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly zone: string | null;
  readonly addresses: readonly string[];
  readonly enrolledAt: number;
  /** Set when revoked: the credential is refused from then on. */
  readonly revokedAt: number | null;
  /** The machine key (base64 raw ed25519), or null before one is registered or after a reset. */
  readonly publicKey?: string | null;
  /** When the current credential stops being accepted (null: before expiry existed). */
  readonly credentialExpiresAt?: number | null;
  /** Set by an admin reset until the machine enrolls again. */
  readonly resetAt?: number | null;
  /** Last full picture the agent reported (deltas merged in), or null before the first. */
  readonly report: NodeReport | null;
  /** When `report` last changed. */
  readonly reportChangedAt: number | null;
  /** Last message of any kind received (flushed in batches, so may lag by a flush interval). */
  readonly lastSeenAt: number | null;
  readonly liveness: Liveness;
  readonly conditions: readonly Condition[];
  readonly agentVersion: string | null;
  /** Packages pinned on this machine over the cluster default (absent: none). */
  readonly packageOverrides?: Readonly<Record<string, PackageOverride>>;
}

/** A machine's own desired version of a package, overriding the ClusterPackageVersion. */
export interface PackageOverride {
  readonly version: string;
  readonly artifact?: { readonly url: string; readonly sha256: string; readonly size: number; readonly signature?: string };
  readonly parameters?: Readonly<Record<string, string>>;
}

export interface TokenRecord {
  /** Public id: the part before the dot of `<id>.<secret>` (kubeadm's bootstrap token form). */
  readonly id: string;
  readonly description: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** How many enrollments it allows in all. */
  readonly maxUses: number;
  readonly used: number;
  readonly revokedAt: number | null;
}

/** Roles for the HTTP API's bearer credentials. */
export type ApiRole = 'admin' | 'read-only';

export interface ApiCredentialRecord {
  readonly id: string;
  readonly role: ApiRole;
  readonly description: string;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export interface EventRecord {
  readonly id: number;
  readonly at: number;
  /** The object it is about, e.g. `machine/node-1`, `token/abcdef`. */
  readonly object: string;
  readonly type: 'Normal' | 'Warning';
  /** CamelCase, e.g. `Enrolled`, `LivenessChanged`, `KubeletUnhealthy`. */
  readonly reason: string;
  readonly message: string;
}

/** One package's cluster-wide default, as the ClusterPackageVersion holds it. */
export interface PackageDefault {
  readonly name: string;
  readonly version: string;
  readonly artifact: { readonly url: string; readonly sha256: string; readonly size: number; readonly signature?: string };
  /** How it installs; the coordinator's built-in manifest for known packages when absent. */
  readonly manifest?: import('@nodekeeper/protocol').PackageManifest;
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
  readonly meta?: import('./object-meta.ts').ObjectMeta;
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

export type CommandState = 'Pending' | 'Sent' | 'Running' | 'Succeeded' | 'Failed' | 'TimedOut';

export interface CommandRecord {
  readonly id: string;
  readonly machine: string;
  readonly kind: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Who asked, e.g. `rollout/web-kubelet`. */
  readonly owner: string | null;
  readonly state: CommandState;
  readonly step: string | null;
  readonly message: string;
  readonly result: Readonly<Record<string, unknown>> | null;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly timeoutMs: number;
  readonly createdAt: number;
  readonly sentAt: number | null;
  readonly finishedAt: number | null;
}

export interface RolloutRecord {
  readonly name: string;
  /** coordinator/src/rollout's spec type, defaults applied. */
  readonly spec: unknown;
  /** coordinator/src/rollout's state type. */
  readonly state: unknown;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Object metadata (store/object-meta.ts); the store always fills it. */
  readonly meta?: import('./object-meta.ts').ObjectMeta;
}
