/**
 * Rollouts for the fixture server (test support, not the coordinator's controller): a
 * small deterministic simulation that moves one step per GET, so `rollout status -w`
 * can be tested against a real HTTP server. Canaries first, then cumulative batches;
 * versions listed as failing fail their health check, and `onFailure` pauses or rolls
 * back. Transitions an operator asks for follow the table in docs/nkctl.md.
 */
import type { Event as EventObject, RolloutAction, RolloutSpecInput, Rollout as RolloutObject } from '@nodekeeper/api';
import type { MachineObject } from '../api/objects.ts';

/** The fixture's spec: what nkctl sends, with selector and strategy always given. */
export type RolloutSpec = RolloutSpecInput & { readonly selector: NonNullable<RolloutSpecInput['selector']>; readonly strategy: NonNullable<RolloutSpecInput['strategy']> };
type Entry = { name: string; phase: string; package: string; fromVersion: string | null; toVersion: string; step: string | null; failedStep?: string | null; reason: string; message: string; since: string | null };

export interface FixtureRollout {
  readonly name: string;
  readonly created: string;
  readonly spec: RolloutSpec;
  /** Moves when an apply changes the spec (absent: 1). */
  readonly resourceVersion?: number;
  phase: string;
  reason: string;
  message: string;
  continueWith: string | null;
  batch: { index: number; total: number };
  entries: Entry[];
  startedTime: string | null;
  completedTime: string | null;
  /** Where `resume` returns to. */
  resumeTo: string | null;
  /** Failures already accepted by a resume: only new ones count against maxFailures. */
  acceptedFailures: number;
  events: EventObject[];
}

/** Which phases allow which operator actions (mirrors the coordinator's table). */
export const ALLOWED: Readonly<Record<string, readonly RolloutAction[]>> = {
  Pending: ['pause', 'abort'],
  Canary: ['pause', 'abort', 'rollback'],
  Soaking: ['pause', 'abort', 'rollback'],
  Progressing: ['pause', 'abort', 'rollback'],
  Paused: ['resume', 'abort', 'rollback'],
  Completed: ['rollback'],
  Failed: ['rollback'],
  RollingBack: [],
  RolledBack: [],
};

let eventId = 1000;

function componentVersion(m: MachineObject, pkg: string): string | null {
  const s = pkg === 'kubelet' ? m.status.kubelet : pkg === 'containerd' ? m.status.containerd : pkg === 'cni-plugins' ? m.status.cni : undefined;
  return s?.semver ?? null;
}

function event(r: FixtureRollout, now: number, type: 'Normal' | 'Warning', reason: string, message: string): void {
  r.events.push({ id: eventId++, at: new Date(now).toISOString(), object: `rollout/${r.name}`, type, reason, message });
}

function transition(r: FixtureRollout, now: number, phase: string, reason: string, message: string, continueWith: string | null = null): void {
  r.phase = phase;
  r.reason = reason;
  r.message = message;
  r.continueWith = continueWith;
  const warn = phase === 'Paused' || phase === 'Failed' || phase === 'RollingBack' || phase === 'RolledBack';
  event(r, now, warn ? 'Warning' : 'Normal', reason, message);
}

/** A new rollout over the fixture machines its selector picks (revoked ones never). */
export function newFixtureRollout(spec: RolloutSpec, name: string, machines: readonly MachineObject[], now: number): FixtureRollout {
  const sel = spec.selector;
  const picked = machines.filter((m) =>
    m.status.revoked !== true &&
    Object.entries(sel.matchLabels ?? {}).every(([k, v]) => m.metadata.labels[k] === v) &&
    (sel.names === undefined || sel.names.includes(m.metadata.name)));
  const since = new Date(now).toISOString();
  const entries: Entry[] = picked.flatMap((m) => (spec.packages ?? []).map((p) => ({
    name: m.metadata.name, phase: 'Waiting', package: p.package, fromVersion: componentVersion(m, p.package), toVersion: p.version,
    step: null, reason: '', message: '', since,
  })));
  const r: FixtureRollout = {
    name, created: since, spec, phase: 'Pending', reason: 'Created', message: `${entries.length} machine upgrades planned`, continueWith: null,
    batch: { index: 0, total: spec.strategy.batches?.length ?? 1 }, entries, startedTime: null, completedTime: null,
    resumeTo: null, acceptedFailures: 0, events: [],
  };
  event(r, now, 'Normal', 'Created', r.message);
  return r;
}

function limit(v: number | string | undefined, total: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number') return v;
  return Math.max(1, Math.ceil((Number(v.slice(0, -1)) / 100) * total));
}

function setPhase(e: Entry, phase: string, now: number, step: string | null = null, reason = '', message = ''): void {
  Object.assign(e, { phase, step, reason, message, since: new Date(now).toISOString() });
}

function startRollback(r: FixtureRollout, now: number, reason: string, message: string): void {
  for (const e of r.entries) {
    if (e.phase === 'Succeeded' || e.phase === 'Soaking' || e.phase === 'Installing' || e.phase === 'Failed') setPhase(e, 'RollingBack', now, 'switch', reason, `back to ${e.fromVersion ?? 'the previous version'}`);
  }
  transition(r, now, 'RollingBack', reason, message);
}

