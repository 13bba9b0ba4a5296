/**
 * The remediation policy's scratch pad for one step: the persisted state with the step's
 * changes written over it, every phase change checked against the transition table and
 * turned into an action and an event as it happens, so changes and actions cannot drift.
 */
import { createHash } from 'node:crypto';
import type { RemediationRule } from './rules.ts';
import type { MachineRemediation, RemediationAction, RemediationInput, RemediationMachineView, RemediationResult, RemediationState, StormState } from './types.ts';
import { REMEDIATION_TRANSITIONS } from './types.ts';
import { indexViews, isViewIndex, type ViewIndex } from './view-index.ts';

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

/** The persisted records as a step reads them; computed once per `machines` object (inputs are immutable). */
interface StateIndex {
  readonly names: readonly string[];
  readonly byName: ReadonlyMap<string, MachineRemediation>;
  /** Names in strictly ascending order, as finish() writes them. */
  readonly sorted: boolean;
  /** Names of machines not Idle, in `names` order. */
  readonly busy: readonly string[];
  readonly busySet: ReadonlySet<string>;
}

const indexed = new WeakMap<object, StateIndex>();
/** Per set of view names (ViewIndex.members): the state index it was last compared with, and the names that state has no record of. */
const newcomers = new WeakMap<object, { state: StateIndex; names: readonly string[] }>();

function indexState(machines: Readonly<Record<string, MachineRemediation>>): StateIndex {
  let index = indexed.get(machines);
  if (index === undefined) {
    const names = Object.keys(machines);
    const byName = new Map<string, MachineRemediation>();
    const busy: string[] = [];
    let sorted = true;
    names.forEach((name, i) => {
      const m = machines[name];
      if (m === undefined) return;
      byName.set(name, m);
      if (m.phase !== 'Idle') busy.push(name);
      if (i > 0 && !((names[i - 1] ?? '') < name)) sorted = false;
    });
    index = { names: [...byName.keys()], byName, sorted, busy, busySet: new Set(busy) };
    indexed.set(machines, index);
  }
  return index;
}

/**
 * Machines whose record in `next` is not the very object in `prev` (null: gone from
 * `next`). A step keeps the records it did not change as they are, so these are the
 * machines it moved. The indexes are the ones the next step reads.
 */
export function changedRecords(prev: Readonly<Record<string, MachineRemediation>>, next: Readonly<Record<string, MachineRemediation>>): Map<string, MachineRemediation | null> {
  const out = new Map<string, MachineRemediation | null>();
  if (prev === next) return out;
  const before = indexState(prev).byName;
  const after = indexState(next).byName;
  let kept = 0;
  for (const [name, m] of after) {
    const was = before.get(name);
    if (was !== undefined) kept++;
    if (was !== m) out.set(name, m);
  }
  if (kept !== before.size) for (const name of before.keys()) if (!after.has(name)) out.set(name, null);
  return out;
}

/**
 * The step's machines: the persisted records (read-only) and the records this step
 * wrote over them, so a step that moves a few machines touches a few entries. Their
 * order is the persisted one, then machines seen for the first time.
 */
export class PolicyDraft {
  readonly input: RemediationInput;
  readonly now: number;
  readonly actions: RemediationAction[] = [];
  readonly views: ReadonlyMap<string, RemediationMachineView>;
  readonly index: ViewIndex;
  readonly rules: ReadonlyMap<string, RemediationRule>;
  readonly others: ReadonlySet<string>;
  readonly paused: ReadonlySet<string>;
  storm: StormState;
  readonly #given: StateIndex;
  /** Machines with a view and no record yet, in view order. */
  readonly #added: readonly string[];
  /** Records written by this step (and the new machines' first ones). */
  readonly #changed = new Map<string, MachineRemediation>();

