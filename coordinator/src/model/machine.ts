/**
 * A machine (one Kubernetes worker node) as nodekeeper knows it: identity, the last full
 * report, liveness and conditions. Domain types, shared by the store, the fleet view and
 * the pure decision modules (fleet/, rollout/, remediation/, convergence/, budget/), so
 * none of those reads the store's module to learn what a machine is. Times are
 * milliseconds since the epoch on the coordinator's own clock (never an agent's).
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
