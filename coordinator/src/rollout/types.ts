/**
 * A Rollout's persisted state, the planner's inputs and its actions. The spec (what an
 * operator writes) lives in spec.ts; this file is the state machine: phases, the one
 * transition table per machine, and the shapes the controller persists and feeds back.
 * Everything here is plain JSON, so the store can keep it as is and a restart resumes
 * from it (docs/rollouts.md).
 */
import type { Partition } from '../budget/budget.ts';
import type { LivenessState } from '../model/machine.ts';
import type { RolloutSpec } from './spec.ts';

// Phases, machine phases and operator requests are the API contract's (@nodekeeper/api): nkctl and the page read the same lists.
import { ROLLOUT_ACTIONS, ROLLOUT_MACHINE_PHASES, type RolloutAction, type RolloutCounts, type RolloutMachinePhase, type RolloutPhase } from '@nodekeeper/api';
export { ROLLOUT_PHASES, type RolloutPhase } from '@nodekeeper/api';

/**
 * Every move a rollout may make. Completed and Failed only move on an operator's
 * `rollback`; RolledBack is final.
 */
export const ROLLOUT_TRANSITIONS: Readonly<Record<RolloutPhase, readonly RolloutPhase[]>> = {
  Pending: ['Canary', 'Progressing', 'Completed', 'Paused', 'RollingBack', 'Failed'],
  Canary: ['Soaking', 'Progressing', 'Completed', 'Paused', 'RollingBack', 'Failed'],
  Soaking: ['Canary', 'Progressing', 'Completed', 'Paused', 'RollingBack', 'Failed'],
  Progressing: ['Completed', 'Paused', 'RollingBack', 'Failed'],
  Paused: ['Pending', 'Canary', 'Soaking', 'Progressing', 'Completed', 'RollingBack', 'Failed'],
  Completed: ['RollingBack'],
  RollingBack: ['RolledBack', 'Paused', 'Failed'],
  RolledBack: [],
  Failed: ['RollingBack'],
};

/** Phases in which the planner starts work (installs or rollbacks). */
export const ACTIVE_PHASES: ReadonlySet<RolloutPhase> = new Set(['Pending', 'Canary', 'Soaking', 'Progressing', 'RollingBack']);
/** Phases a rollout does not leave by itself. */
export const TERMINAL_PHASES: ReadonlySet<RolloutPhase> = new Set(['Completed', 'RolledBack', 'Failed']);

/** Phases of one machine within a rollout. */
export const MACHINE_PHASES = ROLLOUT_MACHINE_PHASES;
export type MachinePhase = RolloutMachinePhase;

/** Every move a machine may make within a rollout (Installing -> Installing is the next package). */
export const MACHINE_TRANSITIONS: Readonly<Record<MachinePhase, readonly MachinePhase[]>> = {
  Waiting: ['Installing', 'Skipped'],
  // Installing -> RollingBack: a machine held between two packages (see HeldForSkew).
  Installing: ['Installing', 'Soaking', 'Failed', 'Skipped', 'RollingBack'],
  Soaking: ['Succeeded', 'Failed', 'RollingBack', 'RolledBack', 'Skipped'],
  Succeeded: ['RollingBack', 'RolledBack'],
  Failed: ['RollingBack', 'RolledBack'],
  RollingBack: ['RollingBack', 'RolledBack', 'Failed'],
  RolledBack: [],
  // An abort leaves installed-but-unsoaked machines Skipped; a later rollback reaches them.
  Skipped: ['RollingBack', 'RolledBack'],
};

/** The reason of a machine deleted from the fleet mid-rollout: settled, never held, never rolled back. */
export const MACHINE_GONE = 'MachineGone';

/** Machine phases in which nodekeeper is changing the machine (it counts as unavailable). */
export const IN_FLIGHT: ReadonlySet<MachinePhase> = new Set(['Installing', 'Soaking', 'RollingBack']);
/** Machine phases that need nothing more from a progressing rollout. */
export const SETTLED: ReadonlySet<MachinePhase> = new Set(['Succeeded', 'Failed', 'Skipped', 'RolledBack']);

/** What an operator may ask of a rollout (`nkctl rollout pause|resume|abort|rollback NAME`). */
export const OPERATOR_REQUESTS = ROLLOUT_ACTIONS;
export type OperatorRequest = RolloutAction;

