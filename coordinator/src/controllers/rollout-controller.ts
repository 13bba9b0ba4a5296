/**
 * Applies the rollout planner (coordinator/src/rollout, pure) to the world: builds its
 * input from the fleet view, the store and command results, persists the next state and
 * records the commands it asks for in ONE transaction, then sends them. It holds no
 * state a restart would lose: results are read back from the commands table, operator
 * requests are applied at once, and the persisted rollout state is the truth.
 *
 * It is also the only writer of rollouts (the API creates them and passes requests
 * through here), so it keeps what it last read or wrote of each one in memory instead of
 * parsing megabytes of state JSON on every tick: the store is read once, at start, and
 * written after every change; the copy is updated only once that write committed.
 */
import { AppError, type Logger } from '@nodekeeper/common';
import type { Hold } from '../budget/budget.ts';
import type { SharedBudget } from '../budget/shared-budget.ts';
import type { Clock } from '../clock.ts';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import { newRolloutState, pinnedElsewhere } from '../rollout/create.ts';
import { deleteRefusal, failedLeftovers, holdsOf, stillUnavailable } from '../rollout/holds.ts';
import { planStep } from '../rollout/planner.ts';
import { MachineViews } from '../rollout/machine-views.ts';
import { rolloutOverview, type RolloutOverview } from '../rollout/overview.ts';
import { sameJson } from '../rollout/same-state.ts';
import { parseRollout, type RolloutSpec } from '../rollout/spec.ts';
import { planSpecUpdate } from '../rollout/spec-update.ts';
import {
  TERMINAL_PHASES, requestAllowed,
  type InstallResultEvent, type MachineView, type OperatorRequest, type RolloutState,
} from '../rollout/types.ts';
import type { Store } from '../store/db.ts';
import type { NewEvent } from '../store/events.ts';
import type { RolloutRecord } from '../model/records.ts';
import type { RebootDriver } from '../reboot/driver.ts';
import type { RebootGateChecker } from '../reboot/gates.ts';
import { FAILURE_REASONS, RolloutActions, type FailureReason } from './rollout-actions.ts';
import { commandEvent, rebootEvent, rolloutOwner as owner } from './rollout-results.ts';

export { FAILURE_REASONS, type FailureReason };

export interface RolloutControllerOptions {
  readonly controlPlaneVersion: string | null;
}

/** A stored rollout as this controller last read or wrote it. */
interface Rollout {
  readonly name: string;
  readonly spec: RolloutSpec;
  readonly state: RolloutState;
  readonly createdAt: number;
  /** The machines it holds (rollout/holds.ts), derived once per state. */
  readonly holds: readonly string[];
  /** Machines it failed and released on finishing: budget while not healthy again (holds.ts). */
  readonly leftovers: readonly string[];
}

export class RolloutController {
  private readonly store: Store;
  private readonly fleet: FleetView;
  private readonly commands: CommandDispatcher;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** The availability budget shared with the other rollouts and the remediation (invariant 1). */
  private readonly budget: SharedBudget;
  /** From the flag, then from the member cluster's API once it answers. */
  private cpVersion: string | null;
  /** Finished commands not yet fed to their rollout's planner (rebuilt from the store on start). */
  private readonly results = new Map<string, InstallResultEvent[]>();
  /** Every stored rollout, in the store's order (created, then name). */
  private rollouts = new Map<string, Rollout>();
  private readonly views = new MachineViews();
  /** The views of the last refresh (the budget's failed-not-yet-restored check reads them); null before the first. */
  private lastViews: ReadonlyMap<string, MachineView> | null = null;

  /** Runs the reboots of reboot rollouts (null: reboot rollouts are refused). */
  private readonly reboots: RebootDriver | null;
  private readonly gates: RebootGateChecker | null;

  /** Records what plans ask (commands, reboots, events) and cancels what a stopped rollout did not send. */
  private readonly actions: RolloutActions;

