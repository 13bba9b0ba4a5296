/**
 * Finished commands and reboots as the rollout planner's input events (pure). The
 * controller feeds them to the planner on every step until a step consumed them; the
 * planner ignores duplicates and stale ones, so reading them again after a restart is safe.
 */
import { CommandKind } from '@nodekeeper/protocol';
import type { CommandRecord } from '../model/commands.ts';
import type { RebootView } from '../reboot/driver.ts';
import type { InstallResultEvent } from '../rollout/types.ts';

/** The owner recorded on a rollout's commands and reboots. */
export const rolloutOwner = (name: string): string => `rollout/${name}`;

/** A finished reboot as the planner's input event (its id is the machine's step command id). */
export function rebootEvent(r: RebootView): InstallResultEvent | null {
  const o = r.state.outcome;
  if (r.state.step !== 'Done' || o === null) return null;
  return {
    kind: 'installResult',
    machine: r.machine,
    commandId: r.id,
    outcome: o.ok ? 'installed' : o.reason === 'Cancelled' ? 'cancelled' : 'failed',
    activeVersion: null,
    ...(o.failedStep === undefined ? {} : { failedStep: o.failedStep }),
    message: o.message,
    reason: o.reason,
  };
}

/** A finished command as the planner's input event, or null when it is not an install or rollback. */
export function commandEvent(c: CommandRecord): InstallResultEvent | null {
  if (c.kind !== CommandKind.install && c.kind !== CommandKind.rollback) return null;
  if (c.state === 'Pending' || c.state === 'Sent' || c.state === 'Running') return null;
  const r = c.result as { outcome?: InstallResultEvent['outcome']; activeVersion?: string | null; failedStep?: string; message?: string } | null;
  const outcome: InstallResultEvent['outcome'] = c.state === 'TimedOut' ? 'timed-out' : r?.outcome ?? (c.state === 'Succeeded' ? 'installed' : 'failed');
  return {
    kind: 'installResult',
    machine: c.machine,
    commandId: c.id,
    outcome,
    activeVersion: r?.activeVersion ?? null,
    ...(r?.failedStep === undefined ? {} : { failedStep: r.failedStep }),
    message: c.error?.message ?? r?.message ?? c.message,
  };
}