/** The phases each request is accepted in; the API answers 409 outside them. */
export const REQUEST_ALLOWED: Readonly<Record<OperatorRequest, ReadonlySet<RolloutPhase>>> = {
  pause: new Set(['Pending', 'Canary', 'Soaking', 'Progressing', 'RollingBack']),
  resume: new Set(['Paused']),
  abort: new Set(['Pending', 'Canary', 'Soaking', 'Progressing', 'Paused', 'RollingBack']),
  rollback: new Set(['Pending', 'Canary', 'Soaking', 'Progressing', 'Paused', 'Completed', 'Failed']),
};

/** True when `request` makes sense in `phase`. */
export function requestAllowed(phase: RolloutPhase, request: OperatorRequest): boolean {
  return REQUEST_ALLOWED[request].has(phase);
}

/** The step a machine is on: one package, one version, one command. */
export interface MachineStep {
  /** `reboot`: a reboot rollout's one step (package `node`, version ''), driven by reboot/driver.ts. */
  readonly action: 'install' | 'rollback' | 'reboot';
  readonly package: string;
  readonly version: string;
}

/** One machine's progress within a rollout. */
export interface MachineProgress {
  readonly phase: MachinePhase;
  /** CamelCase, e.g. `Installed`, `InstallFailed`, `AlreadyAtVersion`. */
  readonly reason: string;
  readonly message: string;
  /** When `phase` last changed (coordinator clock, ms). */
  readonly since: number;
  /** How many times this rollout started the machine (1 once started; no retries today). */
  readonly attempt: number;
  readonly step: MachineStep | null;
  /** The command the machine's current step waits on. */
  readonly commandId: string | null;
  /** Package -> version active before this rollout touched it (what a rollback restores). */
  readonly previous: Readonly<Record<string, string | null>>;
  /** Packages this rollout switched (or may have switched) on the machine, in order. */
  readonly changed: readonly string[];
  /** Start of the current unbroken healthy observation while soaking, or null. */
  readonly soakFrom: number | null;
  /** The install step that failed (download, verify, ..., health), when one did. */
  readonly failedStep: string | null;
  /** True for a failure the operator has accepted with `resume` (not counted again). */
  readonly counted: boolean;
}

/** Why nothing new is starting right now, while the phase itself says "running". */
export interface WaitingReason {
  readonly reason: string;
  readonly message: string;
}

/** The per-phase machine counts, as the API's `status.counts`. */
export type RolloutCounters = Readonly<RolloutCounts>;

/** The persisted state of a rollout: everything a restarted coordinator needs. */
export interface RolloutState {
  readonly phase: RolloutPhase;
  readonly reason: string;
  readonly message: string;
  /** The nkctl command that moves a stopped rollout on, or null. */
  readonly continueWith: string | null;
  /** When `phase` last changed. */
  readonly since: number;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly completedAt: number | null;
  /** Selected machines in their fixed order (sha256 of rollout/machine), fixed at creation. */
  readonly candidates: readonly string[];
  /** Cumulative end indices into `candidates` of each wave; wave 0 is the canaries when there are any. */
  readonly waves: readonly number[];
  readonly canaryCount: number;
  /** The wave now running (index into `waves`). */
  readonly wave: number;
  readonly machines: Readonly<Record<string, MachineProgress>>;
  readonly counters: RolloutCounters;
  /** The phase a Paused rollout returns to on resume. */
  readonly resumeTo: RolloutPhase | null;
  /** Last resume: silence is counted from here so a resume is not undone at once. */
  readonly resumedAt: number | null;
  readonly waiting: WaitingReason | null;
}

/** One machine as the planner sees it, built by the controller from the fleet view. */
export interface MachineView {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly zone: string | null;
  /** Coordinator-side liveness (fleet/liveness.ts) and when it last changed. */
  readonly liveness: { readonly state: LivenessState; readonly since: number };
  /** Has a live connection now (commands can be delivered). */
  readonly connected: boolean;
  /** Package -> active version as last reported (raw string), or null when not installed/unknown. */
  readonly versions: Readonly<Record<string, string | null>>;
  /** kubelet, runtime and CNI all healthy in the last report. */
  readonly healthy: boolean;
  /** When the machine last became healthy (coordinator clock), or null while unhealthy. */
  readonly healthySince: number | null;
  /** The agent says a reboot is required (host facts); null or absent when it does not say. */
  readonly rebootRequired?: boolean | null;
}

