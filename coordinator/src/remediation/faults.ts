/**
 * Fault conditions of one machine, derived (times in ms, durations in seconds) on the coordinator's clock from what its
 * agent reported and from its liveness (never from connection events: a reconnecting
 * agent does not make a fault go away, only a report that says healthy does). Pure.
 *
 * Each fault is a small state machine with hysteresis, one transition table:
 *   Clear     the facts say healthy (or never said otherwise)
 *   Pending   the facts say faulty, for less than `forSeconds`
 *   Active    the facts have said faulty for `forSeconds` or more
 *   Clearing  an Active fault whose facts say healthy, for less than `clearSeconds`
 * Facts that are not known (no report yet, the agent is silent, no service manager)
 * move nothing: a fault is neither raised nor cleared on guesses.
 */
import type { NodeReport, ServiceState } from '@nodekeeper/protocol';
import type { Liveness } from '../model/machine.ts';

// The fault types are the API contract's (@nodekeeper/api): a rule names one, and nkctl shows them.
export { FAULT_TYPES, type FaultType } from '@nodekeeper/api';
import { FAULT_TYPES, type FaultType } from '@nodekeeper/api';

export const FAULT_STATUSES = ['Clear', 'Pending', 'Active', 'Clearing'] as const;
export type FaultStatusName = (typeof FAULT_STATUSES)[number];

/** Every move a fault may make; anything else is a bug. */
export const FAULT_TRANSITIONS: Readonly<Record<FaultStatusName, readonly FaultStatusName[]>> = {
  Clear: ['Pending', 'Active'],
  Pending: ['Clear', 'Active'],
  Active: ['Clearing', 'Clear'],
  Clearing: ['Active', 'Clear'],
};

/** One fault as shown on the Machine's status and read by the policy. */
export interface Fault {
  readonly type: FaultType;
  readonly status: FaultStatusName;
  /** Clear: when it cleared. Otherwise: when the facts first said faulty in this episode. */
  readonly since: number;
  /** When `status` last changed. */
  readonly lastTransitionTime: number;
  /** Start of the current run of healthy facts while Clearing, else null. */
  readonly goodSince: number | null;
  readonly reason: string;
  readonly message: string;
}

/** One sample of a service's restart counter (kept only when the count changes). */
export interface RestartSample {
  readonly at: number;
  readonly count: number;
}

/** What deriveFaults persists per machine: faults and a short restart history. */
export interface FaultState {
  readonly faults: Readonly<Record<FaultType, Fault>>;
  readonly restarts: { readonly kubelet: readonly RestartSample[]; readonly runtime: readonly RestartSample[] };
}

export interface FaultTiming {
  readonly forSeconds: number;
  readonly clearSeconds: number;
}

export interface FaultSettings {
  readonly timing: Readonly<Record<FaultType, FaultTiming>>;
  /** "Frequent" restarts: at least `count` restarts within `windowSeconds`. */
  readonly restarts: { readonly count: number; readonly windowSeconds: number };
}

/**
 * Defaults: a fault must hold about two report intervals before it counts, so one bad
 * probe does not raise it; it clears after a minute of health, so a kubelet that comes
 * up and falls over again is still one episode. Restart faults need no hold: their
 * window is the hold. AgentSilent holds 2 minutes on top of liveness' own 40 s grace.
 */
export const DEFAULT_FAULT_SETTINGS: FaultSettings = Object.freeze({
  timing: Object.freeze({
    RuntimeNotReady: { forSeconds: 30, clearSeconds: 60 },
    FrequentRuntimeRestart: { forSeconds: 0, clearSeconds: 300 },
    KubeletNotRunning: { forSeconds: 30, clearSeconds: 60 },
    KubeletUnhealthy: { forSeconds: 30, clearSeconds: 60 },
    FrequentKubeletRestart: { forSeconds: 0, clearSeconds: 300 },
    NetworkNotReady: { forSeconds: 30, clearSeconds: 60 },
    DiskPressure: { forSeconds: 60, clearSeconds: 300 },
    AgentSilent: { forSeconds: 120, clearSeconds: 30 },
  }),
  restarts: Object.freeze({ count: 5, windowSeconds: 600 }),
});

