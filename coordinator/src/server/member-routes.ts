/**
 * Routes for the member cluster's Nodes: cordon, uncordon and drain a machine's Node
 * (`nkctl machine cordon|uncordon|drain`). A drain cordons first, evicts through the
 * Eviction API (PodDisruptionBudgets honoured) and, when it cannot finish, uncordons
 * what it cordoned and answers NK_DRAIN_BLOCKED with the reason.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '@nodekeeper/common';
import type { MemberCluster } from '../member/member-cluster.ts';
import { NAME, httpError, readJson, send, type ApiDeps, type Route } from './http-util.ts';

const DrainBody = TypeCompiler.Compile(Type.Object({ timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })) }, { additionalProperties: false }));

export function memberRoutes(deps: ApiDeps, member: MemberCluster | null): Route[] {
  const need = (): MemberCluster => {
    if (member === null) throw httpError('NK_MEMBER_NOT_CONFIGURED', 'the coordinator has no member cluster API: start it with --member-kubeconfig');
    return member;
  };
  const event = (machine: string, type: 'Normal' | 'Warning', reason: string, message: string) =>
    deps.store.recordEvent({ object: `machine/${machine}`, type, reason, message });
  return [
    {
      method: 'POST', pattern: new RegExp(`^/v1/machines/${NAME}/cordon$`), name: 'machine-cordon', access: 'admin',
      handler: async ({ res, params }) => {
        const name = params[0] ?? '';
        const result = await need().cordon(name, 'nkctl');
        event(name, 'Normal', 'Cordoned', `Node ${name}: ${result} (operator)`);
        send(res, 200, { kind: 'NodeAction', machine: name, result });
      },
    },
    {
      method: 'POST', pattern: new RegExp(`^/v1/machines/${NAME}/uncordon$`), name: 'machine-uncordon', access: 'admin',
      handler: async ({ res, params }) => {
        const name = params[0] ?? '';
        const result = await need().uncordon(name);
        event(name, 'Normal', 'Uncordoned', `Node ${name}: ${result} (operator)`);
        send(res, 200, { kind: 'NodeAction', machine: name, result });
      },
    },
    {
      method: 'POST', pattern: new RegExp(`^/v1/machines/${NAME}/drain$`), name: 'machine-drain', access: 'admin',
      handler: async ({ req, res, params }) => {
        const name = params[0] ?? '';
        const body = await readJson(req, DrainBody);
        const m = need();
        const cordoned = await m.cordon(name, 'nkctl-drain');
        try {
          const result = await m.drain(name, (line) => deps.log.info({ machine: name }, line), body.timeoutSeconds === undefined ? undefined : body.timeoutSeconds * 1000);
          event(name, 'Normal', 'Drained', `Node ${name}: ${result.evicted.length} pods evicted, ${result.skipped.length} left (${result.skipped.join(', ') || 'none'})`);
          send(res, 200, { kind: 'NodeAction', machine: name, result: 'drained', cordoned, ...result });
        } catch (err) {
          // Never leave behind a cordon of our own after a drain that did not finish.
          const undone = cordoned === 'cordoned' ? await m.uncordon(name).catch((e: unknown) => `uncordon failed: ${(e as Error).message}`) : 'left as the operator had it';
          const message = err instanceof AppError ? err.message : String(err);
          event(name, 'Warning', 'DrainStopped', `Node ${name}: ${message}; node ${undone}`);
          if (err instanceof AppError) throw new AppError(err.code, `${message}; node ${undone}`, { cause: err });
          throw err;
        }
      },
    },
  ];
}
