/**
 * A new rollout's first state: the candidates chosen and ordered once, the waves cut,
 * and the version rules checked up front so a bad rollout is refused with a clear
 * message instead of failing machine by machine.
 */
import { AppError } from '@nodekeeper/common';
import { canaryCount, selectCandidates, waveEnds } from './candidates.ts';
import { countMachines, emptyProgress } from './draft.ts';
import { checkSkew, sameVersion } from './skew.ts';
import type { MachineRecord } from '../model/machine.ts';
import type { RolloutSpec } from './spec.ts';
import type { MachineProgress, MachineView, RolloutState } from './types.ts';

/** How many offending machines a refusal names before it says "and N more". */
const NAMED_IN_REFUSAL = 5;

export interface NewRolloutInput {
  readonly name: string;
  readonly spec: RolloutSpec;
  readonly machines: Iterable<MachineView>;
  readonly controlPlaneVersion: string | null;
  readonly now: number;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, NAMED_IN_REFUSAL).join(', ');
  return names.length > NAMED_IN_REFUSAL ? `${shown} and ${names.length - NAMED_IN_REFUSAL} more` : shown;
}

/**
 * The initial (Pending) state of a rollout. Refuses with NK_ROLLOUT_NO_MACHINES when the
 * selector matches nothing, NK_ROLLOUT_SKEW when a kubelet target breaks the
 * version-skew policy against the control plane, and NK_ROLLOUT_DOWNGRADE when a
 * selected machine would be downgraded without `allowDowngrade`.
 */
export function newRolloutState(input: NewRolloutInput): RolloutState {
  const machines = [...input.machines];
  const candidates = selectCandidates(input.name, input.spec.selector, machines);
  if (candidates.length === 0) {
    throw new AppError('NK_ROLLOUT_NO_MACHINES', `rollout "${input.name}": the selector matches no machine; check matchLabels and names with "nkctl get machines --show-labels"`, { context: { rollout: input.name } });
  }
  const targets = Object.fromEntries(input.spec.packages.map((p) => [p.package, p.version]));
  const skew = checkSkew({ controlPlane: input.controlPlaneVersion, targets, current: {}, allowDowngrade: true }).filter((r) => r.reason !== 'Downgrade');
  if (skew.length > 0) {
    throw new AppError('NK_ROLLOUT_SKEW', `rollout "${input.name}" refused: ${skew.map((r) => r.message).join('; ')}`, { context: { rollout: input.name, reasons: skew } });
  }
  if (!input.spec.allowDowngrade) {
    const byName = new Map(machines.map((m) => [m.name, m]));
    const downgraded: string[] = [];
    let example = '';
    for (const name of candidates) {
      const m = byName.get(name);
      if (m === undefined) continue;
      const moving = Object.fromEntries(Object.entries(targets).filter(([pkg, v]) => !sameVersion(m.versions[pkg] ?? null, v)));
      const r = checkSkew({ controlPlane: input.controlPlaneVersion, targets: moving, current: m.versions }).find((x) => x.reason === 'Downgrade');
      if (r !== undefined) {
        downgraded.push(name);
        if (example === '') example = r.message;
      }
    }
    if (downgraded.length > 0) {
      throw new AppError('NK_ROLLOUT_DOWNGRADE', `rollout "${input.name}" refused: it would downgrade ${listNames(downgraded)} (${example})`, { context: { rollout: input.name, machines: downgraded } });
    }
  }
  const canaries = canaryCount(input.spec.strategy.canary, candidates.length);
  const progress: Record<string, MachineProgress> = {};
  for (const name of candidates) progress[name] = emptyProgress(input.now);
  return {
    phase: 'Pending',
    reason: 'Created',
    message: `${candidates.length} machine(s) selected, ${canaries} canary(ies)`,
    continueWith: null,
    since: input.now,
    createdAt: input.now,
    startedAt: null,
    completedAt: null,
    candidates,
    waves: waveEnds(input.spec.strategy, canaries, candidates.length),
    canaryCount: canaries,
    wave: 0,
    machines: progress,
    counters: countMachines(candidates, progress),
    resumeTo: null,
    resumedAt: null,
    waiting: null,
  };
}

/**
 * Machines that pin one of the rollout's packages to another version: left out, since
 * the pin is the operator's word for that machine and a rollout does not overrule it.
 */
export function pinnedElsewhere(spec: Pick<RolloutSpec, 'packages'>, machines: Iterable<Pick<MachineRecord, 'name' | 'packageOverrides'>>): Set<string> {
  const out = new Set<string>();
  for (const m of machines) {
    if (spec.packages.some((p) => {
      const pin = m.packageOverrides?.[p.package];
      return pin !== undefined && pin.version !== p.version;
    })) out.add(m.name);
  }
  return out;
}
