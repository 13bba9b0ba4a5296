/**
 * Applies the convergence planner (planner.ts, pure) to the world: reads the CPV, the
 * fleet, the rollouts and its own table, and creates, supersedes, pauses and resumes
 * rollouts through the RolloutController, so every gate, the shared budget and the skew
 * guard apply as to a hand-made rollout. It keeps nothing a restart would lose: the names
 * are deterministic and each is written to convergence_rollouts before the rollout is
 * created, so a restarted coordinator never makes a second rollout for one target.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import type { Clock } from '../clock.ts';
import type { RolloutController } from '../controllers/rollout-controller.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import { effectiveUpdateStrategy } from '../packages/cluster-package-version.ts';
import type { Store } from '../store/db.ts';
import { ConvergeMachines, convergeMachine } from './machines.ts';
import { planConvergence } from './planner.ts';
import { cpvConditions, cpvSummary, machinePackages, type MachinePackageStatus } from './status.ts';
import {
  CPV_TRACK, DEFAULT_CONVERGE_OPTIONS, FINAL_REFUSALS,
  type ConvergeAction, type ConvergeInput, type ConvergeOptions, type ConvergePlan, type DesiredPackage,
} from './types.ts';

const CPV_OBJECT = 'clusterpackageversion/cluster';
/** Convergence needs no sub-second reaction; the controllers' timer may run every 50 ms. */
const MIN_TICK_MS = 500;

export class ConvergenceController {
  private last: { input: ConvergeInput; plan: ConvergePlan } | null = null;
  /** When each CPV condition last changed status (coordinator clock). */
  private readonly transitions = new Map<string, { status: string; at: number }>();

  private readonly deps: { store: Store; fleet: FleetView; rollouts: RolloutController; clock: Clock; log: Logger };
  private readonly opts: ConvergeOptions;

  /** The planner's machines, kept from what the fleet view says moved (machines.ts). */
  private readonly machines = new ConvergeMachines();

  constructor(deps: { store: Store; fleet: FleetView; rollouts: RolloutController; clock: Clock; log: Logger }, opts: ConvergeOptions = DEFAULT_CONVERGE_OPTIONS) {
    this.deps = deps;
    this.opts = opts;
    deps.fleet.onChanged((name) => this.machines.touched(name));
  }

  /** What the planner reads, from the store, the fleet and the rollout controller. */
  input(): ConvergeInput {
    const { store, fleet, rollouts } = this.deps;
    const cpv = store.getClusterPackageVersion();
    // Only the machines the fleet view said moved are read again (machines.ts).
    this.machines.refresh(fleet);
    const packages: DesiredPackage[] = (cpv?.packages ?? []).map((p) => ({ name: p.name, version: p.version, strategy: effectiveUpdateStrategy(cpv?.updateStrategy, p.updateStrategy) }));
    // A package only pins name converges with the CPV's default strategy (if any).
    for (const p of this.machines.pinnedPackages()) {
      if (!packages.some((x) => x.name === p)) packages.push({ name: p, version: null, strategy: effectiveUpdateStrategy(cpv?.updateStrategy, undefined) });
    }
    const names = packages.map((p) => p.name);
    const overview = rollouts.overview();
    const byName = new Map(overview.map((r) => [r.name, r]));
    return {
      generation: cpv?.generation ?? 0,
      packages,
      machines: this.machines.machines(fleet, names),
      managed: store.listConvergenceRollouts().map((r) => ({ ...r, rollout: byName.get(r.name) ?? null })),
      rollouts: overview,
      refusals: store.listConvergenceRefusals(),
      now: this.deps.clock(),
      options: this.opts,
    };
  }

  /** Plans and applies one step; call on the controllers' timer (runs at most every MIN_TICK_MS). */
  tick(): void {
    const now = this.deps.clock();
    if (this.last !== null && now - this.last.input.now < MIN_TICK_MS && now >= this.last.input.now) return;
    const input = this.input();
    const plan = planConvergence(input);
    this.last = { input, plan };
    for (const a of plan.actions) {
      try {
        this.apply(a, input.generation);
      } catch (err) {
        // A request that lost a race with the rollout's own step (say it just completed)
        // is decided again on the next tick; one package's trouble never stops the others.
        this.deps.log.warn({ err, action: a.kind, rollout: a.name }, 'convergence step failed; the next tick decides again');
      }
    }
    // What was just created or requested shows at once in the Machine and CPV status.
    const after = plan.actions.length === 0 ? this.last : (() => {
      const fresh = this.input();
      return { input: fresh, plan: planConvergence(fresh) };
    })();
    this.last = after;
    this.recordChanges(after.plan);
  }

