/**
 * A rollout at a glance (pure): its packages, phase and each machine's phase, what
 * coordinator/src/convergence reads of every rollout each tick without their full state.
 */
import type { RolloutSpec } from './spec.ts';
import type { MachinePhase, RolloutPhase, RolloutState } from './types.ts';

export interface RolloutOverview {
  readonly name: string;
  readonly packages: readonly string[];
  readonly phase: RolloutPhase;
  readonly reason: string;
  readonly message: string;
  /** When the phase last changed (coordinator clock, ms). */
  readonly since: number;
  readonly machines: Readonly<Record<string, MachinePhase>>;
}

export function rolloutOverview(name: string, spec: Pick<RolloutSpec, 'packages'>, state: RolloutState): RolloutOverview {
  return {
    name, packages: spec.packages.map((p) => p.package), phase: state.phase, reason: state.reason, message: state.message, since: state.since,
    machines: Object.fromEntries(Object.entries(state.machines).map(([m, p]) => [m, p.phase])),
  };
}