  constructor(deps: { store: Store; fleet: FleetView; commands: CommandDispatcher; clock: Clock; log: Logger; budget: SharedBudget; reboots?: RebootDriver; gates?: RebootGateChecker; failed?: (reason: FailureReason) => void }, opts: RolloutControllerOptions) {
    this.reboots = deps.reboots ?? null;
    this.gates = deps.gates ?? null;
    this.actions = new RolloutActions({ store: deps.store, fleet: deps.fleet, commands: deps.commands, log: deps.log, reboots: this.reboots, gates: this.gates, failed: deps.failed ?? (() => {}) });
    this.cpVersion = opts.controlPlaneVersion;
    this.store = deps.store;
    this.fleet = deps.fleet;
    this.commands = deps.commands;
    this.clock = deps.clock;
    this.log = deps.log;
    this.budget = deps.budget;
    // Each rollout is a user of the budget: what it holds, and what it failed and released.
    this.budget.addUser(() => this.budgetHolds());
    // Recovery: results that arrived while we were down (or before the state was saved)
    // are still in the commands table. The planner ignores duplicates and stale ones.
    for (const r of this.store.listRollouts()) {
      this.remember({ name: r.name, spec: r.spec as RolloutSpec, state: r.state as RolloutState, createdAt: r.createdAt });
      const events = this.store.commandsByOwner(owner(r.name)).map((c) => commandEvent(c)).filter((e) => e !== null);
      // A reboot that finished while we were down (or before the state was saved) is in the reboots table.
      if (this.reboots !== null) for (const rb of this.reboots.byOwner(owner(r.name))) {
        const e = rebootEvent(rb);
        if (e !== null) events.push(e);
      }
      if (events.length > 0) this.results.set(r.name, events);
    }
    this.reboots?.onFinished((rb) => {
      if (!rb.owner.startsWith('rollout/')) return;
      const event = rebootEvent(rb);
      if (event === null) return;
      const name = rb.owner.slice('rollout/'.length);
      if (!this.rollouts.has(name)) return;
      this.results.set(name, [...(this.results.get(name) ?? []), event]);
      this.stepOne(name, null);
    });
    this.commands.onFinished((c) => {
      if (c.owner === null || !c.owner.startsWith('rollout/')) return;
      const event = commandEvent(c);
      if (event === null) return;
      const name = c.owner.slice('rollout/'.length);
      this.results.set(name, [...(this.results.get(name) ?? []), event]);
      this.stepOne(name, null);
    });
  }

  /** Validates and creates a rollout (NK_ROLLOUT_INVALID, _EXISTS, _SKEW, _DOWNGRADE, _NO_MACHINES, _UNKNOWN_PACKAGE). */
  /**
   * Creates a rollout and takes its first step. `events` (the caller's own, e.g. the
   * converger's RolloutCreated) are stored with the rollout's Created event, before that
   * step may send a command: a kill -9 once an agent holds an install cannot lose them.
   */
  create(object: unknown, events: readonly NewEvent[] = []): RolloutRecord {
    const { name, spec } = parseRollout(object);
    if (spec.reboot !== undefined && this.reboots === null) throw new AppError('NK_REBOOT_UNAVAILABLE', `rollout "${name}": this coordinator runs no reboot driver`);
    for (const p of spec.packages) this.actions.installParams(p.package, p.version); // every target must be installable
    const pinned = pinnedElsewhere(spec, this.fleet.list());
    // --only-required: the machines whose agent says a reboot is required, now.
    const eligible = this.machineViews().filter((m) => !pinned.has(m.name) && (spec.reboot?.onlyRequired !== true || m.rebootRequired === true));
    if (spec.reboot?.onlyRequired === true && eligible.length === 0) {
      throw new AppError('NK_ROLLOUT_NO_MACHINES', `rollout "${name}": no selected machine reports that a reboot is required (--only-required); see "nkctl get machines -o wide"`, { context: { rollout: name } });
    }
    const state = newRolloutState({ name, spec, machines: eligible, controlPlaneVersion: this.cpVersion, now: this.clock() });
    const record = this.store.createRollout({ name, spec, state });
    this.remember({ name, spec, state, createdAt: record.createdAt });
    if (pinned.size > 0) {
      this.store.recordEvent({ object: owner(name), type: 'Normal', reason: 'PinnedMachinesLeftOut', message: `left out because they pin another version: ${[...pinned].sort().join(', ')}` });
    }
    const what = spec.reboot !== undefined ? 'reboot' : spec.packages.map((p) => `${p.package}=${p.version}`).join(', ');
    this.store.recordEvent({ object: owner(name), type: 'Normal', reason: 'Created', message: `${what} on ${state.candidates.length} machine(s)` });
    for (const e of events) this.store.recordEvent(e);
    this.log.info({ rollout: name, machines: state.candidates.length }, 'rollout created');
    // spec.paused: held from the start, before any machine is touched.
    this.stepOne(name, spec.paused === true ? 'pause' : null);
    return this.store.getRollout(name) ?? record;
  }

