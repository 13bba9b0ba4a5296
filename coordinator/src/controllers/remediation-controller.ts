/**
 * Applies the remediation policy (coordinator/src/remediation, pure) to the world:
 * derives each machine's faults from its reports on the coordinator's clock, plans, then
 * persists the state and records the commands it asks for in ONE transaction, and sends
 * them. Machines a rollout holds are never touched, and rollouts see the machines this
 * holds (one availability budget, architecture invariant 1).
 */
import { AppError, type Logger } from '@nodekeeper/common';
import { CommandKind } from '@nodekeeper/protocol';
import type { Clock } from '../clock.ts';
import type { CommandDispatcher } from '../commands/dispatcher.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import { installParamsFor } from '../packages/install-params.ts';
import { deriveFaults, DEFAULT_FAULT_SETTINGS, type Fault, type FaultSettings, type FaultState } from '../remediation/faults.ts';
import { planRemediation } from '../remediation/policy.ts';
import { checkRuleSet, defaultRules, parseRule, type RemediationRule } from '../remediation/rules.ts';
import {
  DEFAULT_REMEDIATION_SETTINGS,
  type CommandResult, type MachineRemediation, type RemediationAction, type RemediationSettings, type RemediationState,
} from '../remediation/types.ts';
import { resolveIntOrPercent } from '../rollout/spec.ts';
import type { Store } from '../store/db.ts';
import type { RemediationRecord } from '../store/remediation.ts';
import type { CommandRecord, MachineRecord } from '../store/types.ts';

export const REMEDIATION_OWNER = 'remediation';

export interface RemediationOptions {
  /** Cluster-wide cap on machines made unavailable, absolute or N%. */
  readonly maxUnavailable: string;
  readonly settings?: RemediationSettings;
  readonly faults?: FaultSettings;
}

interface Deps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly commands: CommandDispatcher;
  readonly clock: Clock;
  readonly log: Logger;
  /** Machines rollouts hold now. */
  readonly heldByRollouts: () => readonly string[];
  /** Where agents download pushed artifacts (for reinstalls). */
  readonly artifactBaseUrl: () => string;
  /** Cordons the machine's Node in the member cluster, when its API is configured. */
  readonly cordon?: (machine: string, by: string) => Promise<string>;
}

const EMPTY: RemediationRecord = { state: null, faults: {}, paused: false, dryRun: false, pausedMachines: [] };

export class RemediationController {
  private readonly deps: Deps;
  private readonly settings: RemediationSettings;
  private readonly faultSettings: FaultSettings;
  private readonly maxUnavailable: string;
  private results: CommandResult[] = [];
  /** The last persisted record, serialised: a quiet fleet costs no write per tick. */
  private saved = '';
  /** Faults of the last tick, for the API. */
  private current = new Map<string, Fault[]>();
  private cached: RemediationRecord | null = null;

  constructor(deps: Deps, opts: RemediationOptions) {
    this.deps = deps;
    this.settings = opts.settings ?? DEFAULT_REMEDIATION_SETTINGS;
    this.faultSettings = opts.faults ?? DEFAULT_FAULT_SETTINGS;
    this.maxUnavailable = opts.maxUnavailable;
    // Recovery: results of commands that finished while we were down are still stored.
    for (const c of deps.store.commandsByOwner(REMEDIATION_OWNER)) {
      const r = toResult(c);
      if (r !== null) this.results.push(r);
    }
    deps.commands.onFinished((c) => {
      if (c.owner !== REMEDIATION_OWNER) return;
      const r = toResult(c);
      if (r !== null) this.results.push(r);
    });
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
    this.deps.store.putRemediationRule(rule.name, object);
    this.deps.store.recordEvent({ object: `remediationrule/${rule.name}`, type: 'Normal', reason: 'Applied', message: `${rule.fault}: ${rule.ladder.map((s) => s.action).join(' -> ')}` });
    return rule;
  }

