/**
 * Applies the remediation policy (coordinator/src/remediation, pure) to the world:
 * derives each machine's faults from its reports on the coordinator's clock, plans, then
 * persists the state and records the commands it asks for in ONE transaction, and sends
 * them. Machines a rollout holds are never touched, and rollouts see the machines this
 * holds, through the shared budget (budget/, architecture invariant 1).
 */
import { AppError, type Logger } from '@nodekeeper/common';
import { CommandKind } from '@nodekeeper/protocol';
import type { SharedBudget } from '../budget/shared-budget.ts';
import type { Clock } from '../clock.ts';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import type { DrainSpec } from '../member/drain-rules.ts';
import { REMEDIATION_DRAIN_MARK } from '../member/node-drainer.ts';
import { observedVersion } from '../packages/cluster-package-version.ts';
import { installParamsFor } from '../packages/install-params.ts';
import { DEFAULT_FAULT_SETTINGS, type Fault, type FaultSettings, type FaultState } from '../remediation/faults.ts';
import { changedRecords } from '../remediation/draft.ts';
import { MachineViews } from '../remediation/machine-views.ts';
import { planRemediation } from '../remediation/policy.ts';
import { checkRuleSet, defaultRules, parseRule, type RemediationRule } from '../remediation/rules.ts';
import {
  COMMAND_ALLOWANCE_MS, DEFAULT_REMEDIATION_SETTINGS,
  type CommandResult, type MachineRemediation, type RemediationAction, type RemediationSettings, type RemediationState, type StormState,
} from '../remediation/types.ts';
import { reinstallSkewProblem } from '../rollout/skew.ts';
import type { Store } from '../store/db.ts';
import type { RemediationChanges, RemediationRecord } from '../store/remediation.ts';
import type { RebootDriver } from '../reboot/driver.ts';
import { commandResult, rebootResult } from './remediation-results.ts';

export const REMEDIATION_OWNER = 'remediation';

export interface RemediationOptions {
  readonly settings?: RemediationSettings;
  readonly faults?: FaultSettings;
}

interface Deps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly commands: CommandDispatcher;
  readonly clock: Clock;
  readonly log: Logger;
  /** The availability budget shared with the rollouts (invariant 1). */
  readonly budget: SharedBudget;
  /** Where agents download pushed artifacts (for reinstalls). */
  readonly artifactBaseUrl: () => string;
  /** kube-apiserver's version when known (the skew guard on reinstalls). */
  readonly controlPlaneVersion?: () => string | null;
  /** Cordons the machine's Node in the member cluster, when its API is configured. */
  readonly cordon?: (machine: string, by: string) => Promise<string>;
  /**
   * The one reboot path (reboot/driver.ts): the Reboot rung cordons, drains, reboots,
   * waits for a new boot, uncordons, as a reboot rollout does. Without it the rung sends
   * node.reboot bare (tests of the policy alone).
   */
  readonly reboots?: RebootDriver;
}

/** The record as committed: the switches and the policy's state; fault states are kept by MachineViews. */
interface Committed {
  readonly state: RemediationState | null;
  readonly faults: ReadonlyMap<string, FaultState>;
  readonly paused: boolean;
  readonly dryRun: boolean;
  readonly pausedMachines: readonly string[];
}

export class RemediationController {
  private readonly deps: Deps;
  private readonly settings: RemediationSettings;
  private readonly faultSettings: FaultSettings;
  private results: CommandResult[] = [];
  /** Read from the store once; then this controller, its only writer, keeps it. */
  private cached: Committed;
  /** The machines as the policy sees them, and their stored fault states (the record's `faults`). */
  private readonly views: MachineViews;
  /** Told which machines' Remediation objects may have moved (null: all of them). */
  private readonly changeListeners: Array<(machine: string | null) => void> = [];
  /** The rules as of the last tick, to tell when an applied or deleted rule moved them. */
  private rulesKey: string | null = null;
  /** held() of the last state it was asked of (states are immutable). */
  private heldOf: { machines: RemediationState['machines']; names: readonly string[] } | null = null;

