/**
 * Commands sent to agents: recorded before they are sent, so a coordinator restart
 * knows what is in flight; agents execute each id at most once and answer with its
 * recorded result when asked again.
 */
import type { StoreContext } from './context.ts';
import { parseJson } from './context.ts';
import type { CommandRecord, CommandState } from '../model/commands.ts';

interface CommandRow {
  id: string; machine: string; kind: string; params: string; owner: string | null; state: CommandState; step: string | null;
  message: string; result: string | null; error: string | null; timeout_ms: number; created_at: number; sent_at: number | null; finished_at: number | null;
}

const toCommand = (r: CommandRow): CommandRecord => ({
  id: r.id,
  machine: r.machine,
  kind: r.kind,
  params: parseJson<Record<string, unknown>>(r.params, 'command params'),
  owner: r.owner,
  state: r.state,
  step: r.step,
  message: r.message,
  result: r.result === null ? null : parseJson<Record<string, unknown>>(r.result, 'command result'),
  error: r.error === null ? null : parseJson<{ code: string; message: string }>(r.error, 'command error'),
  timeoutMs: r.timeout_ms,
  createdAt: r.created_at,
  sentAt: r.sent_at,
  finishedAt: r.finished_at,
});

export function createCommand(ctx: StoreContext, c: { id: string; machine: string; kind: string; params: Record<string, unknown>; owner: string | null; timeoutMs: number }): CommandRecord {
  return ctx.tx(() => {
    ctx.stmt(
      `INSERT INTO commands (id, machine, kind, params, owner, state, timeout_ms, created_at) VALUES (?, ?, ?, ?, ?, 'Pending', ?, ?)`,
    ).run(c.id, c.machine, c.kind, JSON.stringify(c.params), c.owner, c.timeoutMs, ctx.now());
    return getCommand(ctx, c.id)!;
  });
}

export function getCommand(ctx: StoreContext, id: string): CommandRecord | null {
  const row = ctx.stmt('SELECT * FROM commands WHERE id = ?').get(id) as CommandRow | undefined;
  return row === undefined ? null : toCommand(row);
}

/** Commands not yet finished, oldest first (what a restart must pick up again). */
export function openCommands(ctx: StoreContext, machine?: string): CommandRecord[] {
  const rows = machine === undefined
    ? ctx.stmt(`SELECT * FROM commands WHERE state IN ('Pending', 'Sent', 'Running') ORDER BY created_at, id`).all()
    : ctx.stmt(`SELECT * FROM commands WHERE machine = ? AND state IN ('Pending', 'Sent', 'Running') ORDER BY created_at, id`).all(machine);
  return (rows as CommandRow[]).map(toCommand);
}

export function commandsByOwner(ctx: StoreContext, owner: string): CommandRecord[] {
  return (ctx.stmt('SELECT * FROM commands WHERE owner = ? ORDER BY created_at, id').all(owner) as CommandRow[]).map(toCommand);
}

export function markSent(ctx: StoreContext, id: string): void {
  ctx.tx(() => ctx.stmt(`UPDATE commands SET state = 'Sent', sent_at = COALESCE(sent_at, ?) WHERE id = ? AND state IN ('Pending', 'Sent')`).run(ctx.now(), id));
}

export function markProgress(ctx: StoreContext, id: string, step: string, message: string): void {
  ctx.tx(() => ctx.stmt(`UPDATE commands SET state = 'Running', step = ?, message = ? WHERE id = ? AND state IN ('Pending', 'Sent', 'Running')`).run(step, message, id));
}

/** Records the end of a command once; later results for the same id are ignored (returns false). */
export function finishCommand(
  ctx: StoreContext,
  id: string,
  end: { state: 'Succeeded' | 'Failed' | 'TimedOut'; result?: Record<string, unknown> | null; error?: { code: string; message: string } | null; message?: string },
): boolean {
  return ctx.tx(() => {
    const r = ctx.stmt(
      `UPDATE commands SET state = ?, result = ?, error = ?, message = COALESCE(?, message), finished_at = ?
       WHERE id = ? AND state IN ('Pending', 'Sent', 'Running')`,
    ).run(end.state, end.result == null ? null : JSON.stringify(end.result), end.error == null ? null : JSON.stringify(end.error), end.message ?? null, ctx.now(), id);
    return r.changes === 1;
  });
}
