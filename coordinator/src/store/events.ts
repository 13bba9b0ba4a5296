/**
 * The append-only audit trail: every decision and transition the coordinator makes
 * about an object (`machine/<name>`, `token/<id>`, ...).
 */
import type { EventRecord } from './types.ts';
import type { StoreContext } from './context.ts';

export interface NewEvent {
  readonly object: string;
  readonly type: EventRecord['type'];
  readonly reason: string;
  readonly message: string;
}

export interface EventQuery {
  /** Only events about this object, e.g. `machine/node-1`. */
  readonly object?: string;
  /** Only events with a larger id (for polling or watching). */
  readonly afterId?: number;
  /** At most this many: the most recent ones, or with `afterId` the first ones after it. */
  readonly limit: number;
}

const MAX_LIMIT = 10_000;
const MAX_REASON = 128;

interface EventRow {
  id: number;
  at: number;
  object: string;
  type: EventRecord['type'];
  reason: string;
  message: string;
}

/** Appends one event (at `at`, default now); returns it with its id. Joins the caller's transaction if any. */
export function recordEvent(ctx: StoreContext, e: NewEvent, at: number = ctx.now()): EventRecord {
  if (e.type !== 'Normal' && e.type !== 'Warning') throw new TypeError(`event type must be Normal or Warning, got ${String(e.type)}`);
  // Reasons should be CamelCase, but some are relayed from agents' probes: only refuse
  // what is unusable, so an odd reason from a node can never crash a caller.
  if (typeof e.reason !== 'string' || e.reason === '' || e.reason.length > MAX_REASON) {
    throw new TypeError(`event reason must be a string of 1..${MAX_REASON} characters, got ${JSON.stringify(e.reason)}`);
  }
  if (typeof e.object !== 'string' || e.object === '') throw new TypeError('event object must be a non-empty string');
  const info = ctx
    .stmt('INSERT INTO events (at, object, type, reason, message) VALUES (?, ?, ?, ?, ?)')
    .run(at, e.object, e.type, e.reason, e.message);
  return { id: Number(info.lastInsertRowid), at, object: e.object, type: e.type, reason: e.reason, message: e.message };
}

/** Events (optionally about one object), oldest first: the latest `limit`, or the first `limit` after `afterId`. */
export function listEvents(ctx: StoreContext, q: EventQuery): EventRecord[] {
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_LIMIT) {
    throw new RangeError(`limit must be an integer in 1..${MAX_LIMIT}, got ${q.limit}`);
  }
  // With afterId the caller is paging forward (a watch): give the oldest first so none
  // is skipped. Without it, the caller wants the latest: take them from the end.
  const forward = q.afterId !== undefined;
  const where = q.object === undefined ? 'id > @afterId' : 'object = @object AND id > @afterId';
  const order = forward ? 'ASC' : 'DESC';
  const rows = ctx
    .stmt(`SELECT * FROM events WHERE ${where} ORDER BY id ${order} LIMIT @limit`)
    .all({ afterId: q.afterId ?? 0, limit: q.limit, ...(q.object === undefined ? {} : { object: q.object }) }) as EventRow[];
  if (!forward) rows.reverse();
  return rows.map((r) => ({ id: r.id, at: r.at, object: r.object, type: r.type, reason: r.reason, message: r.message }));
}

/** The oldest and newest ids in the event log (0 and 0 when it is empty): where a watch may resume. */
export function eventIdBounds(ctx: StoreContext): { oldest: number; newest: number } {
  const row = ctx.stmt('SELECT min(id) AS oldest, max(id) AS newest FROM events').get() as { oldest: number | null; newest: number | null };
  // AUTOINCREMENT never reuses an id, so after retention the newest may be above every row: ask sqlite_sequence.
  const seq = ctx.stmt(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).get() as { seq: number } | undefined;
  return { oldest: row.oldest ?? 0, newest: Math.max(row.newest ?? 0, seq?.seq ?? 0) };
}
