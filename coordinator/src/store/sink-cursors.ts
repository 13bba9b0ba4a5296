/**
 * Cursors of the event log's consumers (coordinator/src/notify/event-feed.ts): each sink
 * reads events by id after its cursor and moves the cursor once they are delivered.
 * Event ids only grow (AUTOINCREMENT, and one writer at a time commits them in order),
 * so a cursor never skips an event written inside a longer transaction.
 */
import type { StoreContext } from './context.ts';

/** The id a sink is done with, or null for a sink never seen before. */
export function sinkCursor(ctx: StoreContext, name: string): number | null {
  const row = ctx.stmt('SELECT after_id FROM sink_cursors WHERE name = ?').get(name) as { after_id: number } | undefined;
  return row === undefined ? null : row.after_id;
}

/** Moves a sink's cursor (never backwards: a late write of an older position changes nothing). */
export function saveSinkCursor(ctx: StoreContext, name: string, afterId: number): void {
  if (!Number.isInteger(afterId) || afterId < 0) throw new RangeError(`cursor must be a non-negative integer, got ${afterId}`);
  ctx.tx(() => ctx.stmt(`INSERT INTO sink_cursors (name, after_id, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET after_id = max(after_id, excluded.after_id), updated_at = excluded.updated_at`).run(name, afterId, ctx.now()));
}

/** The newest event's id (0 when there is none): where a new sink starts. */
export function lastEventId(ctx: StoreContext): number {
  const row = ctx.stmt('SELECT max(id) AS hi FROM events').get() as { hi: number | null };
  // sqlite_sequence keeps the high-water mark even if retention pruned every row.
  const seq = ctx.stmt(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).get() as { seq: number } | undefined;
  return Math.max(row.hi ?? 0, seq?.seq ?? 0);
}
