/**
 * The policy's machine views, kept from the fleet view and the stored fault states with
 * work proportional to what changed, not to the fleet (issue 15, item 3): a machine is
 * looked at again only when the fleet view said it changed (report, liveness, pins,
 * revocation: touched()), its connection came or went (touched() too), its faults wait
 * on a clock that came due (a deadline queue, nextFaultChangeAt), its derived fault state
 * is not yet stored, or the cluster's desired versions moved (then all are). Its view
 * object is reused while nothing it shows changed, and the policy reads the views through
 * a LiveViewIndex updated view by view (view-index.ts). No I/O: what is kept here is
 * derived from the inputs, and a restart rebuilds it. The property test
 * (machine-views.test.ts) holds it to a full scan that derives every machine each tick.
 */
import type { NodeReport } from '@nodekeeper/protocol';
import { DeadlineHeap } from '../fleet/deadline-heap.ts';
import type { LivenessState, MachineRecord } from '../model/machine.ts';
import { deriveFaults, nextFaultChangeAt, type Fault, type FaultSettings, type FaultState, type FaultType } from './faults.ts';
import type { RemediationMachineView } from './types.ts';
import { LiveViewIndex, type ViewIndex } from './view-index.ts';

/** The coordinator's connection to an agent: live, lost since our start, or none yet since our start. */
export type AgentContact = 'connected' | 'lost' | 'none';

/** What the views read of the fleet (the FleetView). */
export interface FleetSource {
  get(name: string): MachineRecord | undefined;
  values(): Iterable<MachineRecord>;
  contact(name: string): AgentContact;
}

/** One machine between ticks. */
interface Slot {
  /** The stored fault state, undefined when none is. */
  saved: FaultState | undefined;
  /** The last derivation's input... */
  report: NodeReport | null;
  livenessState: LivenessState;
  livenessSince: number;
  /** ...and its output (null before the first). */
  state: FaultState | null;
  faults: Fault[];
  /** nextFaultChangeAt(state): until then, deriving again from the same input gives `state` itself. */
  nextAt: number;
  view: RemediationMachineView | null;
  /** What `view` was built from besides the derivation. */
  overrides: MachineRecord['packageOverrides'];
  defaults: string;
}

/** One tick's views, and the fault states to store (null: forget the machine's). */
export interface ViewUpdate {
  /** Every machine not revoked: the live index (read it before the next update()). */
  readonly views: ViewIndex;
  readonly faultChanges: ReadonlyMap<string, FaultState | null>;
  /** Machines whose faults() list was replaced by this update (what the watch hub rebuilds). */
  readonly faultsMoved: ReadonlySet<string>;
}

/** Builds the policy's machine views tick after tick; see the file's comment. */
export class MachineViews {
  readonly #settings: FaultSettings;
  readonly #slots = new Map<string, Slot>();
  /** What the store holds: machine -> fault state. Changed by stored() only. */
  readonly #saved: Map<string, FaultState>;
  readonly #index = new LiveViewIndex();
  /** Machines to look at on the next update() (touched). */
  #dirty = new Set<string>();
  /** Look at every machine on the next update(): the first one, and when the desired versions move. */
  #all = true;
  /** Machines by the instant their faults' clock comes due. */
  readonly #due = new DeadlineHeap<string>();
  /** Machines whose fault state to store (or forget) differs from the stored one: their save has not committed. */
  readonly #unsaved = new Set<string>();
  #defaultsKey: string | null = null;
  #defaultDesired: { key: string; value: Record<string, string> } | null = null;

  /** `saved`: the fault states in the store now. */
  constructor(settings: FaultSettings, saved: ReadonlyMap<string, FaultState>) {
    this.#settings = settings;
    this.#saved = shareFaults(saved);
  }

  /** The stored fault states (live: changes once stored() is told). */
  get saved(): ReadonlyMap<string, FaultState> {
    return this.#saved;
  }

  /** The machine's faults as of the last update ([] before its first). */
  faults(machine: string): readonly Fault[] {
    return this.#slots.get(machine)?.faults ?? [];
  }

