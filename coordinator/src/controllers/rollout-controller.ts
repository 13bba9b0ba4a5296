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
import type { InstallParams, PackageManifest, RollbackParams } from '@nodekeeper/protocol';
import { CommandKind } from '@nodekeeper/protocol';
import type { Hold } from '../budget/budget.ts';
import type { SharedBudget } from '../budget/shared-budget.ts';
import type { Clock } from '../clock.ts';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import { observedVersion } from '../packages/cluster-package-version.ts';
import { installParamsFor, packageManifest } from '../packages/install-params.ts';
import { newRolloutState } from '../rollout/create.ts';
import { failedLeftovers, holdsOf, stillUnavailable } from '../rollout/holds.ts';
import { planStep } from '../rollout/planner.ts';
import { MachineViews } from '../rollout/machine-views.ts';
import { rolloutOverview, type RolloutOverview } from '../rollout/overview.ts';
import { sameJson } from '../rollout/same-state.ts';
import { parseRollout, type RolloutSpec } from '../rollout/spec.ts';
import { planSpecUpdate } from '../rollout/spec-update.ts';
import {
  TERMINAL_PHASES, requestAllowed,
  type InstallResultEvent, type MachineView, type OperatorRequest, type PlanAction, type RolloutState,
} from '../rollout/types.ts';
import type { Store } from '../store/db.ts';
import type { CommandRecord } from '../model/commands.ts';
import type { RolloutRecord } from '../model/records.ts';
import type { RebootDriver, RebootView } from '../reboot/driver.ts';
import type { RebootGateChecker } from '../reboot/gates.ts';

/** Room for the download and unpack on top of the package's own health timeout. */
const INSTALL_ALLOWANCE_MS = 30 * 60_000;

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

const owner = (name: string) => `rollout/${name}`;