  /**
   * Replaces the mutable part of a rollout's spec (apply; rollout/spec-update.ts):
   * NK_ROLLOUT_NOT_FOUND, NK_ROLLOUT_FIELD_IMMUTABLE. The same spec again writes nothing
   * and records no event. A change of spec.paused pauses or resumes as the requests do.
   */
  applySpec(name: string, spec: RolloutSpec): { record: RolloutRecord; changed: boolean } {
    const r = this.load(name);
    const plan = planSpecUpdate(name, r, spec);
    if (plan.kind === 'unchanged') return { record: this.store.getRollout(name)!, changed: false };
    this.store.transaction(() => {
      const updated = this.store.updateRolloutSpec(name, plan.spec);
      if (plan.state !== r.state) this.store.saveRolloutState(name, plan.state);
      this.store.recordEvent({ object: owner(name), type: 'Normal', reason: 'Applied', message: `spec applied (generation ${updated.meta?.generation ?? '?'})` });
    });
    this.remember({ ...r, spec: plan.spec, state: plan.state });
    if (plan.request !== null && requestAllowed(r.state.phase, plan.request)) this.request(name, plan.request);
    else this.stepOne(name, null);
    return { record: this.store.getRollout(name)!, changed: true };
  }

  /**
   * Deletes a finished rollout (NK_ROLLOUT_NOT_FOUND; NK_ROLLOUT_NOT_FINISHED while it
   * runs, holds a machine, or machines it failed still count against the budget).
   * Its commands stay as history; a Deleted event is recorded.
   */
  delete(name: string): void {
    const r = this.load(name);
    const busy = deleteRefusal(r, this.viewsByName());
    if (busy !== null) throw new AppError('NK_ROLLOUT_NOT_FINISHED', `cannot delete rollout "${name}": ${busy}`, { context: { rollout: name, phase: r.state.phase } });
    this.store.transaction(() => {
      this.store.deleteRollout(name);
      this.store.recordEvent({ object: owner(name), type: 'Normal', reason: 'Deleted', message: `rollout deleted (it was ${r.state.phase})` });
    });
    this.rollouts.delete(name);
    this.results.delete(name);
    this.gates?.forget(name);
    this.log.info({ rollout: name }, 'rollout deleted');
  }

  /** Whether any rollout that is not finished installs `version` of `pkg` (artifact delete). */
  runningWith(pkg: string, version: string): string | null {
    for (const r of this.rollouts.values()) {
      if (TERMINAL_PHASES.has(r.state.phase) && r.holds.length === 0) continue;
      if (r.spec.packages.some((p) => p.package === pkg && p.version === version)) return r.name;
    }
    return null;
  }

  /** An operator's pause, resume, abort or rollback (NK_ROLLOUT_NOT_FOUND, NK_ROLLOUT_BAD_TRANSITION). */
  request(name: string, request: OperatorRequest): RolloutRecord {
    const r = this.load(name);
    if (!requestAllowed(r.state.phase, request)) {
      throw new AppError('NK_ROLLOUT_BAD_TRANSITION', `cannot ${request} rollout "${name}" in phase ${r.state.phase}${r.state.continueWith ? `; try: ${r.state.continueWith}` : ''}`);
    }
    this.store.recordEvent({ object: owner(name), type: 'Normal', reason: `Requested${request[0]!.toUpperCase()}${request.slice(1)}`, message: `operator asked to ${request}` });
    if (request === 'resume' && r.spec.paused === true) {
      // As `kubectl rollout resume` does: the spec stops saying paused, or it would lie.
      const { paused: _paused, ...spec } = r.spec;
      this.store.updateRolloutSpec(name, spec);
      this.remember({ ...r, spec });
    }
    this.stepOne(name, request);
    return this.store.getRollout(name)!;
  }