  settingsInForce(): RemediationSettings {
    return this.settings;
  }

  /**
   * The persisted record, parsed once and kept: this controller is its only writer, and
   * the API asks for it once per machine when listing machines.
   */
  record(): RemediationRecord {
    this.cached ??= this.deps.store.getRemediation() ?? EMPTY;
    return this.cached;
  }

  /** Cluster-wide or per-machine pause/resume, and dry run; recorded as events. */
  setSwitch(change: { paused?: boolean; dryRun?: boolean; machine?: { name: string; paused: boolean } }): RemediationRecord {
    const rec = this.record();
    let next: RemediationRecord = { ...rec };
    if (change.paused !== undefined) next = { ...next, paused: change.paused };
    if (change.dryRun !== undefined) next = { ...next, dryRun: change.dryRun };
    if (change.machine !== undefined) {
      const set = new Set(rec.pausedMachines);
      if (change.machine.paused) set.add(change.machine.name);
      else set.delete(change.machine.name);
      next = { ...next, pausedMachines: [...set].sort() };
    }
    this.deps.store.transaction(() => {
      this.deps.store.saveRemediation(next);
      const what = change.machine !== undefined
        ? `remediation ${change.machine.paused ? 'paused' : 'resumed'} on ${change.machine.name}`
        : change.dryRun !== undefined ? `dry run ${change.dryRun ? 'on: decisions are recorded, nothing is done' : 'off'}` : `remediation ${change.paused ? 'paused' : 'resumed'} cluster-wide`;
      this.deps.store.recordEvent({ object: change.machine !== undefined ? `machine/${change.machine.name}` : 'remediation/cluster', type: 'Normal', reason: 'OperatorRequest', message: what });
    });
    this.cached = next; // only once committed
    this.saved = '';
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
    return Object.entries(state.machines).filter(([, m]) => m.phase === 'Running' || m.cordoned).map(([name]) => name);
  }

  /** Faults of a machine as of the last tick (non-Clear ones unless `all`). */
  faults(machine: string, all = false): Fault[] {
    return (this.current.get(machine) ?? []).filter((f) => all || f.status !== 'Clear');
  }

  machineState(machine: string): MachineRemediation | null {
    return (this.record().state as RemediationState | null)?.machines[machine] ?? null;
  }

  /** One step of the policy; call on a timer. */
  tick(): void {
    const { store, fleet, clock } = this.deps;
    const now = clock();
    const rec = this.record();
    const machines = fleet.list().filter((m) => m.revokedAt === null);
    const faultStates: Record<string, FaultState> = {};
    const cpv = store.getClusterPackageVersion();
    const views = machines.map((m) => {
      const { faults, state } = deriveFaults((rec.faults[m.name] as FaultState | undefined) ?? null, { report: m.report, liveness: m.liveness }, now, this.faultSettings);
      faultStates[m.name] = state;
      this.current.set(m.name, faults);
      return {
        name: m.name,
        zone: m.zone,
        liveness: { state: m.liveness.state, since: m.liveness.since },
        connected: fleet.isConnected(m.name),
        healthy: isHealthy(m),
        faults,
        desired: desiredVersions(m, cpv?.packages ?? []),
      };
    });
    const results = this.results;
    this.results = [];
    const plan = planRemediation({
      machines: views,
      rules: this.rules().map((r) => r.rule),
      state: rec.state as RemediationState | null,
      budget: { maxUnavailable: resolveIntOrPercent(budgetValue(this.maxUnavailable), Math.max(1, machines.length), false), unavailableNow: this.deps.heldByRollouts() },
      settings: this.settings,
      pause: { cluster: rec.paused, machines: rec.pausedMachines },
      dryRun: rec.dryRun,
      results,
      now,
    });
    const next: RemediationRecord = { ...rec, state: plan.state, faults: faultStates };
    const serialised = JSON.stringify(next);
    if (plan.actions.length === 0 && serialised === this.saved) return;
    const toSend: string[] = [];
    const failedAtOnce: CommandResult[] = [];
    store.transaction(() => {
      store.saveRemediation(next);
      for (const a of plan.actions) this.apply(a, toSend, failedAtOnce);
    });
    this.cached = next; // only once committed
    this.saved = serialised;
    for (const id of toSend) this.deps.commands.sendById(id);
    this.results.push(...failedAtOnce);
  }