  constructor(deps: Deps, opts: RemediationOptions) {
    this.deps = deps;
    this.settings = opts.settings ?? DEFAULT_REMEDIATION_SETTINGS;
    this.faultSettings = opts.faults ?? DEFAULT_FAULT_SETTINGS;
    // A user of the budget (its ladders and cordons), and the partition detector that holds
    // every start, the rollouts' included, while the storm guard suspects one.
    deps.budget.addUser(() => [{ user: REMEDIATION_OWNER, machines: this.held(), counted: [] }]);
    deps.budget.setPartitionSource(() => this.partitionSuspected());
    // Recovery: the record as stored (ladders, fault states, switches)...
    const rec = deps.store.getRemediation();
    this.views = new MachineViews(this.faultSettings, (rec?.faults ?? new Map()) as ReadonlyMap<string, FaultState>);
    // What the views look at again (machine-views.ts): the machines the fleet says moved.
    deps.fleet.onChanged((name) => this.views.touched(name));
    deps.fleet.onContactChanged((name) => this.views.touched(name));
    this.cached = {
      state: (rec?.state ?? null) as RemediationState | null,
      faults: this.views.saved,
      paused: rec?.paused ?? false,
      dryRun: rec?.dryRun ?? false,
      pausedMachines: rec?.pausedMachines ?? [],
    };
    // ...and results of commands that finished while we were down are still stored.
    for (const c of deps.store.commandsByOwner(REMEDIATION_OWNER)) {
      const r = commandResult(c);
      if (r !== null) this.results.push(r);
    }
    deps.commands.onFinished((c) => {
      if (c.owner !== REMEDIATION_OWNER) return;
      const r = commandResult(c);
      if (r !== null) this.results.push(r);
    });
    for (const rb of deps.reboots?.byOwner(REMEDIATION_OWNER) ?? []) {
      const r = rebootResult(rb);
      if (r !== null) this.results.push(r);
    }
    deps.reboots?.onFinished((rb) => {
      if (rb.owner !== REMEDIATION_OWNER) return;
      const r = rebootResult(rb);
      if (r !== null) this.results.push(r);
    });
  }

  /**
   * Calls `listener` with a machine whose Remediation object (its ladder state, its
   * faults, its pause; remediation-routes.ts) may have changed, or with null when all
   * may have (the rules moved). Every change of what remediationObject() is built from
   * is told, once it is visible: the watch hub rebuilds only those, never the fleet.
   */
  onChanged(listener: (machine: string | null) => void): void {
    this.changeListeners.push(listener);
  }

  private changed(machine: string | null): void {
    for (const l of this.changeListeners) l(machine);
  }

  /** The rules in force: applied ones, and the built-in default for every other fault. */
  rules(): Array<{ rule: RemediationRule; source: 'default' | 'applied'; object: unknown }> {
    const applied = this.deps.store.listRemediationRules().map((r) => ({ rule: parseRule(r.object), source: 'applied' as const, object: r.object }));
    const covered = new Set(applied.map((a) => a.rule.fault));
    const defaults = defaultRules().filter((r) => !covered.has(r.fault)).map((rule) => ({ rule, source: 'default' as const, object: null }));
    return [...applied, ...defaults];
  }

  /** Validates and stores a rule (NK_REMEDIATION_RULE_INVALID); it replaces any other rule for its fault. */
  applyRule(object: unknown): RemediationRule {
    const rule = parseRule(object);
    const others = this.deps.store.listRemediationRules().filter((r) => r.name !== rule.name).map((r) => parseRule(r.object));
    const clash = others.find((o) => o.fault === rule.fault);
    if (clash !== undefined) {
      throw new AppError('NK_REMEDIATION_RULE_INVALID', `rule "${clash.name}" already handles ${rule.fault}; delete it first (nkctl delete remediationrule ${clash.name})`);
    }
    checkRuleSet([...others, rule]);
    // The same rule again is no write and no event (apply is idempotent).
    if (this.deps.store.putRemediationRule(rule.name, object)) {
      this.deps.store.recordEvent({ object: `remediationrule/${rule.name}`, type: 'Normal', reason: 'Applied', message: `${rule.fault}: ${rule.ladder.map((s) => s.action).join(' -> ')}` });
      this.changed(null);
    }
    return rule;
  }

  settingsInForce(): RemediationSettings {
    return this.settings;
  }

  /**
   * The persisted record, read once and kept: this controller is its only writer, and
   * the API asks for it once per machine when listing machines.
   */
  record(): RemediationRecord {
    return this.cached;
  }