/** Why a rollout stops on its own: a canary failed, too many machines failed, a rollback or a reboot failed. */
export const FAILURE_REASONS = ['CanaryFailed', 'FailureThreshold', 'RollbackFailed', 'RebootFailed'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

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

  /** Told each time a rollout stops on failures (for the failures counter of /metrics). */
  private readonly failed: (reason: FailureReason) => void;

  constructor(deps: { store: Store; fleet: FleetView; commands: CommandDispatcher; clock: Clock; log: Logger; budget: SharedBudget; reboots?: RebootDriver; gates?: RebootGateChecker; failed?: (reason: FailureReason) => void }, opts: RolloutControllerOptions) {
    this.failed = deps.failed ?? (() => {});
    this.reboots = deps.reboots ?? null;
    this.gates = deps.gates ?? null;
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
      const events = this.store.commandsByOwner(owner(r.name)).map((c) => toEvent(c)).filter((e) => e !== null);
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
      if (this.budget.partition() !== null) return;
      this.stepOne(name, null);
    });
    this.commands.onFinished((c) => {
      if (c.owner === null || !c.owner.startsWith('rollout/')) return;
      const event = toEvent(c);
      if (event === null) return;
      const name = c.owner.slice('rollout/'.length);
      this.results.set(name, [...(this.results.get(name) ?? []), event]);
      // While rollouts hold (a suspected partition), a result waits for the tick after
      // it: stepping now could start the next machine, a command sent during the hold.
      if (this.budget.partition() !== null) return;
      this.stepOne(name, null);
    });
  }

  /** Validates and creates a rollout (NK_ROLLOUT_INVALID, _EXISTS, _SKEW, _DOWNGRADE, _NO_MACHINES, _UNKNOWN_PACKAGE). */
  create(object: unknown): RolloutRecord {
    const { name, spec } = parseRollout(object);
    if (spec.reboot !== undefined && this.reboots === null) throw new AppError('NK_REBOOT_UNAVAILABLE', `rollout "${name}": this coordinator runs no reboot driver`);
    for (const p of spec.packages) this.installParams(p.package, p.version); // every target must be installable
    // A machine that pins a rollout's package to another version is left out: the pin is
    // the operator's word for that machine, and a rollout does not overrule it.
    const pinned = new Set(this.fleet.list().filter((m) => spec.packages.some((p) => {
      const pin = m.packageOverrides?.[p.package];
      return pin !== undefined && pin.version !== p.version;
    })).map((m) => m.name));
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
    const views = this.viewsByName();
    const busy = !TERMINAL_PHASES.has(r.state.phase)
      ? `it is ${r.state.phase}; abort it first (nkctl rollout abort ${name})`
      : r.holds.length > 0
        ? `machines are still in flight (${r.holds.slice(0, 5).join(', ')}); wait for them to finish`
        : stillUnavailable(r.leftovers, views).length > 0
          ? `machines it failed still count against the availability budget until healthy (${stillUnavailable(r.leftovers, views).slice(0, 5).join(', ')})`
          : null;
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
      // would act on a picture we cannot see. Operator requests still apply.
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

  private stepOne(name: string, request: OperatorRequest | null): void {
    const r = this.load(name);
    const machines = this.viewsByName();
    const events = this.results.get(name) ?? [];
    const plan = planStep({
      rollout: r,
      machines,
      budget: this.budget.for(owner(name), machines.size),
      controlPlaneVersion: this.cpVersion,
      now: this.clock(),
      events,
      request,
      ...(r.spec.reboot !== undefined && this.gates !== null && !TERMINAL_PHASES.has(r.state.phase)
        ? { gates: this.gates.gatesFor(name, r.spec.reboot, r.state.candidates, this.clock()) }
        : {}),
    });
    if (plan.actions.length === 0 && sameJson(plan.state, r.state)) {
      this.results.delete(name);
      return; // nothing changed: no write (a quiet rollout costs no fsync per tick)
    }
    const toSend: string[] = [];
    const toReboot: string[] = [];
    this.store.transaction(() => {
      this.store.saveRolloutState(name, plan.state);
      for (const a of plan.actions) {
        if (a.kind === 'reboot') {
          toReboot.push(this.recordReboot(r, a.machine, a.commandId));
          continue;
        }
        const id = this.recordAction(name, a);
        if (id !== null) toSend.push(id);
      }
    });
    this.remember({ ...r, state: plan.state });
    this.results.delete(name);
    for (const id of toSend) this.commands.sendById(id);
    for (const id of toReboot) this.reboots?.run(id);
    if (TERMINAL_PHASES.has(plan.state.phase) && !TERMINAL_PHASES.has(r.state.phase)) this.cancelUnsent(name, plan.state.reason);
    if (plan.state.phase !== r.state.phase) {
      this.log.info({ rollout: name, from: r.state.phase, to: plan.state.phase, reason: plan.state.reason }, 'rollout phase changed');
    }
  }

  /**
   * A rollout that stopped (aborted, failed) sends nothing more: its installs not sent yet
   * (held behind a drain, or waiting for their agent to connect) are cancelled, and each
   * machine is told as Skipped (the result comes back through onFinished).
   */
  private cancelUnsent(name: string, why: string): void {
    this.gates?.forget(name);
    // Reboots not sent yet stop (drain stopped, Node uncordoned); sent ones are seen through.
    for (const rb of this.reboots?.byOwner(owner(name)) ?? []) this.reboots?.cancel(rb.id, `the rollout stopped (${why})`);
    for (const c of this.store.commandsByOwner(owner(name))) {
      if (c.kind !== CommandKind.install || c.sentAt !== null) continue;
      const message = `the install was never sent; the rollout stopped (${why}) first`;
      const activeVersion = observedVersion(this.fleet.get(c.machine), String(c.params['package']))?.raw ?? null;
      if (this.commands.cancelUnsent(c.id, { code: 'NK_ROLLOUT_STOPPED', message }, { outcome: 'cancelled', activeVersion, message })) {
        this.log.info({ rollout: name, machine: c.machine, command: c.id }, 'unsent install cancelled');
      }
    }
  }

  /** Records the reboot of one machine of a reboot rollout (in the caller's transaction); returns its id. */
  private recordReboot(r: Rollout, machine: string, id: string): string {
    const reboot = r.spec.reboot;
    if (this.reboots === null || reboot === undefined) throw new AppError('NK_REBOOT_UNAVAILABLE', `rollout "${r.name}": no reboot driver`);
    this.reboots.record({ id, machine, owner: owner(r.name), reason: `reboot rollout ${r.name}`, drain: reboot.drain, timeoutMs: reboot.timeoutSeconds * 1000 });
    return id;
  }

  /** Records what an action needs; returns the id of a command to send, if any. */
  private recordAction(name: string, a: PlanAction): string | null {
    switch (a.kind) {
      case 'install': {
        const params = this.installParams(a.package, a.version);
        this.commands.record({ id: a.commandId, machine: a.machine, kind: CommandKind.install, params: { ...params }, owner: owner(name), timeoutMs: params.manifest.healthTimeoutMs + INSTALL_ALLOWANCE_MS });
        return a.commandId;
      }
      case 'rollback': {
        const manifest = this.manifest(a.package);
        const params: RollbackParams = { package: a.package, manifest, expectedVersion: a.version };
        this.commands.record({ id: a.commandId, machine: a.machine, kind: CommandKind.rollback, params: { ...params }, owner: owner(name), timeoutMs: manifest.healthTimeoutMs * 2 + 60_000 });
        return a.commandId;
      }
      case 'event':
        this.store.recordEvent({ object: a.object, type: a.type, reason: a.reason, message: a.message });
        return null;
      case 'setPhase':
        // The planner emits the transition's event itself. A failure is counted here: the
        // phase it leads to (RollingBack) can pass between two scrapes.
        if ((FAILURE_REASONS as readonly string[]).includes(a.reason)) this.failed(a.reason as FailureReason);
        return null;
      case 'reboot':
        return null; // recorded by recordReboot
      case 'setMachinePhase':
        this.store.recordEvent({ object: `machine/${a.machine}`, type: a.phase === 'Failed' ? 'Warning' : 'Normal', reason: a.reason, message: `rollout ${name}: ${a.phase}: ${a.message}` });
        return null;
    }
  }

  private manifest(pkg: string): PackageManifest {
    return packageManifest(this.store, pkg, 'NK_ROLLOUT_UNKNOWN_PACKAGE');
  }

  private installParams(pkg: string, version: string): InstallParams {
    return installParamsFor(this.store, this.fleetUrl(), pkg, version, 'NK_ROLLOUT_UNKNOWN_PACKAGE');
  }

  private fleetUrl: () => string = () => '';

  /** The URL agents download pushed artifacts from (set once the server listens). */
  setArtifactBaseUrl(url: () => string): void {
    this.fleetUrl = url;
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

/** A finished reboot as the planner's input event (its id is the machine's step command id). */
function rebootEvent(r: RebootView): InstallResultEvent | null {
  const o = r.state.outcome;
  if (r.state.step !== 'Done' || o === null) return null;
  return {
    kind: 'installResult',
    machine: r.machine,
    commandId: r.id,
    outcome: o.ok ? 'installed' : o.reason === 'Cancelled' ? 'cancelled' : 'failed',
    activeVersion: null,
    ...(o.failedStep === undefined ? {} : { failedStep: o.failedStep }),
    message: o.message,
    reason: o.reason,
  };
}

/** A finished command as the planner's input event, or null when it is not an install or rollback. */
function toEvent(c: CommandRecord): InstallResultEvent | null {
  if (c.kind !== CommandKind.install && c.kind !== CommandKind.rollback) return null;
  if (c.state === 'Pending' || c.state === 'Sent' || c.state === 'Running') return null;
  const r = c.result as { outcome?: InstallResultEvent['outcome']; activeVersion?: string | null; failedStep?: string; message?: string } | null;
  const outcome: InstallResultEvent['outcome'] = c.state === 'TimedOut' ? 'timed-out' : r?.outcome ?? (c.state === 'Succeeded' ? 'installed' : 'failed');
  return {
    kind: 'installResult',
    machine: c.machine,
    commandId: c.id,
    outcome,
    activeVersion: r?.activeVersion ?? null,
    ...(r?.failedStep === undefined ? {} : { failedStep: r.failedStep }),
    message: c.error?.message ?? r?.message ?? c.message,
  };
}

