/**
 * The planner's scratch pad for one step: a copy of the persisted state that the step
 * changes, with every change checked against the transition tables and turned into an
 * action (and an event) as it happens. Changes and actions cannot drift apart.
 */
import { createHash } from 'node:crypto';
import type { MachineView, MachineProgress, PlanAction, PlanInput, PlanResult, RolloutCounters, RolloutPhase, RolloutState, WaitingReason, MachinePhase } from './types.ts';
import { IN_FLIGHT, MACHINE_GONE, MACHINE_TRANSITIONS, ROLLOUT_TRANSITIONS } from './types.ts';
import type { RolloutSpec } from './spec.ts';

/** Liveness states in which the coordinator is not hearing from the machine. */
const SILENT_STATES: ReadonlySet<string> = new Set(['Unknown', 'Pending']);

/** Silence the planner waits through before pausing (5 minutes). */
export const DEFAULT_SILENCE_TIMEOUT_MS = 5 * 60_000;

/**
 * A command id the same on every replan of the same step, so a coordinator that dies
 * between recording a command and saving the state re-issues the same id and the agent
 * answers with its recorded result instead of installing twice.
 */
export function commandIdFor(rollout: string, machine: string, action: string, pkg: string, version: string, attempt: number): string {
  const h = createHash('sha256').update(`${rollout}\n${machine}\n${action}\n${pkg}\n${version}\n${attempt}`).digest('hex');
  return `ro-${h.slice(0, 40)}`;
}

/** True when the coordinator hears nothing from the machine (or does not know it any more). */
export function isSilent(view: MachineView | undefined): boolean {
  return view === undefined || SILENT_STATES.has(view.liveness.state);
}

export function emptyProgress(since: number): MachineProgress {
  return { phase: 'Waiting', reason: 'Waiting', message: 'waiting for its batch', since, attempt: 0, step: null, commandId: null, previous: {}, changed: [], soakFrom: null, failedStep: null, counted: false };
}

export function countMachines(candidates: readonly string[], machines: Readonly<Record<string, MachineProgress>>): RolloutCounters {
  const c = { total: candidates.length, waiting: 0, inProgress: 0, succeeded: 0, failed: 0, rollingBack: 0, rolledBack: 0, skipped: 0 };
  for (const name of candidates) {
    const phase = machines[name]?.phase ?? 'Waiting';
    if (phase === 'Waiting') c.waiting++;
    else if (phase === 'Installing' || phase === 'Soaking') c.inProgress++;
    else if (phase === 'Succeeded') c.succeeded++;
    else if (phase === 'Failed') c.failed++;
    else if (phase === 'RollingBack') c.rollingBack++;
    else if (phase === 'RolledBack') c.rolledBack++;
    else c.skipped++;
  }
  return c;
}

/**
 * Machines records known to hold exactly their rollout's candidates, as keys in
 * candidate order (what finish() would build): checked once per record object.
 */
const candidateRecords = new WeakMap<object, readonly string[]>();

function holdsExactlyCandidates(machines: Readonly<Record<string, MachineProgress>>, candidates: readonly string[]): boolean {
  if (candidateRecords.get(machines) === candidates) return true;
  const keys = Object.keys(machines);
  if (keys.length !== candidates.length || keys.some((k, i) => k !== candidates[i])) return false;
  candidateRecords.set(machines, candidates);
  return true;
}

/** Counters of a machines record built by finish(), counted once per record object. */
const countersOf = new WeakMap<object, { candidates: readonly string[]; counters: RolloutCounters }>();

function countOnce(candidates: readonly string[], machines: Readonly<Record<string, MachineProgress>>): RolloutCounters {
  const known = countersOf.get(machines);
  if (known?.candidates === candidates) return known.counters;
  const counters = countMachines(candidates, machines);
  countersOf.set(machines, { candidates, counters });
  return counters;
}

/** A Map that counts its writes, so what is derived from it is kept until it changes. */
class CountedMap<K, V> extends Map<K, V> {
  writes = 0;

  override set(key: K, value: V): this {
    this.writes++;
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    this.writes++;
    return super.delete(key);
  }

  override clear(): void {
    this.writes++;
    super.clear();
  }
}

export class Draft {
  readonly name: string;
  readonly spec: RolloutSpec;
  readonly now: number;
  readonly views: ReadonlyMap<string, MachineView>;
  readonly input: PlanInput;
  readonly actions: PlanAction[] = [];
  readonly machines: CountedMap<string, MachineProgress>;
  /** ownUnavailable() as of `writes` machine changes (a step asks up to twice). */
  private own: { readonly writes: number; readonly set: ReadonlySet<string> } | null = null;
  state: Omit<RolloutState, 'machines' | 'counters'>;

  constructor(input: PlanInput) {
    this.input = input;
    this.name = input.rollout.name;
    this.spec = input.rollout.spec;
    this.now = input.now;
    if (input.machines instanceof Map) {
      // Already by name (the controller keeps one): a copy of 20,000 entries per step buys nothing.
      this.views = input.machines as ReadonlyMap<string, MachineView>;
    } else {
      const views = new Map<string, MachineView>();
      for (const v of input.machines as readonly MachineView[]) views.set(v.name, v);
      this.views = views;
    }
    const { machines, counters: _counters, ...rest } = input.rollout.state;
    this.state = { ...rest };
    this.machines = new CountedMap();
    for (const name of rest.candidates) this.machines.set(name, machines[name] ?? emptyProgress(rest.createdAt));
  }

