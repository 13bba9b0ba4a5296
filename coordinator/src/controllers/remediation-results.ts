/**
 * Finished remediation commands and Reboot-rung reboots as the policy's results (pure).
 * Read again after a restart; the policy ignores duplicates and stale ones.
 */
import type { CommandRecord } from '../model/commands.ts';
import type { RebootView } from '../reboot/driver.ts';
import type { CommandResult } from '../remediation/types.ts';

/** A finished reboot of the Reboot rung as the policy's result (its id is the step's command id). */
export function rebootResult(r: RebootView): CommandResult | null {
  const o = r.state.outcome;
  if (r.state.step !== 'Done' || o === null) return null;
  return { machine: r.machine, commandId: r.id, outcome: o.ok ? 'succeeded' : 'failed', message: o.message };
}

/** A finished remediation command as the policy's result. */
export function commandResult(c: CommandRecord): CommandResult | null {
  if (c.state === 'Pending' || c.state === 'Sent' || c.state === 'Running') return null;
  if (c.state === 'TimedOut') return { machine: c.machine, commandId: c.id, outcome: 'timed-out', message: c.message };
  const outcome = c.result?.['outcome'];
  const good = c.state === 'Succeeded' && (outcome === undefined || outcome === 'healthy' || outcome === 'installed' || outcome === 'already-installed' || outcome === 'rebooting');
  return { machine: c.machine, commandId: c.id, outcome: good ? 'succeeded' : 'failed', message: c.error?.message ?? (typeof c.result?.['message'] === 'string' ? c.result['message'] : c.message) };
}