  /** The partition reason last recorded as a hold (rollouts make no progress on their own then). */
  private held_: string | null = null;

  controlPlaneVersion(): string | null {
    return this.cpVersion;
  }

  setControlPlaneVersion(version: string): void {
    if (version === this.cpVersion) return;
    this.log.info({ from: this.cpVersion, to: version }, 'control plane version');
    this.cpVersion = version;
  }

  /** Every rollout at a glance, in creation order (for convergence/; one per stored state). */
  overview(): RolloutOverview[] {
    return [...this.rollouts.values()].map((r) => {
      const o = this.overviews.get(r.state) ?? rolloutOverview(r.name, r.spec, r.state);
      this.overviews.set(r.state, o);
      return o;
    });
  }

  private readonly overviews = new WeakMap<RolloutState, RolloutOverview>();

  /** Every rollout's phase (for the host's Cluster status). */
  phases(): string[] {
    return [...this.rollouts.values()].map((r) => r.state.phase);
  }

  /** Every rollout's name, phase, reason and machine counts (for /metrics). */
  summaries(): Array<{ name: string; phase: string; reason: string; since: number; counters: RolloutState['counters'] }> {
    return [...this.rollouts.values()].map((r) => ({ name: r.name, phase: r.state.phase, reason: r.state.reason, since: r.state.since, counters: r.state.counters }));
  }

  /** Plans every rollout that is not finished; call on a timer and after fleet changes. */
  tick(): void {
    const hold = this.budget.partition();
    if (hold !== null) {
      // Many agents silent at once is not a node fault: starting or judging machines now
      // would act on a picture we cannot see. Operator requests still change the phase
      // (planStep: a resume or rollback acts when the hold ends).
      if (this.held_ !== hold.reason) {
        this.store.recordEvent({ object: 'rollouts/cluster', type: 'Warning', reason: hold.reason, message: `rollouts hold: ${hold.message}` });
        this.held_ = hold.reason; // only once recorded: a failed write is retried next tick
        this.log.warn({ reason: hold.reason }, 'rollouts held');
      }
      return;
    }
    if (this.held_ !== null) {
      this.store.recordEvent({ object: 'rollouts/cluster', type: 'Normal', reason: 'HoldReleased', message: `rollouts continue (${this.held_} is over)` });
      this.held_ = null;
    }
    for (const r of [...this.rollouts.values()]) {
      // A finished rollout steps only on a result, or when a machine it holds was deleted
      // (its commands went with it, so no result will ever release the machine).
      if (TERMINAL_PHASES.has(r.state.phase) && !this.results.has(r.name) && r.holds.every((m) => this.fleet.get(m) !== undefined)) continue;
      try {
        this.stepOne(r.name, null);
      } catch (err) {
        // One broken rollout (say, its artifact was removed) must not stop the others.
        this.log.error({ err, rollout: r.name }, 'rollout step failed; will retry');
      }
    }
  }

  /** Rollouts that hold `machine` now (rollout/holds.ts: in flight; failed and switched while the rollout runs). */
  holders(machine: string): string[] {
    return [...this.rollouts.values()].filter((r) => r.holds.includes(machine)).map((r) => r.name);
  }

  /** Machines rollouts make unavailable now (all of them, or all but one rollout). */
  held(except: string | null = null): string[] {
    const out: string[] = [];
    for (const r of this.rollouts.values()) {
      if (r.name === except) continue;
      for (const m of r.holds) out.push(m);
    }
    return out;
  }