/** One step of the simulation (a GET of the rollout). */
export function advanceFixtureRollout(r: FixtureRollout, failVersions: readonly string[], now: number): void {
  const total = r.entries.length;
  if (r.phase === 'RollingBack') {
    for (const e of r.entries) if (e.phase === 'RollingBack') setPhase(e, 'RolledBack', now, null, 'RolledBack', `at ${e.fromVersion ?? 'the previous version'} again`);
    r.completedTime = new Date(now).toISOString();
    transition(r, now, 'RolledBack', 'RolledBack', `every changed machine is back at its previous version`);
    return;
  }
  if (r.phase !== 'Pending' && r.phase !== 'Canary' && r.phase !== 'Soaking' && r.phase !== 'Progressing') return;
  r.startedTime ??= new Date(now).toISOString();

  for (const e of r.entries) {
    if (e.phase === 'Soaking') {
      setPhase(e, 'Succeeded', now);
    } else if (e.phase === 'Installing') {
      if (failVersions.includes(e.toVersion)) {
        setPhase(e, 'Failed', now, 'health', 'HealthCheckFailed', `${e.package} did not become healthy after the switch; the agent switched back to ${e.fromVersion ?? 'the previous version'}`);
      } else {
        setPhase(e, 'Soaking', now, 'soak');
      }
    }
  }
  const failed = r.entries.filter((e) => e.phase === 'Failed').length - r.acceptedFailures;
  const maxFailures = limit(r.spec.strategy.maxFailures, total, 1);
  if (failed >= maxFailures && failed > 0) {
    const where = r.batch.index === 0 ? 'canary' : `batch ${r.batch.index}`;
    const reason = r.batch.index === 0 ? 'CanaryFailed' : 'TooManyFailures';
    const message = `${failed} machine(s) failed in the ${where} (maxFailures ${maxFailures})`;
    if (r.spec.strategy.onFailure === 'Rollback') startRollback(r, now, reason, message);
    else {
      r.resumeTo = r.phase;
      transition(r, now, 'Paused', reason, message, `nkctl rollout rollback ${r.name}`);
    }
    return;
  }
  const inFlight = r.entries.some((e) => e.phase === 'Installing' || e.phase === 'Soaking');
  if (inFlight) {
    if (r.batch.index === 0 && r.phase !== 'Soaking' && r.entries.every((e) => e.phase !== 'Installing')) transition(r, now, 'Soaking', 'CanarySoaking', 'canaries installed, soaking');
    return;
  }
  const waiting = r.entries.filter((e) => e.phase === 'Waiting');
  if (waiting.length === 0) {
    r.completedTime = new Date(now).toISOString();
    transition(r, now, 'Completed', 'AllMachinesUpgraded', `${r.entries.filter((e) => e.phase === 'Succeeded').length}/${total} machine upgrades succeeded`);
    return;
  }
  if (r.phase === 'Pending') {
    const c = r.spec.strategy.canary;
    const n = c?.percent !== undefined ? Math.max(1, Math.ceil((c.percent / 100) * total)) : (c?.count ?? 1);
    if (n > 0) {
      for (const e of waiting.slice(0, n)) setPhase(e, 'Installing', now, 'download');
      transition(r, now, 'Canary', 'CanaryStarted', `upgrading ${Math.min(n, waiting.length)} canary machine(s)`);
      return;
    }
  }
  const batches = r.spec.strategy.batches ?? [100];
  const next = r.batch.index + 1;
  const target = Math.ceil(((batches[next - 1] ?? 100) / 100) * total);
  const done = total - waiting.length;
  const start = waiting.slice(0, Math.max(1, target - done));
  for (const e of start) setPhase(e, 'Installing', now, 'download');
  r.batch = { index: next, total: batches.length };
  transition(r, now, 'Progressing', 'BatchStarted', `batch ${next} of ${batches.length}: ${start.length} machine(s)`);
}

/** An operator action; an error message when the phase does not allow it. */
export function actOnFixtureRollout(r: FixtureRollout, action: RolloutAction, now: number): string | null {
  const allowed = ALLOWED[r.phase] ?? [];
  if (!allowed.includes(action)) {
    return `rollout/${r.name} is ${r.phase}: it cannot ${action}; ${allowed.length === 0 ? 'it allows no action now' : `it allows ${allowed.join(', ')}`}`;
  }
  if (action === 'pause') {
    r.resumeTo = r.phase;
    transition(r, now, 'Paused', 'PausedByUser', 'paused by nkctl rollout pause', `nkctl rollout resume ${r.name}`);
  } else if (action === 'resume') {
    r.acceptedFailures = r.entries.filter((e) => e.phase === 'Failed').length;
    transition(r, now, r.resumeTo ?? 'Progressing', 'Resumed', 'resumed by nkctl rollout resume');
  } else if (action === 'abort') {
    r.completedTime = new Date(now).toISOString();
    transition(r, now, 'Failed', 'Aborted', 'aborted by nkctl rollout abort; machines stay at the version they have', `nkctl rollout rollback ${r.name}`);
  } else {
    startRollback(r, now, 'RollbackRequested', 'rollback requested by nkctl rollout rollback');
  }
  return null;
}

/** The API object of a fixture rollout. */
export function fixtureRolloutObject(r: FixtureRollout): RolloutObject {
  const count = (...phases: string[]) => r.entries.filter((e) => phases.includes(e.phase)).length;
  const status = {
    phase: r.phase, reason: r.reason, message: r.message, continueWith: r.continueWith, batch: { ...r.batch },
    counts: {
      total: r.entries.length, waiting: count('Waiting'), inProgress: count('Installing', 'Soaking'), succeeded: count('Succeeded'),
      failed: count('Failed'), rollingBack: count('RollingBack'), rolledBack: count('RolledBack'), skipped: count('Skipped'),
    },
    machines: r.entries.map((e) => ({ ...e })),
    startedTime: r.startedTime,
    completedTime: r.completedTime,
  };
  return { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: r.name, creationTimestamp: r.created, resourceVersion: String(r.resourceVersion ?? 1) }, spec: r.spec, status } as unknown as RolloutObject;
}