  get phase(): RolloutPhase {
    return this.state.phase;
  }

  /** `nkctl rollout VERB NAME` for messages and `continueWith`. */
  command(verb: 'resume' | 'rollback' | 'abort' | 'status'): string {
    return `nkctl rollout ${verb} ${this.name}`;
  }

  progress(name: string): MachineProgress {
    const p = this.machines.get(name);
    if (p === undefined) throw new RangeError(`machine "${name}" is not a candidate of rollout "${this.name}"`);
    return p;
  }

  event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.actions.push({ kind: 'event', type, object: `rollout/${this.name}`, reason, message });
  }

  /** Moves the rollout to `to` (checked against ROLLOUT_TRANSITIONS), with its action and event. */
  transition(to: RolloutPhase, reason: string, message: string, continueWith: string | null, warning = false): void {
    const from = this.state.phase;
    if (from === to) {
      this.state = { ...this.state, reason, message, continueWith };
      return;
    }
    if (!ROLLOUT_TRANSITIONS[from].includes(to)) throw new RangeError(`rollout "${this.name}": no transition ${from} -> ${to}`);
    const resumeTo = to === 'Paused' ? from : this.state.resumeTo;
    const done = to === 'Completed' || to === 'RolledBack' || to === 'Failed';
    this.state = { ...this.state, phase: to, reason, message, continueWith, since: this.now, resumeTo, waiting: null, completedAt: done ? this.now : this.state.completedAt };
    this.actions.push({ kind: 'setPhase', phase: to, reason, message, continueWith });
    this.event(warning ? 'Warning' : 'Normal', reason, `${from} -> ${to}: ${message}`);
  }

  /**
   * Changes one machine's progress. A phase change is checked against
   * MACHINE_TRANSITIONS and recorded as an action and an event.
   */
  setMachine(name: string, patch: Partial<MachineProgress> & { reason: string; message: string }, warning = false): void {
    const p = this.progress(name);
    const phase: MachinePhase = patch.phase ?? p.phase;
    if (phase !== p.phase && !MACHINE_TRANSITIONS[p.phase].includes(phase)) throw new RangeError(`rollout "${this.name}": machine ${name} cannot go ${p.phase} -> ${phase}`);
    const moved = phase !== p.phase || patch.step !== undefined;
    this.machines.set(name, { ...p, ...patch, phase, since: phase !== p.phase ? this.now : p.since });
    if (moved) {
      this.actions.push({ kind: 'setMachinePhase', machine: name, phase, reason: patch.reason, message: patch.message });
      this.event(warning ? 'Warning' : 'Normal', patch.reason, `machine ${name}: ${patch.message}`);
    }
  }

  setWaiting(waiting: WaitingReason | null): void {
    this.state = { ...this.state, waiting };
  }

  /** Machines of this rollout that count against the availability budget now. */
  ownUnavailable(): ReadonlySet<string> {
    if (this.own !== null && this.own.writes === this.machines.writes) return this.own.set;
    const out = new Set<string>();
    for (const [name, p] of this.machines) {
      if (p.reason === MACHINE_GONE) continue; // deleted: unavailable to nobody
      const v = this.views.get(name);
      if (IN_FLIGHT.has(p.phase)) out.add(name);
      else if (p.phase === 'Failed' && (isSilent(v) || v?.healthy !== true)) out.add(name);
      else if (p.phase !== 'Waiting' && p.phase !== 'Skipped' && isSilent(v)) out.add(name);
      else if (p.phase === 'Skipped' && p.changed.length > 0 && isSilent(v)) out.add(name);
    }
    this.own = { writes: this.machines.writes, set: out };
    return out;
  }

  others(): ReadonlySet<string> {
    const u = this.input.budget.unavailableNow;
    return u instanceof Set ? u : new Set(u as readonly string[]);
  }

  /** Every machine that counts against the budget because of someone else (others() and countedNow). */
  unavailableElsewhere(): Set<string> {
    return new Set([...this.others(), ...(this.input.budget.countedNow ?? [])]);
  }

  finish(): PlanResult {
    const candidates = this.state.candidates;
    const before = this.input.rollout.state.machines;
    // A step that touched no machine hands back the record it was given (the same JSON
    // as a rebuilt one), so a quiet step builds no 20,000-key object and the caller sees
    // at a glance that no machine changed.
    let untouched = holdsExactlyCandidates(before, candidates);
    if (untouched) {
      for (const name of candidates) {
        if (before[name] !== this.machines.get(name)) {
          untouched = false;
          break;
        }
      }
    }
    let machines: Readonly<Record<string, MachineProgress>> = before;
    if (!untouched) {
      const built: Record<string, MachineProgress> = {};
      for (const name of candidates) built[name] = this.progress(name);
      machines = built;
    }
    return { actions: this.actions, state: { ...this.state, machines, counters: countOnce(candidates, machines) } };
  }
}
