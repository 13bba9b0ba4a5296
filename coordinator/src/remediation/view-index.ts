/**
 * What a policy step needs to know of the machine views besides the views themselves:
 * who is silent, who is unhealthy for the storm guard, and who has an Active fault (the
 * only machines a new ladder may start on). Inputs are immutable, so this is computed
 * once per views array and kept while the caller passes the same array again; the
 * controller does so while no machine's view changed, and a quiet step over a big fleet
 * then walks no machine's faults.
 */
import type { RemediationMachineView } from './types.ts';

export interface ViewIndex {
  /** By name; a later view of the same name replaces an earlier one. */
  readonly byName: ReadonlyMap<string, RemediationMachineView>;
  /** Names of silent agents (liveness Unknown, or their connection lost). */
  readonly silent: readonly string[];
  /** Names of machines that are not silent and are unhealthy (see faulty()). */
  readonly faulty: readonly string[];
  /** Views with an Active fault, in the order of `byName`. */
  readonly withActive: readonly RemediationMachineView[];
}

/** Silent: liveness Unknown, or the coordinator lost its connection (the first sign of a partition). */
export const silent = (v: RemediationMachineView): boolean => v.liveness.state === 'Unknown' || v.contactLost;

/**
 * Unhealthy for the storm guard: an active fault, or reporting NotReady. A machine that
 * has not reported yet (Pending: a fleet still enrolling) is not unhealthy.
 */
export const faulty = (v: RemediationMachineView): boolean =>
  (!v.healthy && v.liveness.state === 'NotReady') || v.faults.some((f) => f.type !== 'AgentSilent' && f.status === 'Active');

const known = new WeakMap<readonly RemediationMachineView[], ViewIndex>();

/** The index of `views`, computed once per array. */
export function indexViews(views: readonly RemediationMachineView[]): ViewIndex {
  let index = known.get(views);
  if (index === undefined) {
    const byName = new Map<string, RemediationMachineView>();
    for (const v of views) byName.set(v.name, v);
    const quiet: string[] = [];
    const unhealthy: string[] = [];
    const withActive: RemediationMachineView[] = [];
    for (const v of byName.values()) {
      if (silent(v)) quiet.push(v.name);
      else if (faulty(v)) unhealthy.push(v.name);
      if (v.faults.some((f) => f.status === 'Active')) withActive.push(v);
    }
    index = { byName, silent: quiet, faulty: unhealthy, withActive };
    known.set(views, index);
  }
  return index;
}