  /** The machine may have changed in the fleet view (its record, report, liveness or connection). */
  touched(name: string): void {
    if (!this.#all) this.#dirty.add(name);
  }

  /**
   * This tick's views of the machines not revoked, their faults derived on `now` from the
   * stored fault states, and the fault states that differ from the stored ones (machines
   * not in the fleet any more, or revoked, lose theirs). Looks only at the machines that
   * may have changed (see the file's comment).
   */
  update(fleet: FleetSource, defaults: ReadonlyArray<{ name: string; version: string }>, now: number): ViewUpdate {
    const defaultsKey = defaults.map((p) => `${p.name}=${p.version}`).join('\n');
    if (defaultsKey !== this.#defaultsKey) {
      this.#defaultsKey = defaultsKey;
      this.#all = true;
    }
    const tick: Tick = { fleet, defaults, defaultsKey, now, faultChanges: new Map(), faultsMoved: new Set() };
    const names = this.#dirty;
    this.#dirty = new Set();
    for (const name of this.#unsaved) names.add(name);
    if (this.#all) {
      this.#all = false;
      const seen = new Set<string>();
      for (const m of fleet.values()) {
        seen.add(m.name);
        names.delete(m.name);
        this.#refresh(m.name, m, tick);
      }
      // Views and stored states of machines the fleet no longer has.
      for (const name of [...this.#index.byName.keys(), ...this.#saved.keys()]) if (!seen.has(name)) names.add(name);
    } else {
      for (const name of this.#due.popDue(now)) names.add(name);
    }
    for (const name of names) this.#refresh(name, fleet.get(name), tick);
    return { views: this.#index, faultChanges: tick.faultChanges, faultsMoved: tick.faultsMoved };
  }

  /** The store now holds these fault states (call once their save committed). */
  stored(changes: ReadonlyMap<string, FaultState | null>): void {
    for (const [name, state] of changes) {
      if (state === null) this.#saved.delete(name);
      else this.#saved.set(name, state);
      const c = this.#slots.get(name);
      if (c !== undefined) c.saved = state ?? undefined;
      // Stored what the last update derived; anything else (a machine forgotten while it
      // is still in the fleet) is derived again on the next update.
      if ((this.#index.byName.has(name) ? c?.state ?? null : null) === state) this.#unsaved.delete(name);
      else this.#unsaved.add(name);
    }
  }

  /** One machine looked at again: `m` undefined when the fleet no longer has it. */
  #refresh(name: string, m: MachineRecord | undefined, tick: Tick): void {
    if (m === undefined || m.revokedAt !== null) {
      // Gone or revoked: no view; its stored fault state is forgotten. Its last faults
      // stay readable (faults()) as before.
      this.#index.remove(name);
      this.#due.delete(name);
      const c = this.#slots.get(name);
      if (c !== undefined) c.view = null;
      if (this.#saved.has(name)) {
        tick.faultChanges.set(name, null);
        this.#unsaved.add(name);
      } else {
        this.#unsaved.delete(name);
      }
      return;
    }
    const c = this.#slot(name);
    const before = c.faults;
    const state = this.#derive(m, c, tick.now);
    if (c.faults !== before) tick.faultsMoved.add(name);
    if (state !== c.saved) {
      tick.faultChanges.set(name, state);
      this.#unsaved.add(name);
    } else {
      this.#unsaved.delete(name);
    }
    if (Number.isFinite(c.nextAt)) this.#due.set(name, c.nextAt);
    else this.#due.delete(name);
    this.#index.put(this.#view(m, c, tick.fleet.contact(name), tick.defaults, tick.defaultsKey));
  }

  #slot(name: string): Slot {
    let c = this.#slots.get(name);
    if (c === undefined) {
      c = { saved: this.#saved.get(name), report: null, livenessState: 'Pending', livenessSince: 0, state: null, faults: [], nextAt: -Infinity, view: null, overrides: undefined, defaults: '' };
      this.#slots.set(name, c);
    }
    return c;
  }

  /**
   * The machine's fault state now, derived from the stored one; not derived again when
   * the last derivation was on the same input, its clock is not due, and it is what the
   * store holds (so a state whose save never committed is derived again, from what did).
   */
  #derive(m: MachineRecord, c: Slot, now: number): FaultState {
    const sameInput = c.report === m.report && c.livenessState === m.liveness.state && c.livenessSince === m.liveness.since;
    if (sameInput && now < c.nextAt && c.state !== null && c.state === c.saved) return c.saved;
    const { faults, state } = deriveFaults(c.saved ?? null, { report: m.report, liveness: m.liveness }, now, this.#settings);
    // The same faults keep the list the view holds, and so the view: a new report that
    // moves no fault (most do not: volatile fields) changes nothing the policy or the
    // watch sees.
    if (!(state === c.state && c.report === m.report && c.livenessState === m.liveness.state) && !sameFaults(c.faults, faults)) {
      c.faults = faults;
      c.view = null;
    }
    c.report = m.report;
    c.livenessState = m.liveness.state;
    c.livenessSince = m.liveness.since;
    c.state = state;
    c.nextAt = nextFaultChangeAt(state, now, this.#settings);
    return state;
  }

  /** Machines with no pins share one desired-versions object (it is the defaults). */
  #desired(m: MachineRecord, defaults: ReadonlyArray<{ name: string; version: string }>, defaultsKey: string): Record<string, string> {
    if (m.packageOverrides !== undefined && Object.keys(m.packageOverrides).length > 0) return desiredVersions(m, defaults);
    if (this.#defaultDesired?.key !== defaultsKey) this.#defaultDesired = { key: defaultsKey, value: Object.freeze(desiredVersions(m, defaults)) };
    return this.#defaultDesired.value;
  }

  /** The policy's view of the machine; the one built last time while nothing it shows changed. */
  #view(m: MachineRecord, c: Slot, contact: AgentContact, defaults: ReadonlyArray<{ name: string; version: string }>, defaultsKey: string): RemediationMachineView {
    const v = c.view;
    const connected = contact === 'connected';
    const contactLost = contact === 'lost';
    if (
      v !== null && v.zone === m.zone && v.connected === connected && v.contactLost === contactLost && v.liveness.state === m.liveness.state &&
      v.liveness.since === m.liveness.since && v.healthy === isHealthy(m) && c.overrides === m.packageOverrides && c.defaults === defaultsKey
    ) return v;
    c.view = {
      name: m.name,
      zone: m.zone,
      liveness: { state: m.liveness.state, since: m.liveness.since },
      connected,
      contactLost,
      healthy: isHealthy(m),
      faults: c.faults,
      desired: this.#desired(m, defaults, defaultsKey),
    };
    c.overrides = m.packageOverrides;
    c.defaults = defaultsKey;
    return c.view;
  }
}

/** What one update() is working with. */
interface Tick {
  readonly fleet: FleetSource;
  readonly defaults: ReadonlyArray<{ name: string; version: string }>;
  readonly defaultsKey: string;
  readonly now: number;
  readonly faultChanges: Map<string, FaultState | null>;
  readonly faultsMoved: Set<string>;
}

/** Whether two derivations' faults say the same, field by field (they are small lists). */
function sameFaults(a: readonly Fault[], b: readonly Fault[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.type !== y.type || x.status !== y.status || x.since !== y.since || x.lastTransitionTime !== y.lastTransitionTime || x.goodSince !== y.goodSince || x.reason !== y.reason || x.message !== y.message) return false;
  }
  return true;
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

/**
 * The stored fault states with equal faults made one object: machines first seen in the
 * same tick carry the same Clear faults, and the store gives each its own parsed copy
 * (eight faults, about 1 KB a machine) that would otherwise stay for good.
 */
function shareFaults(saved: ReadonlyMap<string, FaultState>): Map<string, FaultState> {
  const seen = new Map<string, Fault>();
  const out = new Map<string, FaultState>();
  for (const [name, state] of saved) {
    const faults = {} as Record<FaultType, Fault>;
    for (const [type, f] of Object.entries(state.faults) as Array<[FaultType, Fault]>) {
      const key = JSON.stringify(f);
      const hit = seen.get(key);
      if (hit === undefined) seen.set(key, f);
      faults[type] = hit ?? f;
    }
    out.set(name, { faults, restarts: state.restarts });
  }
  return out;
}
