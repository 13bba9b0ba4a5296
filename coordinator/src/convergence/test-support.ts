/**
 * A small in-test coordinator for convergence tests: the pure convergence planner and
 * the pure rollout planner, driven the way ConvergenceController and RolloutController
 * drive them (create through newRolloutState with the pinned machines left out, requests
 * through planStep, the shared budget from the other rollouts' holds), against the
 * rollout tests' SimFleet. A "restart" loses the unpersisted rest of a step.
 */
import { AppError } from '@nodekeeper/common';
import { effectiveUpdateStrategy } from '../packages/cluster-package-version.ts';
import { newRolloutState } from '../rollout/create.ts';
import { failedLeftovers, holdsOf, stillUnavailable } from '../rollout/holds.ts';
import { rolloutOverview } from '../rollout/overview.ts';
import { planStep } from '../rollout/planner.ts';
import { parseRollout, type RolloutSpec } from '../rollout/spec.ts';
import { budgetUnavailable, SimFleet } from '../rollout/test-support.ts';
import { TERMINAL_PHASES, type MachineView, type OperatorRequest, type PlanAction, type RolloutState } from '../rollout/types.ts';
import type { UpdateStrategyInput } from '../model/packages.ts';
import { planConvergence } from './planner.ts';
import type { ConvergeAction, ConvergeInput, ConvergeOptions, ConvergePlan, ManagedRollout, Refusal, RolloutSummary } from './types.ts';

export interface SimCpv {
  generation: number;
  packages: { name: string; version: string; updateStrategy?: UpdateStrategyInput }[];
  updateStrategy?: UpdateStrategyInput;
}

export type StepCheck = (name: string, before: RolloutState, after: RolloutState, actions: readonly PlanAction[]) => void;

interface SimRollout { name: string; spec: RolloutSpec; state: RolloutState; created: number }
type Row = Omit<ManagedRollout, 'rollout'>;

export class SimCoordinator {
  readonly fleet = new SimFleet();
  cpv: SimCpv = { generation: 0, packages: [] };
  readonly pins = new Map<string, Record<string, string>>();
  /** Stored rollouts in creation order. */
  readonly rollouts = new Map<string, SimRollout>();
  readonly managed: Row[] = [];
  readonly refusals: Refusal[] = [];
  readonly events: { reason: string; object: string; message: string }[] = [];
  controlPlane: string | null = 'v1.31.5';
  clusterMax = 2;
  now = 0;
  private seq = 0;
  /** Every install a rollout asked for: `rollout machine pkg@version`. */
  readonly installs: { rollout: string; machine: string; package: string; version: string; at: number }[] = [];
  readonly options: ConvergeOptions;

  constructor(options: ConvergeOptions = { retryBaseMs: 30_000, retryMaxMs: 120_000 }) {
    this.options = options;
  }

  apply(cpv: Omit<SimCpv, 'generation'>): void {
    if (JSON.stringify({ p: cpv.packages, u: cpv.updateStrategy }) === JSON.stringify({ p: this.cpv.packages, u: this.cpv.updateStrategy })) return;
    this.cpv = { ...structuredClone(cpv), generation: this.cpv.generation + 1 };
  }

  summaries(): RolloutSummary[] {
    return [...this.rollouts.values()].map((r) => rolloutOverview(r.name, r.spec, r.state));
  }

  input(): ConvergeInput {
    const summaries = this.summaries();
    const packages = this.cpv.packages.map((p) => ({ name: p.name, version: p.version, strategy: effectiveUpdateStrategy(this.cpv.updateStrategy, p.updateStrategy) }));
    return {
      generation: this.cpv.generation,
      packages,
      machines: [...this.fleet.machines.values()].map((m) => ({ name: m.name, labels: m.labels, reported: true, versions: { ...m.versions }, pins: { ...this.pins.get(m.name) } })),
      managed: this.managed.map((r) => ({ ...r, rollout: summaries.find((s) => s.name === r.name) ?? null })),
      rollouts: summaries,
      refusals: [...this.refusals],
      now: this.now,
      options: this.options,
    };
  }

  /** RolloutController.create, in small. */
  private create(object: unknown): void {
    const { name, spec } = parseRollout(object);
    if (this.rollouts.has(name)) throw new AppError('NK_ROLLOUT_EXISTS', `rollout "${name}" already exists`);
    const pinned = new Set([...this.fleet.machines.keys()].filter((m) => spec.packages.some((p) => {
      const pin = this.pins.get(m)?.[p.package];
      return pin !== undefined && pin !== p.version;
    })));
    const state = newRolloutState({ name, spec, machines: this.fleet.views().filter((m) => !pinned.has(m.name)), controlPlaneVersion: this.controlPlane, now: this.now });
    this.rollouts.set(name, { name, spec, state, created: this.seq++ });
  }

