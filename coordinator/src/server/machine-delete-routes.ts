/**
 * `DELETE /v1/machines/{name}[?force=true]`: a machine gone for good. Refused (409
 * NK_MACHINE_IN_USE) while a rollout holds it (installing, soaking, rolling back), since
 * its progress would then hang on a machine that no longer exists; `force` overrides that,
 * and the rollout then counts the machine as gone. Its host Machine mirror is deleted by
 * the next host sync (a mirrored name missing from the fleet is deleted there).
 */
import type { MachineDeleted } from '@nodekeeper/api';
import { AppError } from '@nodekeeper/common';
import { NAME, httpError, readJson, send, type ApiDeps, type Route } from './http-util.ts';

export interface MachineDeleteHooks {
  /** Rollouts that hold the machine now. */
  readonly heldBy: (name: string) => readonly string[];
  /** Told after the store dropped it: controllers forget it. */
  readonly deleted: (name: string) => void;
}

export function machineDeleteRoutes(deps: ApiDeps, hooks: MachineDeleteHooks): Route[] {
  const { store, fleet, log } = deps;
  return [
    {
      method: 'DELETE', pattern: new RegExp(`^/v1/machines/${NAME}$`), name: 'machine-delete', access: 'admin',
      handler: async ({ req, res, params, url }) => {
        const name = params[0] ?? '';
        const force = url.searchParams.get('force');
        if (force !== null && force !== 'true' && force !== 'false') throw httpError('NK_HTTP_BAD_REQUEST', 'force must be true or false');
        await readJson(req, null); // no body is expected; an oversized one is refused
        if (fleet.get(name) === undefined) throw httpError('NK_MACHINE_NOT_FOUND', `machine "${name}" not found`);
        const holders = hooks.heldBy(name);
        if (holders.length > 0 && force !== 'true') {
          throw new AppError('NK_MACHINE_IN_USE', `machine "${name}" is held by ${holders.map((r) => `rollout ${r}`).join(', ')}; wait for it, abort it, or delete with --force`);
        }
        const gone = store.deleteMachine(name, holders.length > 0 ? `forced while held by ${holders.join(', ')}` : '');
        fleet.deleted(name);
        hooks.deleted(name);
        log.warn({ machine: name, forced: holders.length > 0, commands: gone.commands, observations: gone.observations }, 'machine deleted');
        send(res, 200, { kind: 'MachineDeleted', name, machineId: gone.machine.machineId, commands: gone.commands, observations: gone.observations, forced: holders.length > 0 } satisfies MachineDeleted);
      },
    },
  ];
}
