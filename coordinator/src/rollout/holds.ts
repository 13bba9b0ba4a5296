/**
 * What a rollout holds of the fleet, read from its persisted state alone (pure), for the
 * controller to share with the other users of the machines: other rollouts (which wait,
 * `BusyElsewhere`), remediation (which leaves a held machine alone) and
 * `nkctl machine delete` (refused without --force).
 *
 * A hold means "this rollout is changing the machine, or may still change it by
 * itself". A running rollout holds its machines in flight and the ones it failed after
 * switching something (its onFailure may still roll them back). A finished rollout
 * (Completed, RolledBack, Failed) changes nothing more by itself, so it holds only the
 * machines whose command is still out (an abort lets a sent install finish); its failed
 * machines are released, or a failed soak would block every later rollout and every
 * repair of that machine for good. They still count against the shared availability
 * budget while they are not healthy again (architecture invariant 1,
 * "failed-not-yet-restored"): see failedLeftovers().
 */
import { isSilent } from './draft.ts';
import type { MachineView, RolloutState } from './types.ts';
import { IN_FLIGHT, MACHINE_GONE, TERMINAL_PHASES } from './types.ts';

type Held = Pick<RolloutState, 'phase' | 'machines'>;

/** Machines the rollout holds now: nobody else may change them. */
export function holdsOf(state: Held): string[] {
  const done = TERMINAL_PHASES.has(state.phase);
  const out: string[] = [];
  for (const [m, p] of Object.entries(state.machines)) {
    if (p.reason === MACHINE_GONE) continue; // deleted: its name may come back as a new machine
    if (done ? IN_FLIGHT.has(p.phase) && p.commandId !== null : IN_FLIGHT.has(p.phase) || (p.phase === 'Failed' && p.changed.length > 0)) out.push(m);
  }
  return out;
}

/**
 * Machines a finished rollout failed after switching something on them: held by nobody,
 * but unavailable because of nodekeeper until they are healthy again (unavailableOf()).
 */
export function failedLeftovers(state: Held): string[] {
  if (!TERMINAL_PHASES.has(state.phase)) return [];
  const out: string[] = [];
  for (const [m, p] of Object.entries(state.machines)) if (p.phase === 'Failed' && p.changed.length > 0 && p.reason !== MACHINE_GONE) out.push(m);
  return out;
}

/** Of `leftovers`, the machines not healthy again (unhealthy, silent or unknown): they count against the budget. */
export function stillUnavailable(leftovers: readonly string[], views: ReadonlyMap<string, MachineView>): string[] {
  return leftovers.filter((m) => {
    const v = views.get(m);
    return v !== undefined && (isSilent(v) || !v.healthy);
  });
}

/**
 * Why a rollout may not be deleted now, or null: it still runs, holds a machine, or
 * machines it failed still count against the budget (they would be forgotten with it).
 */
export function deleteRefusal(r: { readonly name: string; readonly state: Held; readonly holds: readonly string[]; readonly leftovers: readonly string[] }, views: ReadonlyMap<string, MachineView>): string | null {
  if (!TERMINAL_PHASES.has(r.state.phase)) return `it is ${r.state.phase}; abort it first (nkctl rollout abort ${r.name})`;
  if (r.holds.length > 0) return `machines are still in flight (${r.holds.slice(0, 5).join(', ')}); wait for them to finish`;
  const out = stillUnavailable(r.leftovers, views);
  return out.length > 0 ? `machines it failed still count against the availability budget until healthy (${out.slice(0, 5).join(', ')})` : null;
}
