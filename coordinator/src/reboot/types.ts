/**
 * One reboot of one machine, as persisted (store/reboots.ts) and driven by driver.ts:
 * cordon, drain, reboot through the agent, wait for a new boot (and the expected kernel,
 * and the Node Ready), uncordon. Plain JSON: a restarted coordinator resumes from it.
 */
import type { RebootDrain } from '../rollout/spec.ts';

/** The steps, in order; `Done` carries the outcome. */
export const REBOOT_STEPS = ['Cordoning', 'Draining', 'Rebooting', 'WaitingForBoot', 'Uncordoning', 'Done'] as const;
export type RebootStep = (typeof REBOOT_STEPS)[number];

/** Every move a reboot may make: forward, or to Uncordoning/Done when it fails. */
export const REBOOT_TRANSITIONS: Readonly<Record<RebootStep, readonly RebootStep[]>> = {
  Cordoning: ['Draining', 'Uncordoning', 'Done'],
  Draining: ['Rebooting', 'Uncordoning', 'Done'],
  Rebooting: ['WaitingForBoot', 'Uncordoning', 'Done'],
  WaitingForBoot: ['Uncordoning', 'Done'],
  Uncordoning: ['Done'],
  Done: [],
};

export interface RebootOutcome {
  readonly ok: boolean;
  /** `Rebooted`, or why not: `RebootFailed` (old boot, old kernel, not back in time, refused), `DrainStopped`, `Cancelled`. */
  readonly reason: string;
  readonly message: string;
  /** The step it failed at (cordon, drain, reboot, boot). */
  readonly failedStep?: string;
}

export interface RebootState {
  readonly step: RebootStep;
  /** When `step` began (coordinator clock). */
  readonly since: number;
  /** Why (recorded by the agent with the reboot). */
  readonly reason: string;
  readonly drain: RebootDrain;
  /** How long the machine may take to come back, from the reboot command. */
  readonly timeoutMs: number;
  /** The member cluster Node, once found; null without a member cluster. */
  readonly node: string | null;
  /** True once this reboot cordoned the Node (so it uncordons it, and only then). */
  readonly cordoned: boolean;
  /** The boot id and kernel the agent reported just before the reboot command was recorded. */
  readonly bootBefore: string | null;
  readonly kernelBefore: string | null;
  /** The newest installed kernel reported then: the kernel the machine must come back on (null: not checked). */
  readonly expectedKernel: string | null;
  /** When the node.reboot command was recorded. */
  readonly rebootAt: number | null;
  /** When the agent answered the reboot command (`rebooting`): reconnects before it do not count. */
  readonly ackAt: number | null;
  /** The last time the agent connected after answering the reboot command. */
  readonly reconnectedAt: number | null;
  /** The outcome, decided before the last Uncordoning (kept through it) or at Done. */
  readonly outcome: RebootOutcome | null;
  /** What it is doing or waiting for, for `nkctl rollout describe`. */
  readonly message: string;
}
