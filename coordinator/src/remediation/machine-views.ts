/**
 * The policy's machine views, built each tick from the fleet view and the stored fault
 * states, without redoing what did not change: a machine whose report and liveness did
 * not change and whose faults wait on no clock (isSettled) is not derived again, and its
 * view object is reused; while no view changed, the very same views array is handed out
 * (the policy then reuses what it worked out of it, see view-index.ts). No I/O: what
 * is kept here is derived from the inputs, and a restart rebuilds it.
 */
import type { NodeReport } from '@nodekeeper/protocol';
import type { LivenessState, MachineRecord } from '../model/machine.ts';
import { deriveFaults, isSettled, type Fault, type FaultSettings, type FaultState, type FaultType } from './faults.ts';
import type { RemediationMachineView } from './types.ts';

/** The coordinator's connection to an agent: live, lost since our start, or none yet since our start. */
export type AgentContact = 'connected' | 'lost' | 'none';

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
  /** isSettled(state): deriving again from the same input gives `state` itself. */
  settled: boolean;
  view: RemediationMachineView | null;
  /** What `view` was built from besides the derivation. */
  overrides: MachineRecord['packageOverrides'];
  defaults: string;
}

/** One tick's views, and the fault states to store (null: forget the machine's). */
export interface Scan {
  readonly views: readonly RemediationMachineView[];
  readonly faultChanges: ReadonlyMap<string, FaultState | null>;
  /** Machines whose faults() list was replaced by this scan (what the watch hub rebuilds). */
  readonly faultsMoved: ReadonlySet<string>;
}

/** Builds the policy's machine views tick after tick; see the file's comment. */
export class MachineViews {
  readonly #settings: FaultSettings;
  readonly #slots = new Map<string, Slot>();
  /** What the store holds: machine -> fault state. Changed by stored() only. */
  readonly #saved: Map<string, FaultState>;
  #views: readonly RemediationMachineView[] = [];
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

  /** The machine's faults as of the last scan ([] before its first). */
  faults(machine: string): readonly Fault[] {
    return this.#slots.get(machine)?.faults ?? [];
  }

  /**
   * This tick's views of the machines not revoked, their faults derived on `now` from
   * the stored fault states, and the fault states that differ from the stored ones
   * (machines not in `machines` any more lose theirs). The order is `machines`'; the
   * policy does not depend on it.
   */
  scan(machines: Iterable<MachineRecord>, contact: (name: string) => AgentContact, defaults: ReadonlyArray<{ name: string; version: string }>, now: number): Scan {
    const defaultsKey = defaults.map((p) => `${p.name}=${p.version}`).join('\n');
    const faultChanges = new Map<string, FaultState | null>();
    const faultsMoved = new Set<string>();
    const last = this.#views;
    let fresh: RemediationMachineView[] | null = null;
    let stored = 0;
    let i = 0;
    for (const m of machines) {
      if (m.revokedAt !== null) continue;
      const c = this.#slot(m.name);
      if (c.saved !== undefined) stored++;
      const before = c.faults;
      const state = this.#derive(m, c, now);
      if (c.faults !== before) faultsMoved.add(m.name);
      if (state !== c.saved) faultChanges.set(m.name, state);
      const v = this.#view(m, c, contact(m.name), defaults, defaultsKey);
      // Copied only from the first view that differs from last tick's.
      if (fresh === null && last[i] !== v) fresh = last.slice(0, i);
      fresh?.push(v);
      i++;
    }
    if (fresh === null && i !== last.length) fresh = last.slice(0, i);
    this.#views = fresh ?? last;
    if (stored !== this.#saved.size) {
      // Machines gone from the view (revoked): their fault states are forgotten.
      const seen = new Set(this.#views.map((v) => v.name));
      for (const name of this.#saved.keys()) if (!seen.has(name)) faultChanges.set(name, null);
    }
    return { views: this.#views, faultChanges, faultsMoved };
  }

  /** The store now holds these fault states (call once their save committed). */
  stored(changes: ReadonlyMap<string, FaultState | null>): void {
    for (const [name, state] of changes) {
      if (state === null) this.#saved.delete(name);
      else this.#saved.set(name, state);
      const c = this.#slots.get(name);
      if (c !== undefined) c.saved = state ?? undefined;
    }
  }

  #slot(name: string): Slot {
    let c = this.#slots.get(name);
    if (c === undefined) {
      c = { saved: this.#saved.get(name), report: null, livenessState: 'Pending', livenessSince: 0, state: null, faults: [], settled: false, view: null, overrides: undefined, defaults: '' };
      this.#slots.set(name, c);
    }
    return c;
  }

  /**
   * The machine's fault state now, derived from the stored one; not derived again when
   * the last derivation is settled on the same input and is what the store holds (so a
   * state whose save never committed is derived again, from what did).
   */
  #derive(m: MachineRecord, c: Slot, now: number): FaultState {
    const sameInput = c.report === m.report && c.livenessState === m.liveness.state && c.livenessSince === m.liveness.since;
    if (sameInput && c.settled && c.state !== null && c.state === c.saved) return c.saved;
    const { faults, state } = deriveFaults(c.saved ?? null, { report: m.report, liveness: m.liveness }, now, this.#settings);
    // The same faults keep the list the view holds, and so the view: a new report that
    // moves no fault (most do not: volatile fields) changes nothing the policy or the
    // watch sees, and the views array, with its index (view-index.ts), is reused.
    if (!(state === c.state && c.report === m.report && c.livenessState === m.liveness.state) && !sameFaults(c.faults, faults)) {
      c.faults = faults;
      c.view = null;
    }
    c.report = m.report;
    c.livenessState = m.liveness.state;
    c.livenessSince = m.liveness.since;
    c.state = state;
    c.settled = isSettled(state);
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