/** Restart samples kept per service: enough for `count` restarts in the window, bounded. */
export const MAX_RESTART_SAMPLES = 32;

/** What one derivation looks at for one machine. */
export interface FaultInput {
  readonly report: NodeReport | null;
  readonly liveness: Pick<Liveness, 'state' | 'since'>;
}

type Fact = { readonly bad: true; readonly reason: string; readonly message: string } | { readonly bad: false } | null;

/**
 * A fresh state: every fault Clear since `now`. Frozen, and the same object for the same
 * `now`: every machine first seen in one tick shares it (and its faults, until each
 * changes), instead of holding eight faults of its own (about 1 KB a machine).
 */
export function initialFaultState(now: number): FaultState {
  if (lastInitial?.now === now) return lastInitial.state;
  const faults = faultRecord((type) => Object.freeze({ type, status: 'Clear', since: now, lastTransitionTime: now, goodSince: null, reason: 'Healthy', message: '' }));
  const state: FaultState = Object.freeze({ faults: Object.freeze(faults), restarts: Object.freeze({ kubelet: Object.freeze([]), runtime: Object.freeze([]) }) });
  lastInitial = { now, state };
  return state;
}
let lastInitial: { now: number; state: FaultState } | null = null;

/**
 * A machine's faults by type, every key named in one literal (FAULT_TYPES' order): an
 * object filled key by key keeps the keys past its first four in a property array on the
 * side (64 bytes more a machine).
 */
function faultRecord(of: (type: FaultType) => Fault): Record<FaultType, Fault> {
  return {
    RuntimeNotReady: of('RuntimeNotReady'),
    FrequentRuntimeRestart: of('FrequentRuntimeRestart'),
    KubeletNotRunning: of('KubeletNotRunning'),
    KubeletUnhealthy: of('KubeletUnhealthy'),
    FrequentKubeletRestart: of('FrequentKubeletRestart'),
    NetworkNotReady: of('NetworkNotReady'),
    DiskPressure: of('DiskPressure'),
    AgentSilent: of('AgentSilent'),
  };
}

/**
 * The faults of one machine now, and the state to persist for the next call. `prev`
 * null means first sight (or a lost state): everything starts Clear.
 */
export function deriveFaults(prev: FaultState | null, view: FaultInput, now: number, settings: FaultSettings = DEFAULT_FAULT_SETTINGS): { faults: Fault[]; state: FaultState } {
  if (!Number.isFinite(now)) throw new RangeError(`now must be a finite number, got ${now}`);
  const start = prev ?? initialFaultState(now);
  // A silent agent's last report is history, not fact (as in fleet/conditions.ts).
  const report = view.liveness.state === 'Unknown' ? null : view.report;
  const restarts = {
    kubelet: recordRestarts(start.restarts.kubelet, report?.kubelet.service ?? null, now, settings.restarts.windowSeconds),
    runtime: recordRestarts(start.restarts.runtime, report?.runtime.service ?? null, now, settings.restarts.windowSeconds),
  };
  const facts = observe(report, view.liveness, restarts, now, settings);
  const faults = faultRecord((type) => step(start.faults[type], facts[type], now, settings.timing[type]));
  let same = prev !== null && restarts.kubelet === start.restarts.kubelet && restarts.runtime === start.restarts.runtime;
  for (const type of FAULT_TYPES) same &&= faults[type] === start.faults[type];
  // Nothing moved: the very same state, so a caller can tell "unchanged" by identity.
  return { faults: FAULT_TYPES.map((t) => faults[t]), state: same ? start : { faults, restarts } };
}

/**
 * For a state just derived at `derivedAt`: the first instant at which deriving again from
 * it, with the same input (report and liveness), may give another state; before it, a
 * derivation gives this very state, so a caller may skip it (the remediation views queue
 * each machine at this instant). What waits on a clock: a Pending fault's hold, a Clearing
 * fault's clear time, a restart sample leaving its window (the first sample is only the
 * window's baseline: it moves nothing). A hold or clear time already over at `derivedAt`
 * waits on no clock: the facts were unknown then (known, the derivation would have moved
 * the fault), and stay so while the input does. Infinity: only a new input changes it.
 */