  /** Cluster-wide or per-machine pause/resume, and dry run; recorded as events. */
  setSwitch(change: { paused?: boolean; dryRun?: boolean; machine?: { name: string; paused: boolean } }): RemediationRecord {
    const rec = this.cached;
    let next = { ...rec };
    if (change.paused !== undefined) next = { ...next, paused: change.paused };
    if (change.dryRun !== undefined) next = { ...next, dryRun: change.dryRun };
    if (change.machine !== undefined) {
      const set = new Set(rec.pausedMachines);
      if (change.machine.paused) set.add(change.machine.name);
      else set.delete(change.machine.name);
      next = { ...next, pausedMachines: [...set].sort() };
    }
    this.deps.store.transaction(() => {
      this.deps.store.saveRemediation({ cluster: { storm: next.state?.storm ?? null, paused: next.paused, dryRun: next.dryRun, pausedMachines: next.pausedMachines } });
      const what = change.machine !== undefined
        ? `remediation ${change.machine.paused ? 'paused' : 'resumed'} on ${change.machine.name}`
        : change.dryRun !== undefined ? `dry run ${change.dryRun ? 'on: decisions are recorded, nothing is done' : 'off'}` : `remediation ${change.paused ? 'paused' : 'resumed'} cluster-wide`;
      this.deps.store.recordEvent({ object: change.machine !== undefined ? `machine/${change.machine.name}` : 'remediation/cluster', type: 'Normal', reason: 'OperatorRequest', message: what });
    });
    this.cached = next; // only once committed
    if (change.machine !== undefined) this.changed(change.machine.name);
    return next;
  }

  /** The storm guard's reason when it suspects a partition (rollouts hold then too), else null. */
  partitionSuspected(): { reason: string; message: string } | null {
    const storm = (this.record().state as RemediationState | null)?.storm;
    return storm?.active === true && storm.reason === 'PartitionSuspected' ? { reason: storm.reason, message: storm.message } : null;
  }

  /** Counts for the host's Cluster status: ladders running, machines waiting for a human, the guard in force. */
  summary(): { active: number; needsHuman: number; guard: string } {
    const rec = this.record();
    const state = rec.state as RemediationState | null;
    const machines = Object.values(state?.machines ?? {});
    const guard = rec.paused ? 'paused' : state?.storm.active ? (state.storm.reason === 'PartitionSuspected' ? 'partition' : 'storm') : rec.dryRun ? 'dry-run' : 'none';
    return { active: machines.filter((m) => m.phase === 'Running').length, needsHuman: machines.filter((m) => m.phase === 'NeedsHuman').length, guard };
  }

  /** Machines remediation makes unavailable now (running a ladder step, or cordoned). */
  held(): string[] {
    const state = this.record().state as RemediationState | null;
    if (state === null) return [];
    // Asked by the budget on every tick of both controllers: worked out once per state.
    if (this.heldOf?.machines !== state.machines) {
      this.heldOf = { machines: state.machines, names: Object.entries(state.machines).filter(([, m]) => m.phase === 'Running' || m.cordoned).map(([name]) => name) };
    }
    return [...this.heldOf.names];
  }

  /**
   * Forgets a deleted machine (the store dropped its rows in the same request): its
   * ladder no longer counts against the budget, its fault states are gone.
   */
  forget(name: string): void {
    const state = this.cached.state;
    if (state !== null && name in state.machines) {
      const { [name]: _gone, ...machines } = state.machines;
      this.cached = { ...this.cached, state: { ...state, machines } };
    }
    this.views.stored(new Map([[name, null]]));
    this.changed(name);
  }

  /** Faults of a machine as of the last tick (non-Clear ones unless `all`). */
  faults(machine: string, all = false): Fault[] {
    return this.views.faults(machine).filter((f) => all || f.status !== 'Clear');
  }

  /**
   * For the drain gate, before a ReinstallPackage install: the cordon mark (one per rule)
   * and the drain options of the rule whose ladder runs on the machine; null when none runs.
   */
  drainFor(machine: string): { by: string; drain: DrainSpec | undefined } | null {
    const rule = this.machineState(machine)?.rule ?? null;
    if (rule === null) return null;
    return { by: `${REMEDIATION_DRAIN_MARK}${rule}`, drain: this.rules().find((r) => r.rule.name === rule)?.rule.drain };
  }

  /** Why a reinstall's cordon must stay: the ladder ended at CordonAndNotify, a human restores the node. */
  keepCordon(machine: string): string | null {
    const m = this.machineState(machine);
    return m?.phase === 'NeedsHuman' && m.cordoned ? `remediation holds the node for a human (${m.reason})` : null;
  }

  machineState(machine: string): MachineRemediation | null {
    return (this.record().state as RemediationState | null)?.machines[machine] ?? null;
  }