  constructor(input: RemediationInput) {
    this.input = input;
    this.now = input.now;
    this.index = isViewIndex(input.machines) ? input.machines : indexViews(input.machines);
    this.views = this.index.byName;
    this.rules = new Map(input.rules.map((r) => [r.name, r]));
    this.others = new Set(input.budget.unavailableNow);
    this.paused = new Set(input.pause.machines);
    const prev = input.state;
    this.storm = prev?.storm ?? calmStorm(input.now);
    // Machines with a story are kept even when their view is gone, so the budget and
    // the trail survive a machine briefly missing from the fleet view.
    this.#given = indexState(prev?.machines ?? {});
    let seen = newcomers.get(this.index.members);
    if (seen?.state !== this.#given) {
      const given = this.#given.byName;
      seen = { state: this.#given, names: [...this.views.keys()].filter((name) => !given.has(name)) };
      newcomers.set(this.index.members, seen);
    }
    this.#added = seen.names;
    // One record for every newcomer of this step: records are never changed in place.
    const idle = idleMachine(input.now);
    for (const name of this.#added) this.#changed.set(name, idle);
  }

  /** The machine's record, or undefined when it has none. */
  find(name: string): MachineRemediation | undefined {
    return this.#changed.get(name) ?? this.#given.byName.get(name);
  }

  get(name: string): MachineRemediation {
    const m = this.find(name);
    if (m === undefined) throw new RangeError(`no remediation state for machine "${name}"`);
    return m;
  }

  /** Replaces a machine's record as it is (set() is the checked way to change a phase). */
  put(name: string, m: MachineRemediation): void {
    if (this.find(name) === undefined) throw new RangeError(`no remediation state for machine "${name}"`);
    this.#changed.set(name, m);
  }

  /** Every machine and its record, persisted ones first. */
  *entries(): IterableIterator<[string, MachineRemediation]> {
    for (const name of this.#given.names) yield [name, this.get(name)];
    for (const name of this.#added) yield [name, this.get(name)];
  }

  /** Machines not Idle now, in entries() order. */
  busy(): string[] {
    const given = this.#given;
    // Only records this step wrote can differ from the persisted ones; unless one of them
    // left Idle, the persisted busy ones (still busy) are the answer, in the same order.
    for (const [name, m] of this.#changed) {
      if (m.phase !== 'Idle' && !given.busySet.has(name)) return [...this.entries()].filter(([, x]) => x.phase !== 'Idle').map(([n]) => n);
    }
    return given.busy.filter((name) => this.get(name).phase !== 'Idle');
  }

  /** Every machine whose record may not be Idle (the persisted busy ones, and the ones this step wrote), in no particular order. */
  *#maybeBusy(): IterableIterator<[string, MachineRemediation]> {
    for (const name of this.#given.busy) if (!this.#changed.has(name)) yield [name, this.get(name)];
    yield* this.#changed;
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
    this.#changed.set(name, { ...m, ...patch, phase, since: phase !== m.phase ? this.now : m.since, waiting: patch.waiting ?? null });
    if (moved) {
      this.actions.push({ kind: 'setMachine', machine: name, phase, reason: patch.reason, message: patch.message });
      this.event(warning ? 'Warning' : 'Normal', `machine/${name}`, patch.reason, patch.message, patch.rule ?? m.rule, patch.step ?? m.step);
    }
  }

  /** Records why nothing starts on a machine; the event fires when the reason changes. */
  wait(name: string, reason: string, message: string, rule: string | null): void {
    const m = this.get(name);
    if (m.waiting === reason) return;
    this.#changed.set(name, { ...m, waiting: reason });
    this.event('Normal', `machine/${name}`, reason, message, rule, null);
  }

  history(name: string, rule: string, step: number, action: MachineRemediation['history'][number]['action'], result: string): void {
    const m = this.get(name);
    this.#changed.set(name, { ...m, history: [...m.history, { at: this.now, rule, step, action, result }].slice(-MAX_HISTORY) });
  }

  /** Machines remediation makes unavailable now: remediating, or cordoned and not restored. */
  ours(): Set<string> {
    const out = new Set<string>();
    for (const [name, m] of this.#maybeBusy()) if (m.phase === 'Running' || (m.phase === 'NeedsHuman' && m.cordoned)) out.add(name);
    return out;
  }

  inFlight(): number {
    let n = 0;
    for (const [, m] of this.#maybeBusy()) if (m.phase === 'Running') n++;
    return n;
  }

  finish(): RemediationResult {
    const prev = this.input.state?.machines;
    // A step that wrote no record and met no new machine hands back the very record it
    // was given (what the loop below would build again; callers can tell by identity),
    // provided it is in order and every machine in it still has a view.
    if (prev !== undefined && this.#changed.size === 0 && this.#given.sorted && this.views.size === this.#given.names.length) {
      return { actions: this.actions, state: { machines: prev, storm: this.storm } };
    }
    const machines: Record<string, MachineRemediation> = {};
    for (const name of [...this.#given.names, ...this.#added].sort()) {
      const m = this.get(name);
      // Forget machines that left the fleet once nothing about them matters any more.
      if (!this.views.has(name) && m.phase === 'Idle' && m.cooldownUntil <= this.now) continue;
      machines[name] = m;
    }
    const state: RemediationState = { machines, storm: this.storm };
    return { actions: this.actions, state };
  }
}
