/**
 * A small in-test fleet for planner tests: machines with versions, health and liveness;
 * an "agent" per machine that runs each command id at most once and answers later.
 * The planner's actions are applied to it and its results fed back, the way the
 * controller and the real agents do. Faults are injected by the tests.
 */
import type { InstallResultEvent, MachineView, PlanAction, RolloutState } from './types.ts';

export interface SimMachine {
  name: string;
  labels: Record<string, string>;
  zone: string | null;
  versions: Record<string, string | null>;
  silent: boolean;
  livenessSince: number;
  healthy: boolean;
  healthySince: number | null;
}

interface SimCommand {
  readonly id: string;
  readonly machine: string;
  readonly action: 'install' | 'rollback';
  readonly package: string;
  readonly version: string;
  readonly doneAt: number;
  /** Decided when issued: the install will fail (rolled back by the agent). */
  readonly fail: boolean;
  result: InstallResultEvent | null;
}

export class SimFleet {
  readonly machines = new Map<string, SimMachine>();
  readonly commands = new Map<string, SimCommand>();
  /** Every command id the fleet received, in order, with its machine, action, package and version. */
  readonly received: { id: string; machine: string; action: 'install' | 'rollback'; package: string; version: string }[] = [];
  /** `machine pkg@version` of installs an agent actually ran (re-deliveries excluded). */
  readonly executed: string[] = [];

  add(m: Omit<SimMachine, 'silent' | 'livenessSince' | 'healthy' | 'healthySince'>, now = 0): void {
    this.machines.set(m.name, { ...m, silent: false, livenessSince: now, healthy: true, healthySince: now });
  }

  get(name: string): SimMachine {
    const m = this.machines.get(name);
    if (m === undefined) throw new RangeError(`no machine ${name}`);
    return m;
  }

  setSilent(name: string, silent: boolean, now: number): void {
    const m = this.get(name);
    if (m.silent !== silent) Object.assign(m, { silent, livenessSince: now });
  }

  setHealthy(name: string, healthy: boolean, now: number): void {
    const m = this.get(name);
    if (m.healthy !== healthy) Object.assign(m, { healthy, healthySince: healthy ? now : null });
  }

  /** Records commands (an agent runs an id once: a re-sent id is not run again). */
  apply(actions: readonly PlanAction[], now: number, opts: { durationMs?: number; fail?: (a: { machine: string; package: string; version: string; action: string }) => boolean } = {}): void {
    for (const a of actions) {
      if (a.kind !== 'install' && a.kind !== 'rollback') continue;
      this.received.push({ id: a.commandId, machine: a.machine, action: a.kind, package: a.package, version: a.version });
      if (this.commands.has(a.commandId)) continue;
      const fail = opts.fail?.({ machine: a.machine, package: a.package, version: a.version, action: a.kind }) ?? false;
      this.commands.set(a.commandId, { id: a.commandId, machine: a.machine, action: a.kind, package: a.package, version: a.version, doneAt: now + (opts.durationMs ?? 10_000), fail, result: null });
    }
  }

  /** Runs the commands that are due on machines that are not silent. */
  tick(now: number): void {
    for (const c of this.commands.values()) {
      if (c.result !== null || c.doneAt > now) continue;
      const m = this.get(c.machine);
      if (m.silent) continue;
      const before = m.versions[c.package] ?? null;
      if (c.fail) {
        c.result = { kind: 'installResult', machine: c.machine, commandId: c.id, outcome: 'rolled-back', activeVersion: before, failedStep: 'health', message: 'health probe failed; switched back' };
        continue;
      }
      if (c.action === 'install') this.executed.push(`${c.machine} ${c.package}@${c.version}`);
      m.versions[c.package] = c.version;
      c.result = { kind: 'installResult', machine: c.machine, commandId: c.id, outcome: before === c.version ? 'already-installed' : 'installed', activeVersion: c.version, message: 'ok' };
    }
  }

  /** Results of the commands the state waits on (what the controller reads from the store). */
  resultsFor(state: RolloutState): InstallResultEvent[] {
    const out: InstallResultEvent[] = [];
    for (const name of state.candidates) {
      const id = state.machines[name]?.commandId;
      const r = id === null || id === undefined ? null : (this.commands.get(id)?.result ?? null);
      if (r !== null) out.push(r);
    }
    return out;
  }

  views(): MachineView[] {
    return [...this.machines.values()].map((m) => ({
      name: m.name,
      labels: { ...m.labels },
      zone: m.zone,
      liveness: { state: m.silent ? 'Unknown' : 'Ready', since: m.livenessSince },
      connected: !m.silent,
      versions: { ...m.versions },
      healthy: m.healthy,
      healthySince: m.healthy ? m.healthySince : null,
    }));
  }
}

/**
 * The availability budget's definition, written independently of the planner's, for the
 * property tests (rollout and convergence): the machines `state` makes unavailable.
 */
export function budgetUnavailable(state: RolloutState, views: ReadonlyMap<string, MachineView>): Set<string> {
  const out = new Set<string>();
  for (const name of state.candidates) {
    const p = state.machines[name];
    const v = views.get(name);
    if (p === undefined) continue;
    const silent = v === undefined || v.liveness.state === 'Unknown' || v.liveness.state === 'Pending';
    const touched = p.phase !== 'Waiting' && (p.phase !== 'Skipped' || p.changed.length > 0);
    const inFlight = p.phase === 'Installing' || p.phase === 'Soaking' || p.phase === 'RollingBack';
    if (inFlight || (p.phase === 'Failed' && (silent || v?.healthy !== true)) || (touched && silent)) out.add(name);
  }
  return out;
}
