/**
 * The Rollout object of the API as nkctl reads it (docs/nkctl.md, "API"). The
 * coordinator validates and drives rollouts; nkctl builds specs, renders status and
 * asks for transitions.
 */

import type { MachinePhase, RolloutCounters, RolloutPhase } from '../rollout/types.ts';

// The phases are the planner's own (one definition, coordinator/src/rollout/types.ts).
export { MACHINE_PHASES, ROLLOUT_PHASES } from '../rollout/types.ts';
export type { RolloutPhase };
export type RolloutMachinePhase = MachinePhase;

/** Phases a rollout never leaves by itself; `status -w` stops at these and at Paused. */
export const TERMINAL_PHASES: ReadonlySet<string> = new Set<RolloutPhase>(['Completed', 'RolledBack', 'Failed']);

/** An absolute number, or a percent written `"10%"` (Kubernetes' IntOrString). */
export type IntOrPercent = number | string;

export interface RolloutStrategy {
  canary?: { count?: number; percent?: number };
  soakSeconds?: number;
  /** Cumulative percents of the selected machines, e.g. [10, 50, 100]. */
  batches?: number[];
  batchSize?: number;
  maxUnavailable?: IntOrPercent;
  maxFailures?: IntOrPercent;
  onFailure?: 'Pause' | 'Rollback';
  maxPerZone?: number;
  window?: unknown;
}

/** spec.drain (docs/rollouts.md): kubectl drain's options for disruptive installs. */
export interface RolloutDrain {
  force?: boolean;
  deleteEmptyDirData?: boolean;
  timeoutSeconds?: number;
  gracePeriodSeconds?: number;
}

export interface RolloutSpec {
  /** Absent on a reboot rollout (the server stores it as []). */
  packages?: { package: string; version: string }[];
  /** A reboot rollout's own part (docs/kubernetes.md, Reboots). */
  reboot?: {
    onlyRequired?: boolean;
    blockingPods?: string;
    prometheus?: { url: string; alertFilter?: string };
    drain?: { force?: boolean; deleteEmptyDirData?: boolean; timeoutSeconds?: number; gracePeriodSeconds?: number };
    timeoutSeconds?: number;
  };
  selector: { matchLabels?: Record<string, string>; names?: string[] };
  strategy: RolloutStrategy;
  allowDowngrade?: boolean;
  drain?: RolloutDrain;
  /** Held as `nkctl rollout pause` does (docs/declarative.md). */
  paused?: boolean;
}

export interface RolloutMachineStatus {
  readonly name: string;
  readonly phase: RolloutMachinePhase | string;
  readonly package: string;
  readonly fromVersion: string | null;
  readonly toVersion: string;
  readonly step: string | null;
  readonly reason: string;
  readonly message: string;
  readonly since: string | null;
}

/** The server's counters, as the API sends them. */
export type RolloutCounts = RolloutCounters;

/** metav1.Condition as the API sends it. */
export interface RolloutConditionObject {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

export interface RolloutStatus {
  /** Absent from coordinators older than object metadata. */
  readonly observedGeneration?: number;
  readonly conditions?: readonly RolloutConditionObject[];
  readonly phase: RolloutPhase | string;
  readonly reason: string;
  readonly message: string;
  /** The nkctl command that moves a stopped rollout on, or null. */
  readonly continueWith: string | null;
  readonly batch: { readonly index: number; readonly total: number };
  readonly counts: RolloutCounts;
  readonly machines: RolloutMachineStatus[];
  readonly startedTime: string | null;
  readonly completedTime: string | null;
}

export interface RolloutObject {
  readonly apiVersion: string;
  readonly kind: 'Rollout';
  readonly metadata: { readonly name: string; readonly creationTimestamp?: string; readonly uid?: string; readonly generation?: number; readonly resourceVersion?: string };
  readonly spec: RolloutSpec;
  readonly status?: RolloutStatus;
}

export interface RolloutList {
  readonly kind: 'RolloutList';
  readonly items: RolloutObject[];
}

/** The transitions an operator can ask for: `POST /v1/rollouts/{name}/{action}`. */
export const ROLLOUT_ACTIONS = ['pause', 'resume', 'abort', 'rollback'] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];
