/**
 * What a policy step needs to know of the machine views besides the views themselves:
 * who is silent, who is unhealthy for the storm guard, and who has an Active fault (the
 * only machines a new ladder may start on). Two ways to have it:
 * - indexViews(array): computed once per views array (inputs are immutable) and kept
 *   while the caller passes the same array again;
 * - LiveViewIndex: kept up to date view by view (remediation/machine-views.ts puts the
 *   views that changed), so a step after a few views changed costs a few updates, not
 *   a walk over the fleet. The policy reads it during the call only.
 * Both give the same sets for the same views (machine-views.test.ts).
 */
import type { RemediationMachineView, ViewIndex } from './types.ts';

export type { ViewIndex };

/** Silent: liveness Unknown, or the coordinator lost its connection (the first sign of a partition). */
export const silent = (v: RemediationMachineView): boolean => v.liveness.state === 'Unknown' || v.contactLost;

/**
 * Unhealthy for the storm guard: an active fault, or reporting NotReady. A machine that
 * has not reported yet (Pending: a fleet still enrolling) is not unhealthy.
 */
export const faulty = (v: RemediationMachineView): boolean =>
  (!v.healthy && v.liveness.state === 'NotReady') || v.faults.some((f) => f.type !== 'AgentSilent' && f.status === 'Active');

const hasActive = (v: RemediationMachineView): boolean => v.faults.some((f) => f.status === 'Active');

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
      if (hasActive(v)) withActive.push(v);
    }
    index = { byName, silent: quiet, faulty: unhealthy, withActive, members: {} };
    known.set(views, index);
  }
  return index;
}

/** True when `machines` is an index rather than an array of views. */
export function isViewIndex(machines: readonly RemediationMachineView[] | ViewIndex): machines is ViewIndex {
  return !Array.isArray(machines);
}

/** An index kept up to date one view at a time; see the file's comment. */
export class LiveViewIndex implements ViewIndex {
  readonly #byName = new Map<string, RemediationMachineView>();
  readonly #silent = new Set<string>();
  readonly #faulty = new Set<string>();
  readonly #active = new Map<string, RemediationMachineView>();
  #members: object = {};

  get byName(): ReadonlyMap<string, RemediationMachineView> {
    return this.#byName;
  }

  get silent(): Iterable<string> {
    return this.#silent;
  }

  get faulty(): Iterable<string> {
    return this.#faulty;
  }

  get withActive(): Iterable<RemediationMachineView> {
    return this.#active.values();
  }

  get members(): object {
    return this.#members;
  }

  /** Sets the machine's view (a new name is added, a known one's view replaced). */
  put(v: RemediationMachineView): void {
    const had = this.#byName.get(v.name);
    if (had === v) return;
    if (had === undefined) this.#members = {};
    this.#byName.set(v.name, v);
    this.#classify(v.name, v);
  }

  /** Drops the machine's view; false when it had none. */
  remove(name: string): boolean {
    if (!this.#byName.delete(name)) return false;
    this.#members = {};
    this.#classify(name, null);
    return true;
  }

  #classify(name: string, v: RemediationMachineView | null): void {
    const quiet = v !== null && silent(v);
    toggle(this.#silent, name, quiet);
    toggle(this.#faulty, name, v !== null && !quiet && faulty(v));
    if (v !== null && hasActive(v)) this.#active.set(name, v);
    else this.#active.delete(name);
  }
}

function toggle(set: Set<string>, name: string, on: boolean): void {
  if (on) set.add(name);
  else set.delete(name);
}