  /**
   * One step of the policy; call on a timer. Its work follows what changed, not the
   * fleet: only machines the fleet view says moved, or whose faults' clock came due, are
   * looked at again (machine-views.ts), the policy reads their views through a live index,
   * and only the rows of machines whose faults or ladder moved are written (with the
   * cluster row when the storm guard's state moved).
   */
  tick(): void {
    const { store, fleet, clock } = this.deps;
    const now = clock();
    const rec = this.cached;
    const { views, faultChanges, faultsMoved } = this.views.update(fleet, store.getClusterPackageVersion()?.packages ?? [], now);
    // faults() answers from the update at once, whatever becomes of the plan below.
    for (const name of faultsMoved) this.changed(name);
    const rules = this.rules();
    // A rule applied or deleted (the API, the host) moves the `action` of running ladders.
    const rulesKey = JSON.stringify(rules.map((r) => r.rule));
    if (this.rulesKey !== null && rulesKey !== this.rulesKey) this.changed(null);
    this.rulesKey = rulesKey;
    const results = this.results;
    this.results = [];
    const plan = planRemediation({
      machines: views,
      rules: rules.map((r) => r.rule),
      state: rec.state,
      budget: this.deps.budget.for(REMEDIATION_OWNER, views.byName.size),
      settings: this.settings,
      pause: { cluster: rec.paused, machines: rec.pausedMachines },
      dryRun: rec.dryRun,
      results,
      now,
    });
    const machineChanges = changedRecords(rec.state?.machines ?? {}, plan.state.machines);
    const stormMoved = rec.state === null || !sameStorm(rec.state.storm, plan.state.storm);
    if (plan.actions.length === 0 && faultChanges.size === 0 && machineChanges.size === 0 && !stormMoved) return;
    const changes: RemediationChanges = {
      machines: machineChanges,
      faults: faultChanges,
      ...(stormMoved ? { cluster: { storm: plan.state.storm, paused: rec.paused, dryRun: rec.dryRun, pausedMachines: rec.pausedMachines } } : {}),
    };
    const toSend: string[] = [];
    const toReboot: string[] = [];
    const failedAtOnce: CommandResult[] = [];
    try {
      store.transaction(() => {
        store.saveRemediation(changes);
        for (const a of plan.actions) this.apply(a, toSend, failedAtOnce, toReboot);
      });
    } catch (err) {
      // Nothing was stored: the results taken above are judged again at the next tick.
      this.results = [...results, ...this.results];
      throw err;
    }
    // Only once committed.
    this.views.stored(faultChanges);
    this.cached = { ...rec, state: plan.state };
    for (const name of machineChanges.keys()) this.changed(name);
    for (const id of toSend) this.deps.commands.sendById(id);
    for (const id of toReboot) this.deps.reboots?.run(id);
    this.results.push(...failedAtOnce);
  }

