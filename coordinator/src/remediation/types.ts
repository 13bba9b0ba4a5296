/**
 * The remediation policy's persisted state, inputs and actions. Plain JSON, so the store
 * keeps it as is and a restarted coordinator resumes from it (docs/remediation.md).
 */
import type { LivenessState } from '../model/machine.ts';
import type { Fault } from './faults.ts';
import type { LadderAction, RemediationRule } from './rules.ts';

/** Phases of one machine's remediation. */
export const REMEDIATION_PHASES = ['Idle', 'Running', 'NeedsHuman'] as const;
export type RemediationPhase = (typeof REMEDIATION_PHASES)[number];

/** Every move a machine's remediation may make (Running -> Running is the next step). */
export const REMEDIATION_TRANSITIONS: Readonly<Record<RemediationPhase, readonly RemediationPhase[]>> = {
  Idle: ['Running', 'NeedsHuman'],
  Running: ['Running', 'Idle', 'NeedsHuman'],
  NeedsHuman: ['Idle'],
};

/** One line of a machine's story (bounded; the full trail is in the events). */
export interface HistoryEntry {
  readonly at: number;
  readonly rule: string;
  readonly step: number;
  readonly action: LadderAction | 'none';
  readonly result: string;
}

export interface MachineRemediation {
  readonly phase: RemediationPhase;
  readonly reason: string;
  readonly message: string;
  readonly since: number;
  /** The rule of the running (or last) ladder. */
  readonly rule: string | null;
  /** Index into the rule's ladder. */
  readonly step: number;
  /** Ladders started on this machine in all (part of the command id). */
  readonly ladders: number;
  /** Start times of recent ladders (for maxAttemptsPerMachine per window). */
  readonly attempts: readonly number[];
  readonly cooldownUntil: number;
  /** The command the step waits on; null before it is issued (held) or for no-command steps. */
  readonly commandId: string | null;
  readonly stepStartedAt: number | null;
  /** The command's outcome once known. */
  readonly commandOutcome: CommandOutcome | null;
  /**
   * When the outcome arrived (the policy's clock): successWithinSeconds counts from here,
   * so a command that ran long is not judged before it answered. Absent in records
   * written before it existed (then stepStartedAt stands in).
   */
  readonly commandDoneAt?: number | null;
  /** NeedsHuman after a cordon: counts against the availability budget until restored. */
  readonly cordoned: boolean;
  /** Why nothing starts on this machine now (recorded so the event fires once). */
  readonly waiting: string | null;
  /** Dry run: the fault episode already recorded (`rule@since`), so it is recorded once. */
  readonly dryRunNoted: string | null;
  readonly history: readonly HistoryEntry[];
}

export interface StormState {
  readonly active: boolean;
  readonly reason: string;
  readonly message: string;
  readonly since: number;
  /** Start of the current calm while active, else null. */
  readonly calmSince: number | null;
}

export interface RemediationState {
  readonly machines: Readonly<Record<string, MachineRemediation>>;
  readonly storm: StormState;
}

/** The machine views indexed as the policy reads them (view-index.ts keeps one live). */
export interface ViewIndex {
  /** By name; a later view of the same name replaces an earlier one. */
  readonly byName: ReadonlyMap<string, RemediationMachineView>;
  /** Names of silent agents (liveness Unknown, or their connection lost). */
  readonly silent: Iterable<string>;
  /** Names of machines that are not silent and are unhealthy (see faulty()). */
  readonly faulty: Iterable<string>;
  /** Views with an Active fault, in no particular order. */
  readonly withActive: Iterable<RemediationMachineView>;
  /** Replaced (a new object) whenever the set of names changes: what caches of "which names" key on. */
  readonly members: object;
}

/** One machine as the policy sees it, built by the controller from the fleet view. */
export interface RemediationMachineView {
  readonly name: string;
  readonly zone: string | null;
  readonly liveness: { readonly state: LivenessState; readonly since: number };
  readonly connected: boolean;
  /**
   * The coordinator had a connection to this agent since it started and lost it, and the
   * agent has not come back. Lost connections are the first sign of a partition, long
   * before liveness turns Unknown; after a coordinator restart no agent counts as lost.
   */
  readonly contactLost: boolean;
  /** kubelet, runtime and CNI healthy in the last report. */
  readonly healthy: boolean;
  readonly faults: readonly Fault[];
  /** Package -> desired version (ClusterPackageVersion or the machine's override). */
  readonly desired: Readonly<Record<string, string>>;
}

export type CommandOutcome = 'succeeded' | 'failed' | 'timed-out';

export interface CommandResult {
  readonly machine: string;
  readonly commandId: string;
  readonly outcome: CommandOutcome;
  readonly message: string;
}

