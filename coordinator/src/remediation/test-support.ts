/**
 * A small in-test fleet for remediation policy tests: each machine produces a real
 * NodeReport (from the protocol's sample), faults are derived from it by the real
 * deriveFaults, and an "agent" per machine runs each command id at most once and
 * answers later. Breakages are injected by the tests; a breakage is repaired only by the
 * command kind the test says repairs it (or never: a crash loop no step cures).
 */
import { sampleReport } from '@nodekeeper/protocol/testing';
import type { NodeReport } from '@nodekeeper/protocol';
import { deriveFaults, type FaultSettings, type FaultState } from './faults.ts';
import type { AgentCommandKind, CommandResult, RemediationAction, RemediationMachineView } from './types.ts';

export type Breakage = 'kubelet' | 'runtime' | 'network';

export interface SimMachine {
  name: string;
  silent: boolean;
  /** Its connection lost, liveness not yet Unknown (the first seconds of a partition). */
  disconnected: boolean;
  livenessSince: number;
  broken: Breakage | null;
  /** The command kind that repairs the breakage, or null: nothing does. */
  cure: AgentCommandKind | null;
  /** Commands fail instead of running. */
  failing: boolean;
  faultState: FaultState | null;
}

interface SimCommand {
  readonly id: string;
  readonly machine: string;
  readonly command: AgentCommandKind;
  readonly doneAt: number;
  result: CommandResult | null;
}

export const DESIRED = Object.freeze({ kubelet: '1.31.2', containerd: '1.7.1', 'cni-plugins': '1.4.0' });

export class SimFleet {
  readonly machines = new Map<string, SimMachine>();
  readonly commands = new Map<string, SimCommand>();
  /** Ids executed by agents (re-deliveries excluded). */
  readonly executed: string[] = [];
  settings: FaultSettings | undefined;

  constructor(n: number, settings?: FaultSettings) {
    this.settings = settings;
    for (let i = 0; i < n; i++) this.machines.set(`n${i}`, { name: `n${i}`, silent: false, disconnected: false, livenessSince: 0, broken: null, cure: null, failing: false, faultState: null });
  }

  get(name: string): SimMachine {
    const m = this.machines.get(name);
    if (m === undefined) throw new RangeError(`no machine ${name}`);
    return m;
  }

  break(name: string, what: Breakage | null, cure: AgentCommandKind | null = 'service.restart'): void {
    Object.assign(this.get(name), { broken: what, cure });
  }

  setSilent(name: string, silent: boolean, now: number): void {
    const m = this.get(name);
    if (m.silent !== silent) Object.assign(m, { silent, livenessSince: now });
  }

  /** Records commands; a re-sent id is not run again. */
  apply(actions: readonly RemediationAction[], now: number, durationMs = 10_000): void {
    for (const a of actions) {
      if (a.kind !== 'command' || this.commands.has(a.commandId)) continue;
      this.commands.set(a.commandId, { id: a.commandId, machine: a.machine, command: a.command, doneAt: now + durationMs, result: null });
    }
  }

  setDisconnected(name: string, disconnected: boolean): void {
    this.get(name).disconnected = disconnected;
  }

  /** Runs due commands on machines that are not silent; returns their results. */
  tick(now: number): CommandResult[] {
    const out: CommandResult[] = [];
    for (const c of this.commands.values()) {
      if (c.result !== null || c.doneAt > now) continue;
      const m = this.get(c.machine);
      if (m.silent || m.disconnected) continue; // it runs, but its result cannot reach us yet
      this.executed.push(c.id);
      if (m.failing) c.result = { machine: c.machine, commandId: c.id, outcome: 'failed', message: 'simulated failure' };
      else {
        if (m.cure === c.command) m.broken = null;
        c.result = { machine: c.machine, commandId: c.id, outcome: 'succeeded', message: 'ok' };
      }
      out.push(c.result);
    }
    return out;
  }

  /** Every result known (what a restarted controller re-reads from the command store). */
  allResults(): CommandResult[] {
    return [...this.commands.values()].flatMap((c) => (c.result === null ? [] : [c.result]));
  }

  report(m: SimMachine): NodeReport {
    const r = structuredClone(sampleReport);
    if (m.broken === 'kubelet') Object.assign(r.kubelet, { health: 'unhealthy', reason: 'HealthzRefused', message: 'connection refused' });
    if (m.broken === 'runtime') Object.assign(r.runtime, { health: 'unhealthy', reason: 'CriUnavailable', message: 'socket gone' });
    if (m.broken === 'network') Object.assign(r.cni, { health: 'unhealthy', reason: 'NoNetworkConfig', message: 'no config in /etc/cni/net.d' });
    return r;
  }

  /** Views with faults derived by deriveFaults (the fault state is part of what is persisted). */
  views(now: number): RemediationMachineView[] {
    return [...this.machines.values()].map((m) => {
      const liveness = { state: m.silent ? ('Unknown' as const) : m.broken === null ? ('Ready' as const) : ('NotReady' as const), since: m.livenessSince };
      const { faults, state } = deriveFaults(m.faultState, { report: this.report(m), liveness }, now, this.settings);
      m.faultState = state;
      return { name: m.name, zone: null, liveness, connected: !m.silent && !m.disconnected, contactLost: m.silent || m.disconnected, healthy: m.broken === null, faults, desired: { ...DESIRED } };
    });
  }
}
