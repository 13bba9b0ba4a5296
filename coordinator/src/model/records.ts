/**
 * The other records nodekeeper keeps: bootstrap tokens, API credentials, the event trail
 * and rollouts (whose spec and state types live in rollout/).
 */
import type { ObjectMeta } from './object-meta.ts';

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

export interface RolloutRecord {
  readonly name: string;
  /** coordinator/src/rollout's spec type, defaults applied. */
  readonly spec: unknown;
  /** coordinator/src/rollout's state type. */
  readonly state: unknown;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Object metadata (store/object-meta.ts); the store always fills it. */
  readonly meta?: ObjectMeta;
}

/** A rollout the converger (convergence/) made, and what it was made for. */
export interface ConvergenceRolloutRow {
  readonly name: string;
  readonly package: string;
  /** '' for the ClusterPackageVersion's rollouts; the machine's name for a pin's. */
  readonly track: string;
  readonly generation: number;
  readonly version: string;
  /** What the rollout was made for (version, strategy, selector), to tell when it is superseded. */
  readonly specKey: string;
  /** The converger paused it (updateStrategy.paused), so it may resume it. */
  readonly pausedByUs: boolean;
  readonly createdAt: number;
}