export interface RemediationSettings {
  /** Fleet cap on remediations in flight. */
  readonly maxConcurrent: number;
  /** Storm when unhealthy machines exceed max(absolute, floor(percent% of the fleet)). */
  readonly maxUnhealthy: { readonly absolute: number; readonly percent: number };
  /** Share (0..1) of silent agents at or above which a partition is suspected. */
  readonly silentShareThreshold: number;
  /** ...provided at least this many are silent (one silent agent of three is a node fault). */
  readonly minSilentForPartition: number;
  readonly stormCooldownSeconds: number;
}

/** Defaults: see docs/remediation.md for the reasoning. */
export const DEFAULT_REMEDIATION_SETTINGS: RemediationSettings = Object.freeze({
  maxConcurrent: 5,
  maxUnhealthy: Object.freeze({ absolute: 1, percent: 10 }),
  silentShareThreshold: 0.2,
  minSilentForPartition: 2,
  stormCooldownSeconds: 600,
});

export interface RemediationInput {
  /**
   * The machines' views: an array, or an index of them (view-index.ts; the controller
   * hands its live one, kept view by view, which the policy reads during the call only).
   */
  readonly machines: readonly RemediationMachineView[] | ViewIndex;
  readonly rules: readonly RemediationRule[];
  /** The persisted state, or null the first time. */
  readonly state: RemediationState | null;
  readonly budget: {
    readonly maxUnavailable: number;
    /** Machines others (rollouts) hold now: never touched by remediation. */
    readonly unavailableNow: readonly string[];
    /**
     * Machines out because of others though nobody holds them (failed by a finished
     * rollout, not healthy again: budget/budget.ts Hold.counted). They count against the
     * limit; remediation may still start one (it already counts, so that adds nothing).
     */
    readonly countedNow?: readonly string[];
  };
  readonly settings: RemediationSettings;
  readonly pause: { readonly cluster: boolean; readonly machines: ReadonlySet<string> | readonly string[] };
  readonly dryRun: boolean;
  /** Results since the last step; duplicates and stale ones are ignored. */
  readonly results: readonly CommandResult[];
  readonly now: number;
}

export type AgentCommandKind = 'service.restart' | 'config.restore' | 'package.install' | 'node.reboot';

/**
 * What the controller adds to a step's timeoutSeconds when it records the command (room
 * for a download and unpack on an install), and the dispatcher's wait for a sent
 * command's result past that: together, a command's deadline.
 */
export const COMMAND_ALLOWANCE_MS: Readonly<Record<AgentCommandKind, number>> = Object.freeze({ 'service.restart': 30_000, 'config.restore': 30_000, 'package.install': 30 * 60_000, 'node.reboot': 30_000 });
export const RESULT_GRACE_MS = 30_000;

/**
 * How long after issuing a step the policy waits for its command's outcome before it
 * gives up on it: past the command's own deadline and the dispatcher's (which answers a
 * sent command with timed-out first), so only a command never delivered (its agent cut
 * off all along) reaches it. Until then the step is not judged at all.
 */
export function resultDeadlineMs(command: AgentCommandKind, timeoutSeconds: number): number {
  return Math.min(600_000, Math.max(1000, timeoutSeconds * 1000)) + COMMAND_ALLOWANCE_MS[command] + 2 * RESULT_GRACE_MS;
}

/** What the controller must do, in order. Persist `state` and record commands in one transaction. */
export type RemediationAction =
  | { readonly kind: 'command'; readonly machine: string; readonly commandId: string; readonly command: AgentCommandKind; readonly params: Readonly<Record<string, string>>; readonly timeoutSeconds: number; readonly rule: string; readonly step: number }
  | { readonly kind: 'cordon'; readonly machine: string; readonly rule: string; readonly message: string }
  /** The step gave up on this command: if it was never sent, it must never be (fail it unsent). */
  | { readonly kind: 'cancelCommand'; readonly machine: string; readonly commandId: string; readonly message: string }
  | { readonly kind: 'wouldRemediate'; readonly machine: string; readonly rule: string; readonly step: number; readonly action: LadderAction; readonly target: string | null; readonly message: string }
  | { readonly kind: 'setMachine'; readonly machine: string; readonly phase: RemediationPhase; readonly reason: string; readonly message: string }
  | { readonly kind: 'setStorm'; readonly active: boolean; readonly reason: string; readonly message: string }
  | { readonly kind: 'event'; readonly type: 'Normal' | 'Warning'; readonly object: string; readonly reason: string; readonly message: string; readonly rule: string | null; readonly step: number | null };

export interface RemediationResult {
  readonly actions: readonly RemediationAction[];
  readonly state: RemediationState;
}
