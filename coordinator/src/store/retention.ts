/**
 * Pruning of rows nobody needs any more, one small batch per call, so a caller can
 * yield to the event loop between batches (see retention/retention-controller.ts). Each
 * call is one transaction and looks at no more than `batch` rows (plus index lookups):
 * no call scans a whole table.
 *
 * - events: the oldest first, while older than the age limit or beyond the row cap.
 *   The audit trail stays append-only for every other writer: the trigger refuses
 *   deletes unless this transaction opened its gate (migration 7).
 * - finished commands older than the limit (by finished_at; open ones never).
 * - bootstrap tokens expired or revoked longer ago than the limit, unless a machine
 *   still names the token that enrolled it.
 * - observations older than the limit, except each machine's latest row per component
 *   (the last thing known is kept, however old).
 */
import type { StoreContext } from './context.ts';

/** Deletes up to `batch` of the oldest events older than `before`, or beyond the newest `maxRows` (0: no cap). */
export function pruneEvents(ctx: StoreContext, before: number, maxRows: number, batch: number): number {
  return ctx.tx(() => {
    const hi = (ctx.stmt('SELECT max(id) AS hi FROM events').get() as { hi: number | null }).hi;
    if (hi === null) return 0;
    // Event ids are dense (AUTOINCREMENT; only retention deletes, from the oldest), so the
    // cap is an id bound and needs no count(*).
    const capAtOrBelow = maxRows > 0 ? hi - maxRows : -1;
    const rows = ctx.stmt('SELECT id, at FROM events ORDER BY id LIMIT ?').all(batch) as Array<{ id: number; at: number }>;
    let upto: number | null = null;
    for (const r of rows) {
      if (r.at >= before && r.id > capAtOrBelow) break; // the first one to keep: stop (oldest first)
      upto = r.id;
    }
    if (upto === null) return 0;
    ctx.stmt(`UPDATE maintenance SET value = 1 WHERE name = 'events_prune_open'`).run();
    const deleted = ctx.stmt('DELETE FROM events WHERE id <= ?').run(upto).changes;
    ctx.stmt(`UPDATE maintenance SET value = 0 WHERE name = 'events_prune_open'`).run();
    return deleted;
  });
}

/** Deletes up to `batch` commands finished before `before` (by the partial index on finished_at). */
export function pruneCommands(ctx: StoreContext, before: number, batch: number): number {
  return ctx.tx(() => ctx.stmt(
    'DELETE FROM commands WHERE id IN (SELECT id FROM commands WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?)',
  ).run(before, batch).changes);
}

/** Deletes up to `batch` tokens that expired, or were revoked, before `before` and enrolled no machine still here. */
export function pruneTokens(ctx: StoreContext, before: number, batch: number): number {
  return ctx.tx(() => ctx.stmt(`
    DELETE FROM tokens WHERE id IN (
      SELECT id FROM tokens
      WHERE (expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?))
        AND id NOT IN (SELECT enrolled_by_token FROM machines WHERE enrolled_by_token IS NOT NULL)
      LIMIT ?)`).run(before, before, batch).changes);
}

/**
 * Looks at up to `batch` observations after id `afterId`, oldest first, and deletes those
 * older than `before` that a newer row of the same machine and component supersedes.
 * Returns the last id looked at (the caller's cursor) and whether the round is over (a
 * row young enough to keep, or the end of the table).
 */
export function pruneObservations(ctx: StoreContext, before: number, afterId: number, batch: number): { deleted: number; lastId: number; done: boolean } {
  return ctx.tx(() => {
    const rows = ctx.stmt('SELECT id, machine, component, at FROM observations WHERE id > ? ORDER BY id LIMIT ?').all(afterId, batch) as Array<{ id: number; machine: string; component: string; at: number }>;
    const newer = ctx.stmt('SELECT 1 FROM observations WHERE machine = ? AND component = ? AND id > ? LIMIT 1');
    const drop = ctx.stmt('DELETE FROM observations WHERE id = ?');
    let deleted = 0;
    let lastId = afterId;
    for (const r of rows) {
      if (r.at >= before) return { deleted, lastId, done: true };
      lastId = r.id;
      if (newer.get(r.machine, r.component, r.id) !== undefined) deleted += drop.run(r.id).changes;
    }
    return { deleted, lastId, done: rows.length < batch };
  });
}