export function nextFaultChangeAt(state: FaultState, derivedAt: number, settings: FaultSettings = DEFAULT_FAULT_SETTINGS): number {
  let at = Infinity;
  const windowMs = settings.restarts.windowSeconds * 1000;
  for (const samples of [state.restarts.kubelet, state.restarts.runtime]) {
    for (let i = 1; i < samples.length; i++) at = Math.min(at, (samples[i] as RestartSample).at + windowMs);
  }
  for (const type of FAULT_TYPES) {
    const f = state.faults[type];
    const t = settings.timing[type];
    const due = f.status === 'Pending' ? f.since + t.forSeconds * 1000 : f.status === 'Clearing' && f.goodSince !== null ? f.goodSince + t.clearSeconds * 1000 : Infinity;
    if (due > derivedAt) at = Math.min(at, due);
  }
  return at;
}

function step(f: Fault, fact: Fact, now: number, t: FaultTiming): Fault {
  if (fact === null) return f;
  const to = (status: FaultStatusName, patch: Partial<Fault>): Fault => {
    if (status !== f.status && !FAULT_TRANSITIONS[f.status].includes(status)) throw new Error(`fault ${f.type}: no transition ${f.status} -> ${status}`);
    const next: Fault = { ...f, ...patch, status, lastTransitionTime: status === f.status ? f.lastTransitionTime : now };
    return sameFault(next, f) ? f : next;
  };
  if (fact.bad) {
    const text = { reason: fact.reason, message: fact.message, goodSince: null };
    if (f.status === 'Clear') return to(t.forSeconds <= 0 ? 'Active' : 'Pending', { ...text, since: now });
    if (f.status === 'Pending') return to(now - f.since >= t.forSeconds * 1000 ? 'Active' : 'Pending', text);
    return to('Active', text); // Active stays, Clearing falls back: the episode goes on
  }
  if (f.status === 'Pending') return to('Clear', { since: now, goodSince: null, reason: 'Healthy', message: 'recovered before the fault held' });
  if (f.status === 'Active') return clearingOrClear(to, now, now, t);
  if (f.status === 'Clearing') return clearingOrClear(to, f.goodSince ?? now, now, t);
  return f;
}

function sameFault(a: Fault, b: Fault): boolean {
  return a.status === b.status && a.since === b.since && a.lastTransitionTime === b.lastTransitionTime && a.goodSince === b.goodSince && a.reason === b.reason && a.message === b.message;
}

function clearingOrClear(to: (s: FaultStatusName, p: Partial<Fault>) => Fault, goodSince: number, now: number, t: FaultTiming): Fault {
  if (now - goodSince >= t.clearSeconds * 1000) return to('Clear', { since: now, goodSince: null, reason: 'Healthy', message: `healthy for ${t.clearSeconds}s` });
  return to('Clearing', { goodSince, reason: 'Recovering', message: `healthy since ${goodSince}; clears after ${t.clearSeconds}s` });
}

function observe(report: NodeReport | null, liveness: FaultInput['liveness'], restarts: FaultState['restarts'], now: number, s: FaultSettings): Record<FaultType, Fact> {
  const silent: Fact = liveness.state === 'Unknown' ? { bad: true, reason: 'AgentSilent', message: `no message from the agent since liveness went Unknown at ${liveness.since}` } : liveness.state === 'Pending' ? null : { bad: false };
  if (report === null) {
    return { RuntimeNotReady: null, FrequentRuntimeRestart: null, KubeletNotRunning: null, KubeletUnhealthy: null, FrequentKubeletRestart: null, NetworkNotReady: null, DiskPressure: null, AgentSilent: silent };
  }
  return {
    RuntimeNotReady: runtimeFact(report),
    FrequentRuntimeRestart: restartFact('runtime', report.runtime.service, restarts.runtime, now, s),
    KubeletNotRunning: serviceFact(report.kubelet.service),
    KubeletUnhealthy: healthFact(report.kubelet.health, report.kubelet.reason, `kubelet: ${report.kubelet.message}`),
    FrequentKubeletRestart: restartFact('kubelet', report.kubelet.service, restarts.kubelet, now, s),
    NetworkNotReady: networkFact(report),
    DiskPressure: report.host.health === 'unknown' ? null : report.host.pressure.disk ? { bad: true, reason: 'HostHasDiskPressure', message: report.host.message } : { bad: false },
    AgentSilent: silent,
  };
}