  /** What the rollout planner counts as unavailable in `state` (the property tests' one definition). */
  static unavailable(state: RolloutState, views: ReadonlyMap<string, MachineView>): Set<string> {
    return budgetUnavailable(state, views);
  }

  /** One rollout step (RolloutController.stepOne), or null when `crashed` lost it. Returns the actions. */
  step(name: string, request: OperatorRequest | null, opts: { fail?: () => boolean; crashed?: boolean; check?: StepCheck } = {}): readonly PlanAction[] {
    const r = this.rollouts.get(name)!;
    const views = new Map(this.fleet.views().map((v) => [v.name, v]));
    const others = [...this.rollouts.values()].filter((x) => x.name !== name);
    const out = planStep({
      rollout: r, machines: views,
      budget: { maxUnavailable: this.clusterMax, unavailableNow: [...new Set(others.flatMap((x) => holdsOf(x.state)))], countedNow: others.flatMap((x) => stillUnavailable(failedLeftovers(x.state), views)) },
      controlPlaneVersion: this.controlPlane, now: this.now, events: this.fleet.resultsFor(r.state), request, options: { silenceTimeoutMs: 60_000 },
    });
    if (opts.crashed === true) return [];
    opts.check?.(name, r.state, out.state, out.actions);
    r.state = out.state;
    for (const a of out.actions) if (a.kind === 'install') this.installs.push({ rollout: name, machine: a.machine, package: a.package, version: a.version, at: this.now });
    this.fleet.apply(out.actions, this.now, { durationMs: 10_000, fail: () => opts.fail?.() ?? false });
    return out.actions;
  }

  /** ConvergenceController.apply, in small; `crashAt` stops after that many writes (a restart). */
  applyConvergence(actions: readonly ConvergeAction[], crashAt = Infinity): void {
    let writes = 0;
    const write = () => ++writes > crashAt;
    for (const a of actions) {
      if (a.kind === 'create') {
        if (write()) return;
        this.managed.push({ name: a.name, package: a.package, track: a.track, generation: a.generation, version: a.version, specKey: a.specKey, pausedByUs: false });
        if (write()) return;
        try {
          this.create(a.object);
          this.events.push({ reason: 'RolloutCreated', object: `rollout/${a.name}`, message: a.name });
        } catch (err) {
          this.managed.splice(this.managed.findIndex((r) => r.name === a.name), 1);
          if (!(err instanceof AppError)) throw err;
          const i = this.refusals.findIndex((r) => r.package === a.package && r.track === a.track && r.key === a.refusalKey);
          if (i >= 0) this.refusals.splice(i, 1);
          this.refusals.push({ package: a.package, track: a.track, key: a.refusalKey, code: err.code, message: err.message, at: this.now });
          this.events.push({ reason: 'RolloutRefused', object: 'clusterpackageversion/cluster', message: err.code });
        }
        continue;
      }
      if (write()) return;
      const row = this.managed.find((r) => r.name === a.name)!;
      const i = this.managed.indexOf(row);
      if (a.kind === 'pause') this.managed[i] = { ...row, pausedByUs: true };
      else this.managed[i] = { ...row, pausedByUs: false };
      const request = a.kind === 'supersede' ? a.request : a.kind;
      this.events.push({ reason: a.kind === 'supersede' ? 'RolloutSuperseded' : a.kind === 'pause' ? 'ConvergencePaused' : 'ConvergenceResumed', object: `rollout/${a.name}`, message: request });
      this.step(a.name, request);
    }
  }

  /** One controller tick: convergence first, then every unfinished rollout, then the agents. */
  tick(dt: number, opts: { fail?: () => boolean; crashAt?: number; check?: StepCheck } = {}): ConvergePlan {
    this.now += dt;
    this.fleet.tick(this.now);
    const plan = planConvergence(this.input());
    this.applyConvergence(plan.actions, opts.crashAt);
    for (const r of this.rollouts.values()) {
      if (TERMINAL_PHASES.has(r.state.phase) && this.fleet.resultsFor(r.state).length === 0) continue;
      this.step(r.name, null, { ...(opts.fail === undefined ? {} : { fail: opts.fail }), ...(opts.check === undefined ? {} : { check: opts.check }) });
    }
    return plan;
  }

  live(): SimRollout[] {
    return [...this.rollouts.values()].filter((r) => !TERMINAL_PHASES.has(r.state.phase));
  }
}
