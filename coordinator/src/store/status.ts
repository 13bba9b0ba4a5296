/**
 * Status writes: the machine's merged report, liveness, conditions and last-seen time,
 * and the observations history (one row per component whenever its health or version
 * changes). The write batcher calls writeBatch; the direct calls exist for one-offs.
 */
import { AppError } from '@nodekeeper/common';
import type { NodeReport } from '@nodekeeper/protocol';
import type { Condition, Liveness } from '../model/machine.ts';
import { toMs, type StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { recordEvent, type NewEvent } from './events.ts';

/** What a status write carries for one machine. */
export interface StatusWrite {
  readonly report: NodeReport | null;
  readonly reportChangedAt: number | null;
  readonly liveness: Liveness;
  readonly conditions: readonly Condition[];
  readonly agentVersion: string | null;
}

/** The components the observations history follows. */
export const OBSERVED_COMPONENTS = ['kubelet', 'runtime', 'cni', 'host'] as const;
export type ObservedComponent = (typeof OBSERVED_COMPONENTS)[number];

/** One component's state at one time, a candidate row for the history. */
export interface Observation {
  readonly component: ObservedComponent;
  readonly at: number;
  readonly health: string;
  readonly versionRaw: string | null;
  readonly reason: string;
}

export interface ObservationRecord extends Observation {
  readonly id: number;
  readonly machine: string;
}

/** A status write queued by the batcher, with every observation seen since the last flush. */
export interface QueuedStatus {
  readonly name: string;
  readonly status: StatusWrite;
  readonly observations: readonly Observation[];
}

/** An event queued by the batcher, with the time it happened. */
export interface QueuedEvent {
  readonly event: NewEvent;
  readonly at: number;
}

export interface BatchResult {
  readonly lastSeenRows: number;
  readonly statusRows: number;
  readonly observationRows: number;
  /** Names with a queued status but no machine row (nothing written for them). */
  readonly missing: readonly string[];
}

/** The observation candidates a report yields at time `at` (coordinator clock). */
export function observationsOf(report: NodeReport | null, at: number): Observation[] {
  if (report === null) return [];
  return OBSERVED_COMPONENTS.map((component) => {
    const probe = report[component];
    return { component, at, health: probe.health, versionRaw: probe.version?.raw ?? null, reason: probe.reason };
  });
}

/** Same health and version: a reason-only or time-only change is not history. */
export function sameObservation(a: Pick<Observation, 'health' | 'versionRaw'>, b: Pick<Observation, 'health' | 'versionRaw'>): boolean {
  return a.health === b.health && a.versionRaw === b.versionRaw;
}

function writeStatusRow(ctx: StoreContext, name: string, s: StatusWrite): boolean {
  const info = ctx
    .stmt(
      `UPDATE machines SET report = @report, report_changed_at = @reportChangedAt, liveness_state = @state,
         liveness_since = @since, liveness_reason = @reason, liveness_message = @message, conditions = @conditions,
         agent_version = coalesce(@agentVersion, agent_version), status_updated_at = @now
       WHERE name = @name`,
    )
    .run({
      name,
      report: s.report === null ? null : JSON.stringify(s.report),
      reportChangedAt: s.reportChangedAt === null ? null : toMs(s.reportChangedAt),
      state: s.liveness.state,
      since: toMs(s.liveness.since),
      reason: s.liveness.reason,
      message: s.liveness.message,
      conditions: JSON.stringify(s.conditions),
      agentVersion: s.agentVersion,
      now: ctx.now(),
    });
  return info.changes > 0;
}

/** Appends the candidates that differ from the component's latest row; returns how many. */
function writeObservations(ctx: StoreContext, name: string, candidates: readonly Observation[]): number {
  const latest = ctx.stmt('SELECT health, version_raw AS versionRaw FROM observations WHERE machine = ? AND component = ? ORDER BY id DESC LIMIT 1');
  const insert = ctx.stmt('INSERT INTO observations (machine, at, component, health, version_raw, reason) VALUES (?, ?, ?, ?, ?, ?)');
  let written = 0;
  for (const o of candidates) {
    const last = latest.get(name, o.component) as { health: string; versionRaw: string | null } | undefined;
    if (last !== undefined && sameObservation(last, o)) continue;
    insert.run(name, toMs(o.at), o.component, o.health, o.versionRaw, o.reason);
    written += 1;
  }
  return written;
}

function writeLastSeen(ctx: StoreContext, entries: Iterable<readonly [string, number]>): number {
  // ONE statement per flush, whatever the number of machines: the times go in as a JSON
  // object (a name given twice keeps its latest time). max(): a late flush never moves
  // last-seen backwards. Its own narrow table (migration 14): no resourceVersion moves,
  // no machines row is rewritten; a name the store no longer has is left out.
  const times = Object.create(null) as Record<string, number>;
  let any = false;
  for (const [name, at] of entries) {
    const t = toMs(at);
    times[name] = Math.max(times[name] ?? 0, t);
    any = true;
  }
  if (!any) return 0;
  return ctx.stmt(
    `INSERT INTO machine_seen (name, at)
     SELECT seen.key, seen.value FROM json_each(?) AS seen WHERE seen.key IN (SELECT name FROM machines)
     ON CONFLICT(name) DO UPDATE SET at = max(at, excluded.at)`,
  ).run(JSON.stringify(times)).changes;
}

/** Writes one machine's status (and its observations) in one transaction. */
export function saveStatus(ctx: StoreContext, name: string, status: StatusWrite): { observationRows: number } {
  return ctx.tx(() => {
    if (!writeStatusRow(ctx, name, status)) {
      throw new AppError(StoreErrorCode.machineNotFound, `no machine named ${JSON.stringify(name)}`, { context: { name } });
    }
    return { observationRows: writeObservations(ctx, name, observationsOf(status.report, status.reportChangedAt ?? ctx.now())) };
  });
}

/** Writes last-seen times in one transaction; unknown names are skipped. Returns rows updated. */
export function saveLastSeen(ctx: StoreContext, entries: Iterable<readonly [string, number]>): number {
  return ctx.tx(() => writeLastSeen(ctx, entries));
}

/** Everything the batcher queued, in ONE transaction. */
export function writeBatch(
  ctx: StoreContext,
  batch: { lastSeen: Iterable<readonly [string, number]>; statuses: Iterable<QueuedStatus>; events?: Iterable<QueuedEvent> },
): BatchResult {
  return ctx.tx(() => {
    for (const q of batch.events ?? []) recordEvent(ctx, q.event, q.at);
    const lastSeenRows = writeLastSeen(ctx, batch.lastSeen);
    let statusRows = 0;
    let observationRows = 0;
    const missing: string[] = [];
    for (const q of batch.statuses) {
      if (!writeStatusRow(ctx, q.name, q.status)) {
        missing.push(q.name);
        continue;
      }
      statusRows += 1;
      observationRows += writeObservations(ctx, q.name, q.observations);
    }
    return { lastSeenRows, statusRows, observationRows, missing };
  });
}

interface ObservationRow {
  id: number;
  machine: string;
  at: number;
  component: ObservedComponent;
  health: string;
  version_raw: string | null;
  reason: string;
}

/** A machine's observation history, oldest first (the latest `limit` rows). */
export function machineObservations(ctx: StoreContext, name: string, limit: number, component?: ObservedComponent): ObservationRecord[] {
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RangeError(`limit must be an integer in 1..10000, got ${limit}`);
  const rows = (
    component === undefined
      ? ctx.stmt('SELECT * FROM observations WHERE machine = ? ORDER BY id DESC LIMIT ?').all(name, limit)
      : ctx.stmt('SELECT * FROM observations WHERE machine = ? AND component = ? ORDER BY id DESC LIMIT ?').all(name, component, limit)
  ) as ObservationRow[];
  return rows.reverse().map((r) => ({
    id: r.id,
    machine: r.machine,
    at: r.at,
    component: r.component,
    health: r.health,
    versionRaw: r.version_raw,
    reason: r.reason,
  }));
}
