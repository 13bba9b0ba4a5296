/**
 * The remediation policy's scratch pad for one step: a copy of the persisted state that
 * the step changes, with every phase change checked against the transition table and
 * turned into an action and an event as it happens, so changes and actions cannot drift.
 */
import { createHash } from 'node:crypto';
import type { RemediationRule } from './rules.ts';
import type { MachineRemediation, RemediationAction, RemediationInput, RemediationMachineView, RemediationResult, RemediationState, StormState } from './types.ts';
import { REMEDIATION_TRANSITIONS } from './types.ts';

/** History lines kept per machine (the events keep the whole trail). */
export const MAX_HISTORY = 20;

/**
 * The same id on every replan of the same step, so a coordinator that dies between
 * recording a command and saving its state re-issues the id and the agent, which runs
 * an id at most once, answers with its recorded result instead of acting twice.
 */
export function remediationCommandId(machine: string, rule: string, ladder: number, step: number): string {
  return `rm-${createHash('sha256').update(`${machine}\n${rule}\n${ladder}\n${step}`).digest('hex').slice(0, 40)}`;
}

export function idleMachine(now: number): MachineRemediation {
  return { phase: 'Idle', reason: 'NoFault', message: '', since: now, rule: null, step: 0, ladders: 0, attempts: [], cooldownUntil: 0, commandId: null, stepStartedAt: null, commandOutcome: null, cordoned: false, waiting: null, dryRunNoted: null, history: [] };
}

export function calmStorm(now: number): StormState {
  return { active: false, reason: 'Calm', message: '', since: now, calmSince: null };
}

export class PolicyDraft {
  readonly input: RemediationInput;
  readonly now: number;
  readonly actions: RemediationAction[] = [];
  readonly views: ReadonlyMap<string, RemediationMachineView>;
  readonly rules: ReadonlyMap<string, RemediationRule>;
  readonly others: ReadonlySet<string>;
  readonly paused: ReadonlySet<string>;
  readonly machines = new Map<string, MachineRemediation>();
  storm: StormState;

  constructor(input: RemediationInput) {
    this.input = input;
    this.now = input.now;
    this.views = new Map(input.machines.map((v) => [v.name, v]));
    this.rules = new Map(input.rules.map((r) => [r.name, r]));
    this.others = new Set(input.budget.unavailableNow);
    this.paused = new Set(input.pause.machines);
    const prev = input.state;
    this.storm = prev?.storm ?? calmStorm(input.now);
    // Machines with a story are kept even when their view is gone, so the budget and
    // the trail survive a machine briefly missing from the fleet view.
    for (const [name, m] of Object.entries(prev?.machines ?? {})) this.machines.set(name, m);
    for (const v of input.machines) if (!this.machines.has(v.name)) this.machines.set(v.name, idleMachine(input.now));
  }

  get(name: string): MachineRemediation {
    const m = this.machines.get(name);
    if (m === undefined) throw new RangeError(`no remediation state for machine "${name}"`);
    return m;
  }

  event(type: 'Normal' | 'Warning', object: string, reason: string, message: string, rule: string | null = null, step: number | null = null): void {
    this.actions.push({ kind: 'event', type, object, reason, message, rule, step });
  }

  /** Changes a machine's record; a phase change is checked, and recorded as an action and an event. */
  set(name: string, patch: Partial<MachineRemediation> & { reason: string; message: string }, warning = false): void {
    const m = this.get(name);
    const phase = patch.phase ?? m.phase;
    if (phase !== m.phase && !REMEDIATION_TRANSITIONS[m.phase].includes(phase)) throw new RangeError(`remediation of ${name}: no transition ${m.phase} -> ${phase}`);
    const moved = phase !== m.phase || (patch.step !== undefined && patch.step !== m.step) || patch.phase === 'Running';
    this.machines.set(name, { ...m, ...patch, phase, since: phase !== m.phase ? this.now : m.since, waiting: patch.waiting ?? null });
    if (moved) {
      this.actions.push({ kind: 'setMachine', machine: name, phase, reason: patch.reason, message: patch.message });
      this.event(warning ? 'Warning' : 'Normal', `machine/${name}`, patch.reason, patch.message, patch.rule ?? m.rule, patch.step ?? m.step);
    }
  }

  /** Records why nothing starts on a machine; the event fires when the reason changes. */
  wait(name: string, reason: string, message: string, rule: string | null): void {
    const m = this.get(name);
    if (m.waiting === reason) return;
    this.machines.set(name, { ...m, waiting: reason });
    this.event('Normal', `machine/${name}`, reason, message, rule, null);
  }

  history(name: string, rule: string, step: number, action: MachineRemediation['history'][number]['action'], result: string): void {
    const m = this.get(name);
    this.machines.set(name, { ...m, history: [...m.history, { at: this.now, rule, step, action, result }].slice(-MAX_HISTORY) });
  }

  /** Machines remediation makes unavailable now: remediating, or cordoned and not restored. */
  ours(): Set<string> {
    const out = new Set<string>();
    for (const [name, m] of this.machines) if (m.phase === 'Running' || (m.phase === 'NeedsHuman' && m.cordoned)) out.add(name);
    return out;
  }

  inFlight(): number {
    let n = 0;
    for (const m of this.machines.values()) if (m.phase === 'Running') n++;
    return n;
  }

  finish(): RemediationResult {
    const machines: Record<string, MachineRemediation> = {};
    for (const name of [...this.machines.keys()].sort()) {
      const m = this.get(name);
      // Forget machines that left the fleet once nothing about them matters any more.
      if (!this.views.has(name) && m.phase === 'Idle' && m.cooldownUntil <= this.now) continue;
      machines[name] = m;
    }
    const state: RemediationState = { machines, storm: this.storm };
    return { actions: this.actions, state };
  }
}
