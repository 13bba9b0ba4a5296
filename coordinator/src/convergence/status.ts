/**
 * What convergence looks like from outside, as pure functions: each Machine's
 * `status.packages[]` (MachineConfigPool's current / desired / state / reason node
 * annotations) and the ClusterPackageVersion's summary and conditions.
 */
import { TERMINAL_PHASES } from '../rollout/types.ts';
import { atVersion, followsCpv } from './planner.ts';
import type { ConvergeMachine, DesiredPackage, PackageConvergence, RolloutSummary } from './types.ts';

export type MachinePackageState = 'Converged' | 'Updating' | 'Degraded' | 'Pending';

export interface MachinePackageStatus {
  readonly name: string;
  readonly current: string | null;
  readonly desired: string;
  readonly state: MachinePackageState;
  readonly reason: string;
}

const WORKING = new Set(['Waiting', 'Installing', 'Soaking', 'RollingBack']);

/**
 * One machine's packages against what it should run: its pin, else the CPV's version.
 * `rollouts` in creation order; `plan` is the planner's per-package verdict.
 */
export function machinePackages(m: ConvergeMachine, packages: readonly DesiredPackage[], rollouts: readonly RolloutSummary[], plan: readonly PackageConvergence[]): MachinePackageStatus[] {
  const out: MachinePackageStatus[] = [];
  for (const pkg of packages) {
    const desired = m.pins[pkg.name] ?? pkg.version;
    if (desired === null) continue;
    const current = m.versions[pkg.name] ?? null;
    const entry = (state: MachinePackageState, reason: string) => out.push({ name: pkg.name, current, desired, state, reason });
    if (!m.reported) {
      entry('Pending', 'NotReported: the agent has not reported its versions yet');
      continue;
    }
    if (atVersion(m, pkg.name, desired)) {
      entry('Converged', '');
      continue;
    }
    const mine = rollouts.filter((r) => r.packages.includes(pkg.name) && r.machines[m.name] !== undefined);
    const working = mine.find((r) => !TERMINAL_PHASES.has(r.phase) && r.phase !== 'Paused' && WORKING.has(r.machines[m.name]!));
    if (working !== undefined) {
      entry('Updating', `${working.name}: ${working.machines[m.name]}`);
      continue;
    }
    const last = mine.at(-1);
    if (last !== undefined && (last.machines[m.name] === 'Failed' || (last.phase === 'Paused' && WORKING.has(last.machines[m.name]!)))) {
      entry('Degraded', last.machines[m.name] === 'Failed' ? `${last.name}: install failed` : `${last.name} is paused: ${last.reason}`);
      continue;
    }
    const verdict = plan.find((p) => p.name === pkg.name);
    const pinned = m.pins[pkg.name] !== undefined;
    if (pkg.strategy === null) entry('Pending', 'NoUpdateStrategy: roll out by hand (nkctl rollout create)');
    else if (!pinned && !followsCpv(m, pkg)) entry('Pending', 'NotSelected: outside updateStrategy.selector');
    else if (verdict?.state === 'Degraded') entry('Degraded', `${verdict.reason}: ${verdict.message}`);
    else if (verdict?.state === 'Paused') entry('Pending', 'UpdateStrategyPaused');
    else entry('Pending', verdict?.rollout !== null && verdict?.rollout !== undefined ? `WaitingForRollout: ${verdict.rollout}` : 'WaitingForRollout');
  }
  return out;
}

export { machineConverged } from './summary.ts';

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

/** The ClusterPackageVersion's conditions: Converging, Converged, Degraded, Paused (packages with an updateStrategy only). */
export function cpvConditions(plan: readonly PackageConvergence[]): Condition[] {
  const managed = plan.filter((p) => p.state !== 'Unmanaged');
  const list = (state: string) => managed.filter((p) => p.state === state);
  const names = (ps: readonly PackageConvergence[]) => ps.map((p) => `${p.name}: ${p.message}`).join('; ');
  const converging = list('Converging');
  const degraded = list('Degraded');
  const paused = list('Paused');
  const converged = managed.length > 0 && managed.every((p) => p.state === 'Converged');
  return [
    { type: 'Converging', status: converging.length > 0 ? 'True' : 'False', reason: converging.length > 0 ? 'RolloutsRunning' : 'Idle', message: names(converging) },
    {
      type: 'Converged', status: converged ? 'True' : 'False',
      reason: managed.length === 0 ? 'NoUpdateStrategy' : converged ? 'AllAtDesired' : 'NotAllAtDesired',
      message: managed.length === 0 ? 'no package has an updateStrategy: convergence is off' : managed.map((p) => `${p.name} ${p.atDesired}/${p.machines}`).join(', '),
    },
    { type: 'Degraded', status: degraded.length > 0 ? 'True' : 'False', reason: degraded[0]?.reason ?? 'AsExpected', message: names(degraded) },
    { type: 'Paused', status: paused.length > 0 ? 'True' : 'False', reason: paused.length > 0 ? 'UpdateStrategyPaused' : 'NotPaused', message: paused.map((p) => p.name).join(', ') },
  ];
}

/** `converged` / `updating` / `degraded` / `paused` for the CPV as a whole. */
export function cpvSummary(plan: readonly PackageConvergence[]): string {
  const managed = plan.filter((p) => p.state !== 'Unmanaged');
  if (managed.length === 0) return 'off';
  if (managed.some((p) => p.state === 'Degraded')) return 'degraded';
  if (managed.some((p) => p.state === 'Paused')) return 'paused';
  if (managed.some((p) => p.state === 'Converging')) return 'updating';
  return 'converged';
}