  private apply(a: RemediationAction, toSend: string[], failedAtOnce: CommandResult[], toReboot: string[]): void {
    const { store } = this.deps;
    switch (a.kind) {
      case 'command': {
        const reboots = this.deps.reboots;
        if (a.command === 'node.reboot' && reboots !== undefined) {
          // The rung's time covers all of it: a third for the drain, the rest to come back.
          const totalMs = Math.max(60_000, a.timeoutSeconds * 1000);
          const drainSeconds = Math.max(30, Math.floor(totalMs / 3000));
          reboots.record({
            id: a.commandId, machine: a.machine, owner: REMEDIATION_OWNER, reason: `remediation rule ${a.rule}, step ${a.step}`,
            drain: { force: false, deleteEmptyDirData: false, timeoutSeconds: drainSeconds, gracePeriodSeconds: null },
            timeoutMs: Math.max(30_000, totalMs - drainSeconds * 1000),
          });
          toReboot.push(a.commandId);
          return;
        }
        let params: Record<string, unknown>;
        let kind: string = a.command;
        try {
          params = this.commandParams(a);
          if (a.command === 'package.install') kind = CommandKind.install;
        } catch (err) {
          // No way to build it (no desired config, no artifact): the step fails now and the ladder escalates.
          const message = err instanceof AppError ? `${err.code}: ${err.message}` : (err as Error).message;
          store.recordEvent({ object: `machine/${a.machine}`, type: 'Warning', reason: 'RemediationStepImpossible', message: `rule ${a.rule} step ${a.step + 1}: ${message}` });
          failedAtOnce.push({ machine: a.machine, commandId: a.commandId, outcome: 'failed', message });
          return;
        }
        const timeoutMs = Math.min(600_000, Math.max(1000, a.timeoutSeconds * 1000));
        // The policy's resultDeadlineMs counts on these allowances: keep them one.
        this.deps.commands.record({ id: a.commandId, machine: a.machine, kind, params, owner: REMEDIATION_OWNER, timeoutMs: timeoutMs + COMMAND_ALLOWANCE_MS[a.command] });
        toSend.push(a.commandId);
        return;
      }
      case 'cordon': {
        const cordon = this.deps.cordon;
        if (cordon === undefined) {
          // No member API configured (--member-kubeconfig): a human cordons it.
          store.recordEvent({ object: `machine/${a.machine}`, type: 'Warning', reason: 'NeedsHuman', message: `rule ${a.rule}: ${a.message} (cordon it: kubectl cordon ${a.machine})` });
          return;
        }
        store.recordEvent({ object: `machine/${a.machine}`, type: 'Warning', reason: 'NeedsHuman', message: `rule ${a.rule}: ${a.message}; cordoning its Node` });
        cordon(a.machine, `remediation/${a.rule}`).then(
          (result) => store.recordEvent({ object: `machine/${a.machine}`, type: 'Warning', reason: 'Cordoned', message: `Node ${a.machine}: ${result}` }),
          (err: unknown) => store.recordEvent({ object: `machine/${a.machine}`, type: 'Warning', reason: 'CordonFailed', message: `Node ${a.machine}: ${(err as Error).message}; cordon it by hand: kubectl cordon ${a.machine}` }),
        );
        return;
      }
      case 'cancelCommand':
        // A reboot not sent yet stops (drain stopped, Node uncordoned); a sent one is seen through.
        if (this.deps.reboots?.cancel(a.commandId, a.message) === true) return;
        // Never delivered: it must not run later, when its step is long over.
        if (this.deps.commands.cancelUnsent(a.commandId, { code: 'NK_REMEDIATION_STEP_ABANDONED', message: a.message })) {
          store.recordEvent({ object: `machine/${a.machine}`, type: 'Warning', reason: 'CommandCancelled', message: `${a.commandId}: ${a.message}; cancelled, it will not be sent` });
        }
        return;
      case 'wouldRemediate':
        store.recordEvent({ object: `machine/${a.machine}`, type: 'Normal', reason: 'DryRun', message: `would ${a.action}${a.target ? ` ${a.target}` : ''} (rule ${a.rule}, step ${a.step + 1}): ${a.message}` });
        return;
      case 'event':
        store.recordEvent({ object: a.object, type: a.type, reason: a.reason, message: `${a.rule === null ? '' : `rule ${a.rule}${a.step === null ? '' : ` step ${a.step + 1}`}: `}${a.message}` });
        return;
      case 'setMachine':
      case 'setStorm':
        return; // state only; the policy emits the matching events
    }
  }

  private commandParams(a: Extract<RemediationAction, { kind: 'command' }>): Record<string, unknown> {
    const timeoutMs = Math.min(600_000, Math.max(1000, a.timeoutSeconds * 1000));
    switch (a.command) {
      case 'service.restart':
        return { unit: a.params['unit'] ?? '', timeoutMs };
      case 'config.restore': {
        const pkg = a.params['package'] ?? 'cni-plugins';
        const p = this.deps.store.getClusterPackageVersion()?.packages.find((x) => x.name === pkg)?.parameters ?? {};
        const path = p['networkConfigPath'];
        const content = p['networkConfig'];
        if (path === undefined || content === undefined) {
          throw new Error(`no desired config for ${pkg}: set parameters networkConfigPath and networkConfig on ${pkg} in the ClusterPackageVersion`);
        }
        return { path, content, mode: 0o644, healthProbe: 'cni', timeoutMs };
      }
      case 'package.install': {
        // The skew guard, as for a rollout: a reinstall never moves kubelet outside the policy.
        const pkg = a.params['package'] ?? '';
        const version = a.params['version'] ?? '';
        const active = observedVersion(this.deps.fleet.get(a.machine), pkg)?.raw ?? null;
        const skew = reinstallSkewProblem(pkg, version, active, this.deps.controlPlaneVersion?.() ?? null);
        if (skew !== null) throw new AppError('NK_VERSION_SKEW', `reinstall of ${pkg} ${version} refused by the version-skew guard: ${skew}`);
        return { ...installParamsFor(this.deps.store, this.deps.artifactBaseUrl(), a.params['package'] ?? '', a.params['version'] ?? '', 'NK_REMEDIATION_NO_ARTIFACT') };
      }
      case 'node.reboot':
        return { reason: `remediation rule ${a.rule}, step ${a.step + 1}` };
    }
  }
}

function sameStorm(a: StormState, b: StormState): boolean {
  return a.active === b.active && a.reason === b.reason && a.message === b.message && a.since === b.since && a.calmSince === b.calmSince;
}
