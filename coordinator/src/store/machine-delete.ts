/**
 * Deleting a machine gone for good (`nkctl machine delete`): the machine row and what
 * hangs off it (its commands, observations and remediation state) go in one
 * transaction, recorded as an event. Events about it stay (the audit trail; retention
 * ages them out like any other). Its credential goes with the row, so its agent, should it
 * come back, is refused and must enroll again with a bootstrap token.
 */
import { AppError } from '@nodekeeper/common';
import type { StoreContext } from './context.ts';
import { StoreErrorCode } from './errors.ts';
import { recordEvent } from './events.ts';
import { getMachine } from './machines.ts';
import type { MachineRecord } from '../model/machine.ts';

export interface DeletedMachine {
  readonly machine: MachineRecord;
  readonly commands: number;
  readonly observations: number;
}

/** Deletes machine `name` and its rows (NK_MACHINE_NOT_FOUND); `why` goes into the event. */
export function deleteMachine(ctx: StoreContext, name: string, why: string): DeletedMachine {
  return ctx.tx(() => {
    const machine = getMachine(ctx, name);
    if (machine === null) throw new AppError(StoreErrorCode.machineNotFound, `machine "${name}" not found`, { context: { name } });
    const observations = ctx.stmt('DELETE FROM observations WHERE machine = ?').run(name).changes;
    const commands = ctx.stmt('DELETE FROM commands WHERE machine = ?').run(name).changes;
    ctx.stmt('DELETE FROM remediation_machines WHERE machine = ?').run(name);
    ctx.stmt('DELETE FROM remediation_faults WHERE machine = ?').run(name);
    ctx.stmt('DELETE FROM machines WHERE name = ?').run(name);
    recordEvent(ctx, {
      object: `machine/${name}`, type: 'Normal', reason: 'Deleted',
      message: `machine ${name} (machine id ${machine.machineId}) deleted${why === '' ? '' : ` (${why})`}: ${commands} command(s), ${observations} observation(s) and its remediation state removed`,
    });
    return { machine, commands, observations };
  });
}