  /**
   * What every rollout has out, for the shared budget: its holds, and the machines it
   * failed and released that are not healthy again (budget, not holds: holds.ts), judged
   * on the views of the last refresh (the step that reads them has just refreshed them).
   */
  private budgetHolds(): Hold[] {
    const views = this.lastViews ?? this.viewsByName();
    return [...this.rollouts.values()].map((r) => ({ user: owner(r.name), machines: r.holds, counted: r.leftovers.length === 0 ? [] : stillUnavailable(r.leftovers, views) }));
  }

  private load(name: string): Rollout {
    const r = this.rollouts.get(name);
    if (r === undefined) throw new AppError('NK_ROLLOUT_NOT_FOUND', `rollout "${name}" not found`);
    return r;
  }

  /** Keeps a rollout's stored (or just committed) state, in the store's order. */
  private remember(r: Omit<Rollout, 'holds' | 'leftovers'>): void {
    const known = this.rollouts.has(r.name);
    this.rollouts.set(r.name, { ...r, holds: holdsOf(r.state), leftovers: failedLeftovers(r.state) });
    if (known) return;
    const order = [...this.rollouts.values()].sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.rollouts = new Map(order.map((x) => [x.name, x]));
  }

  /**
   * Plans one step of a rollout and carries it out. With no operator request, nothing is
   * stepped while rollouts hold (a suspected partition, invariant 5): a result, a new or
   * re-applied rollout waits for the first tick after the hold, for stepping now could
   * start a machine. An operator's request is applied at once.
   */
  private stepOne(name: string, request: OperatorRequest | null): void {
    if (request === null && this.budget.partition() !== null) return;
    const r = this.load(name);
    const machines = this.viewsByName();
    const budget = this.budget.for(owner(name), machines.size);
    // During a suspected partition the planner applies the request alone: results wait.
    const held = budget.partition !== null;
    const events = held ? [] : this.results.get(name) ?? [];
    const plan = planStep({
      rollout: r,
      machines,
      budget,
      controlPlaneVersion: this.cpVersion,
      now: this.clock(),
      events,
      request,
      ...(r.spec.reboot !== undefined && this.gates !== null && !TERMINAL_PHASES.has(r.state.phase)
        ? { gates: this.gates.gatesFor(name, r.spec.reboot, r.state.candidates, this.clock()) }
        : {}),
    });
    if (plan.actions.length === 0 && sameJson(plan.state, r.state)) {
      if (!held) this.results.delete(name);
      return; // nothing changed: no write (a quiet rollout costs no fsync per tick)
    }
    const { toSend, toReboot } = this.store.transaction(() => {
      this.store.saveRolloutState(name, plan.state);
      return this.actions.record(r, plan.actions);
    });
    this.remember({ ...r, state: plan.state });
    if (!held) this.results.delete(name);
    for (const id of toSend) this.commands.sendById(id);
    for (const id of toReboot) this.reboots?.run(id);
    if (TERMINAL_PHASES.has(plan.state.phase) && !TERMINAL_PHASES.has(r.state.phase)) this.actions.cancelUnsent(name, plan.state.reason);
    if (plan.state.phase !== r.state.phase) {
      this.log.info({ rollout: name, from: r.state.phase, to: plan.state.phase, reason: plan.state.reason }, 'rollout phase changed');
    }
  }

  /** The URL agents download pushed artifacts from (set once the server listens). */
  setArtifactBaseUrl(url: () => string): void {
    this.actions.setArtifactBaseUrl(url);
  }

  /** Every machine as the planner sees it, by name (valid until the next call). */
  private viewsByName(): ReadonlyMap<string, MachineView> {
    // values(), not list(): the planner looks machines up by name, so no sorted copy.
    const views = this.views.refresh(this.fleet.values(), (name) => this.fleet.isConnected(name));
    this.lastViews = views;
    return views;
  }

  /** Every machine as the planner sees it, in name order. */
  machineViews(): MachineView[] {
    const list = this.fleet.list();
    const views = this.views.refresh(list, (name) => this.fleet.isConnected(name));
    this.lastViews = views;
    return list.filter((m) => m.revokedAt === null).map((m) => views.get(m.name)!);
  }
}