  private apply(a: RemediationAction, toSend: string[], failedAtOnce: CommandResult[]): void {
    const { store } = this.deps;
    switch (a.kind) {
      case 'command': {
        let params: Record<string, unknown>;
        let kind: string = a.command;
        try {
          params = this.commandParams(a);
          if (a.command === 'package.install') kind = CommandKind.install;
        } catch (err) {
          // No way to build it (no desired config, no artifact): the step fails now and the ladder escalates.
          const message = (err as Error).message;
          store.recordEvent({ object: `machine/${a.machine}`, type: 'Warning', reason: 'RemediationStepImpossible', message: `rule ${a.rule} step ${a.step}: ${message}` });
          failedAtOnce.push({ machine: a.machine, commandId: a.commandId, outcome: 'failed', message });
          return;
        }
        const timeoutMs = Math.min(600_000, Math.max(1000, a.timeoutSeconds * 1000));
        this.deps.commands.record({ id: a.commandId, machine: a.machine, kind, params, owner: REMEDIATION_OWNER, timeoutMs: kind === CommandKind.install ? timeoutMs + 30 * 60_000 : timeoutMs + 30_000 });
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
      case 'wouldRemediate':
        store.recordEvent({ object: `machine/${a.machine}`, type: 'Normal', reason: 'DryRun', message: `would ${a.action}${a.target ? ` ${a.target}` : ''} (rule ${a.rule}, step ${a.step}): ${a.message}` });
        return;
      case 'event':
        store.recordEvent({ object: a.object, type: a.type, reason: a.reason, message: `${a.rule === null ? '' : `rule ${a.rule}${a.step === null ? '' : ` step ${a.step}`}: `}${a.message}` });
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
      case 'package.install':
        return { ...installParamsFor(this.deps.store, this.deps.artifactBaseUrl(), a.params['package'] ?? '', a.params['version'] ?? '', 'NK_REMEDIATION_NO_ARTIFACT') };
      case 'node.reboot':
        return { reason: `remediation rule ${a.rule}, step ${a.step}` };
    }
  }
}

function budgetValue(text: string): number | `${number}%` {
  return text.endsWith('%') ? (text as `${number}%`) : Number(text);
}

function isHealthy(m: MachineRecord): boolean {
  const r = m.report;
  return m.liveness.state === 'Ready' && r !== null && r.kubelet.health === 'healthy' && r.runtime.health === 'healthy' && r.cni.health === 'healthy';
}

/** Desired version per package: the machine's pin, else the cluster default. */
function desiredVersions(m: MachineRecord, defaults: ReadonlyArray<{ name: string; version: string }>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of defaults) out[p.name] = p.version;
  for (const [name, o] of Object.entries(m.packageOverrides ?? {})) out[name] = o.version;
  return out;
}

/** A finished remediation command as the policy's result. */
function toResult(c: CommandRecord): CommandResult | null {
  if (c.state === 'Pending' || c.state === 'Sent' || c.state === 'Running') return null;
  if (c.state === 'TimedOut') return { machine: c.machine, commandId: c.id, outcome: 'timed-out', message: c.message };
  const outcome = c.result?.['outcome'];
  const good = c.state === 'Succeeded' && (outcome === undefined || outcome === 'healthy' || outcome === 'installed' || outcome === 'already-installed' || outcome === 'rebooting');
  return { machine: c.machine, commandId: c.id, outcome: good ? 'succeeded' : 'failed', message: c.error?.message ?? (typeof c.result?.['message'] === 'string' ? c.result['message'] : c.message) };
}