/**
 * What holds a reboot rollout besides its window, as the controller last read it
 * (reboot/gates.ts): firing alerts or an unreachable Prometheus hold the whole rollout;
 * blocking pods on a machine's Node hold that machine.
 */
export interface RebootGates {
  readonly rollout: WaitingReason | null;
  readonly machines: ReadonlyMap<string, WaitingReason>;
}

/** Other users of the cluster's availability budget. */
export interface BudgetView {
  /** The cluster-wide maximum of machines nodekeeper may make unavailable at once. */
  readonly maxUnavailable: number;
  /** Machines already made unavailable by others (other rollouts, remediations). */
  readonly unavailableNow: ReadonlySet<string> | readonly string[];
  /**
   * Machines that count against the budget though nobody holds them: failed by a
   * finished rollout and not healthy again (holds.ts). Another rollout may start them
   * (they already count, so a start adds nothing); they are never BusyElsewhere.
   */
  readonly countedNow?: readonly string[];
  /**
   * A suspected partition (the remediation storm guard's): while set, the rollout starts
   * and judges nothing and leaves results for later; an operator's request still changes
   * its phase (architecture.md invariant 5).
   */
  readonly partition?: Partition | null;
}

/**
 * The result of a command the planner asked for, as the controller reads it from the
 * command record. `failed` and `timed-out` leave the machine's state unknown.
 */
export interface InstallResultEvent {
  readonly kind: 'installResult';
  readonly machine: string;
  readonly commandId: string;
  /** `cancelled`: never sent (the rollout stopped while it waited, say behind a drain); nothing changed. */
  readonly outcome: 'installed' | 'already-installed' | 'rolled-back' | 'refused' | 'failed' | 'timed-out' | 'cancelled';
  /** The version active on the node now, when the agent said. */
  readonly activeVersion: string | null;
  readonly failedStep?: string;
  readonly message: string;
  /** The machine's reason when it failed (a reboot's RebootFailed, DrainStopped...), when the result names one. */
  readonly reason?: string;
}

export type RolloutInputEvent = InstallResultEvent;

/** Tunables of the planner that are not part of the spec. */
export interface PlanOptions {
  /** How long a silent machine may block the rollout before it pauses (default 5 minutes). */
  readonly silenceTimeoutMs?: number;
}

export interface PlanInput {
  readonly rollout: { readonly name: string; readonly spec: RolloutSpec; readonly state: RolloutState };
  /** Every machine; a Map is keyed by machine name (and used as it is, not copied). */
  readonly machines: ReadonlyMap<string, MachineView> | readonly MachineView[];
  readonly budget: BudgetView;
  /** kube-apiserver's version, or null when unknown (then no kubelet moves). */
  readonly controlPlaneVersion: string | null;
  readonly now: number;
  /** Results since the last step; duplicates and stale ones are ignored. */
  readonly events?: readonly RolloutInputEvent[];
  /** An operator's request, applied before anything else is planned. */
  readonly request?: OperatorRequest | null;
  readonly options?: PlanOptions;
  /** A reboot rollout's holds (absent: none). */
  readonly gates?: RebootGates;
}

/** What the controller must do, in order. Persist `state` and record commands in one transaction. */
export type PlanAction =
  | { readonly kind: 'install'; readonly machine: string; readonly package: string; readonly version: string; readonly commandId: string; readonly previousVersion: string | null }
  | { readonly kind: 'rollback'; readonly machine: string; readonly package: string; readonly version: string; readonly commandId: string }
  /** Start the reboot of one machine (cordon, drain, reboot, new boot, Ready, uncordon) under `commandId`. */
  | { readonly kind: 'reboot'; readonly machine: string; readonly commandId: string }
  | { readonly kind: 'setMachinePhase'; readonly machine: string; readonly phase: MachinePhase; readonly reason: string; readonly message: string }
  | { readonly kind: 'setPhase'; readonly phase: RolloutPhase; readonly reason: string; readonly message: string; readonly continueWith: string | null }
  | { readonly kind: 'event'; readonly type: 'Normal' | 'Warning'; readonly object: string; readonly reason: string; readonly message: string };

export interface PlanResult {
  readonly actions: readonly PlanAction[];
  readonly state: RolloutState;
}