function healthFact(health: string, reason: string, message: string): Fact {
  if (health === 'unhealthy') return { bad: true, reason, message };
  return health === 'healthy' ? { bad: false } : null;
}

/** Only a service manager's word counts: `manager: none` or no state says nothing. */
function serviceFact(svc: ServiceState | null): Fact {
  if (svc === null || svc.manager !== 'systemd' || svc.activeState === null) return null;
  if (svc.activeState === 'inactive' || svc.activeState === 'failed') return { bad: true, reason: svc.activeState === 'failed' ? 'ServiceFailed' : 'ServiceInactive', message: `${svc.unit} is ${svc.activeState}${svc.subState === null ? '' : ` (${svc.subState})`}` };
  return svc.activeState === 'active' ? { bad: false } : null; // activating, deactivating: wait
}

function runtimeFact(report: NodeReport): Fact {
  const r = report.runtime;
  const cond = r.conditions.find((c) => c.type === 'RuntimeReady');
  if (r.health === 'unhealthy') return { bad: true, reason: r.reason, message: `runtime: ${r.message}` };
  if (cond?.status === false) return { bad: true, reason: cond.reason || 'RuntimeNotReady', message: `runtime RuntimeReady=false: ${cond.message}` };
  return r.health === 'healthy' ? { bad: false } : null;
}

/** CNI probe reasons (NoNetworkConfig, InvalidNetworkConfig, PluginNotFound, ...) or the runtime's NetworkReady. */
function networkFact(report: NodeReport): Fact {
  const cni = report.cni;
  const cond = report.runtime.conditions.find((c) => c.type === 'NetworkReady');
  if (cni.health === 'unhealthy') return { bad: true, reason: cni.reason, message: `cni: ${cni.message}` };
  if (cond?.status === false) return { bad: true, reason: cond.reason || 'NetworkPluginNotReady', message: `runtime NetworkReady=false: ${cond.message}` };
  return cni.health === 'healthy' ? { bad: false } : null;
}

/**
 * Appends a sample when the counter changed. Samples older than the window are dropped
 * except the newest of them, which is the baseline the window's restarts count from.
 * Returns `prev` itself when nothing changed.
 */
export function recordRestarts(prev: readonly RestartSample[], svc: ServiceState | null, now: number, windowSeconds: number): readonly RestartSample[] {
  const count = svc?.restarts ?? null;
  let out = [...prev];
  if (count !== null && out.at(-1)?.count !== count) out.push({ at: now, count });
  const cutoff = now - windowSeconds * 1000;
  const firstInside = out.findIndex((s) => s.at >= cutoff);
  if (firstInside > 1) out = out.slice(firstInside - 1);
  else if (firstInside === -1 && out.length > 1) out = out.slice(-1);
  out = out.slice(-MAX_RESTART_SAMPLES);
  return out.length === prev.length && out.every((s, i) => s === prev[i]) ? prev : out;
}

/**
 * Restarts seen within the window. A counter that went down was reset (the node
 * rebooted, or systemd was reloaded): its new value is the restarts since the reset.
 */
export function restartsInWindow(samples: readonly RestartSample[], now: number, windowSeconds: number): number {
  const cutoff = now - windowSeconds * 1000;
  let n = 0;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (a === undefined || b === undefined || b.at < cutoff) continue;
    n += b.count >= a.count ? b.count - a.count : b.count;
  }
  return n;
}

function restartFact(what: string, svc: ServiceState | null, samples: readonly RestartSample[], now: number, s: FaultSettings): Fact {
  if (svc?.restarts === null || svc?.restarts === undefined) return null;
  const n = restartsInWindow(samples, now, s.restarts.windowSeconds);
  if (n >= s.restarts.count) return { bad: true, reason: 'CrashLooping', message: `${what} (${svc.unit}) restarted ${n} times in ${s.restarts.windowSeconds}s` };
  return { bad: false };
}
