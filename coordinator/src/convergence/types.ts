/**
 * The convergence planner's inputs and actions (planner.ts). Everything is plain data
 * the controller reads from the store, the fleet view and the rollout controller, so a
 * restarted coordinator decides exactly what the one before it would have.
 */
import type { RolloutOverview } from '../rollout/overview.ts';
import type { UpdateStrategyInput } from '../model/packages.ts';
import type { ConvergenceRolloutRow } from '../model/records.ts';

/** The label the converger puts on the rollouts it creates. */
export const MANAGED_BY_LABEL = 'nodekeeper.io/managed-by';
export const MANAGED_BY = 'convergence';

/** The ClusterPackageVersion's track of a package; a pin's track is its machine's name. */
export const CPV_TRACK = '';

export interface DesiredPackage {
  readonly name: string;
  /** The CPV's version, or null for a package only pins name. */
  readonly version: string | null;
  /** Its effective updateStrategy (own over default); null: this package does not converge. */
  readonly strategy: UpdateStrategyInput | null;
}

export interface ConvergeMachine {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The agent has reported its versions (a machine that never did is Pending, not behind). */
  readonly reported: boolean;
  /** Package -> version as reported (raw), null when not installed. */
  readonly versions: Readonly<Record<string, string | null>>;
  /** Package -> pinned version (`PUT /v1/machines/<name>/packages`). */
  readonly pins: Readonly<Record<string, string>>;
}

/** A rollout as the planner needs it: its packages, its phase and each machine's. */
export type RolloutSummary = RolloutOverview;

/** A rollout the converger created (its own table), with the rollout itself when it still exists. */
export interface ManagedRollout extends Omit<ConvergenceRolloutRow, 'createdAt'> {
  /** Null when the rollout is gone (deleted, or its creation never committed). */
  readonly rollout: RolloutSummary | null;
}

/**
 * A target RolloutController.create refused. A refusal of the target itself (skew,
 * downgrade, an invalid spec: FINAL_REFUSALS) is not tried again until the target
 * changes; any other (an artifact not pushed yet...) again after retryBaseMs.
 */
export interface Refusal {
  readonly package: string;
  readonly track: string;
  readonly key: string;
  readonly code: string;
  readonly message: string;
  /** When it was refused (coordinator clock, ms). */
  readonly at: number;
}

/** Refusals that say the target itself is wrong: only a new target is tried. */
export const FINAL_REFUSALS: ReadonlySet<string> = new Set(['NK_ROLLOUT_SKEW', 'NK_ROLLOUT_DOWNGRADE', 'NK_ROLLOUT_INVALID', 'NK_WINDOW_UNKNOWN_TIME_ZONE']);

export interface ConvergeOptions {
  /** Wait after a failed (or rolled back) converger rollout before the next try; doubles per failure. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
}

export const DEFAULT_CONVERGE_OPTIONS: ConvergeOptions = Object.freeze({ retryBaseMs: 60_000, retryMaxMs: 30 * 60_000 });

export interface ConvergeInput {
  /** The CPV generation (0: none applied). */
  readonly generation: number;
  readonly packages: readonly DesiredPackage[];
  readonly machines: readonly ConvergeMachine[];
  readonly managed: readonly ManagedRollout[];
  /** Every rollout (managed or not), to wait for hand-made ones and to avoid taken names. */
  readonly rollouts: readonly RolloutSummary[];
  readonly refusals: readonly Refusal[];
  readonly now: number;
  readonly options?: ConvergeOptions;
}

export type ConvergeState = 'Converged' | 'Converging' | 'Degraded' | 'Paused' | 'Unmanaged';

/** One package's convergence, for the CPV's status and the events. */
export interface PackageConvergence {
  readonly name: string;
  readonly desired: string | null;
  readonly state: ConvergeState;
  /** CamelCase. */
  readonly reason: string;
  readonly message: string;
  /** Machines that follow the CPV for this package (selected, reported, not pinned elsewhere). */
  readonly machines: number;
  readonly atDesired: number;
  /** The live converger rollout, if any. */
  readonly rollout: string | null;
}

export type ConvergeAction =
  | {
    readonly kind: 'create';
    readonly name: string;
    readonly package: string;
    readonly track: string;
    readonly generation: number;
    readonly version: string;
    readonly specKey: string;
    /** What a refusal is remembered under: `g<generation>` or the pin's version. */
    readonly refusalKey: string;
    readonly machines: readonly string[];
    /** The Rollout object for RolloutController.create. */
    readonly object: Record<string, unknown>;
  }
  | { readonly kind: 'supersede'; readonly name: string; readonly request: 'abort' | 'rollback'; readonly package: string; readonly generation: number; readonly message: string }
  | { readonly kind: 'pause'; readonly name: string; readonly package: string }
  | { readonly kind: 'resume'; readonly name: string; readonly package: string };

export interface ConvergePlan {
  readonly actions: readonly ConvergeAction[];
  readonly packages: readonly PackageConvergence[];
}