  private apply(a: ConvergeAction, generation: number): void {
    const { store, rollouts, log } = this.deps;
    const target = (name: string) => `rollout/${name}`;
    if (a.kind === 'create') {
      // Written first: a crash between the two leaves a name taken, never a second rollout.
      store.addConvergenceRollout({ name: a.name, package: a.package, track: a.track, generation: a.generation, version: a.version, specKey: a.specKey });
      const what = a.track === CPV_TRACK ? `ClusterPackageVersion generation ${a.generation}` : `the pin of ${a.track} (generation ${a.generation})`;
      const message = `created by convergence for ${what}: ${a.package}=${a.version} on ${a.machines.length} machine(s)`;
      try {
        // The events go with the rollout, before its first step sends an install (create's doc).
        rollouts.create(a.object, [
          { object: target(a.name), type: 'Normal', reason: 'RolloutCreated', message },
          { object: CPV_OBJECT, type: 'Normal', reason: 'RolloutCreated', message: `${a.name} ${message}` },
        ]);
      } catch (err) {
        store.removeConvergenceRollout(a.name);
        if (!(err instanceof AppError)) throw err;
        store.addConvergenceRefusal({ package: a.package, track: a.track, key: a.refusalKey, code: err.code, message: err.message });
        const again = FINAL_REFUSALS.has(err.code) ? 'not retried until the target changes' : `retried in ${Math.round(this.opts.retryBaseMs / 1000)}s`;
        store.recordEvent({ object: CPV_OBJECT, type: 'Warning', reason: 'RolloutRefused', message: `${a.package}=${a.version} for ${what} refused (${err.code}): ${err.message}; ${again}` });
        log.warn({ rollout: a.name, code: err.code }, 'converger rollout refused');
        return;
      }
      log.info({ rollout: a.name, generation }, 'converger rollout created');
    } else if (a.kind === 'supersede') {
      rollouts.request(a.name, a.request);
      store.setConvergencePausedByUs(a.name, false);
      store.recordEvent({ object: target(a.name), type: 'Normal', reason: 'RolloutSuperseded', message: a.message });
      store.recordEvent({ object: CPV_OBJECT, type: 'Normal', reason: 'RolloutSuperseded', message: `${a.name} ${a.message}` });
    } else if (a.kind === 'pause') {
      // Marked first: if the request fails the mark is harmless (resume only acts on Paused).
      store.setConvergencePausedByUs(a.name, true);
      rollouts.request(a.name, 'pause');
      store.recordEvent({ object: target(a.name), type: 'Normal', reason: 'ConvergencePaused', message: `paused: updateStrategy.paused is true for ${a.package}` });
    } else {
      rollouts.request(a.name, 'resume');
      store.setConvergencePausedByUs(a.name, false);
      store.recordEvent({ object: target(a.name), type: 'Normal', reason: 'ConvergenceResumed', message: `resumed: updateStrategy.paused is false for ${a.package}` });
    }
  }

  /** Events on a package's change of state only (the table remembers the last one). */
  private recordChanges(plan: ConvergePlan): void {
    const { store } = this.deps;
    const before = store.convergencePackageStates();
    for (const p of plan.packages) {
      const was = before.get(p.name);
      if (was !== undefined && was.state === p.state && was.reason === p.reason) continue;
      if (was === undefined && p.state === 'Unmanaged') continue;
      store.transaction(() => {
        store.setConvergencePackageState(p.name, p.state, p.reason);
        if (p.state === 'Converged' && was !== undefined && was.state !== 'Converged') {
          store.recordEvent({ object: CPV_OBJECT, type: 'Normal', reason: 'Converged', message: `${p.name}: ${p.message}` });
        } else if (p.state === 'Paused' && was?.state !== 'Paused') {
          store.recordEvent({ object: CPV_OBJECT, type: 'Normal', reason: 'ConvergencePaused', message: `${p.name}: ${p.message}` });
        } else if (p.state === 'Degraded' && (was?.state !== 'Degraded' || was.reason !== p.reason)) {
          store.recordEvent({ object: CPV_OBJECT, type: 'Warning', reason: 'ConvergenceDegraded', message: `${p.name}: ${p.reason}: ${p.message}` });
        }
      });
    }
  }

  private current(): { input: ConvergeInput; plan: ConvergePlan } {
    if (this.last === null) {
      const input = this.input();
      this.last = { input, plan: planConvergence(input) };
    }
    return this.last;
  }

  /** A Machine's `status.packages[]` (current, desired, state, reason), as of the last tick. */
  machinePackages(name: string): MachinePackageStatus[] {
    const { input, plan } = this.current();
    const m = this.deps.fleet.get(name);
    if (m === undefined) return [];
    // The rollouts as they are now (their machines move between ticks); the verdicts as of the last tick.
    return machinePackages(convergeMachine(m, input.packages.map((p) => p.name)), input.packages, this.deps.rollouts.overview(), plan.packages);
  }

  /** The ClusterPackageVersion's convergence summary and conditions. */
  cpvStatus(): Record<string, unknown> {
    const { input, plan } = this.current();
    const now = this.deps.clock();
    const conditions = cpvConditions(plan.packages).map((c) => {
      const t = this.transitions.get(c.type);
      if (t === undefined || t.status !== c.status) this.transitions.set(c.type, { status: c.status, at: now });
      return { ...c, lastTransitionTime: new Date(this.transitions.get(c.type)!.at).toISOString(), observedGeneration: input.generation };
    });
    return {
      converged: cpvSummary(plan.packages),
      convergence: plan.packages.map((p) => ({ name: p.name, desired: p.desired, state: p.state, reason: p.reason, message: p.message, machines: p.machines, atDesired: p.atDesired, rollout: p.rollout })),
      conditions,
    };
  }
}
