/**
 * Routes for the member cluster's Nodes: cordon, uncordon and drain a machine's Node
 * (`nkctl machine cordon|uncordon|drain`). A drain cordons first, drains with kubectl
 * drain's rules (member/drain.ts: refusals, Eviction API, waits for the pods to go) and,
 * when it cannot finish, uncordons what it cordoned and answers with the reason
 * (NK_DRAIN_REFUSED, NK_DRAIN_BLOCKED, NK_DRAIN_TIMEOUT, NK_DRAIN_CANCELLED).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { NodeAction } from '@nodekeeper/api';
import { AppError } from '@nodekeeper/common';
import { drainOptionsOf, drainSpecWithDefaults, DrainSpecSchema } from '../member/drain-rules.ts';
import type { MemberCluster } from '../member/member-cluster.ts';
import { cordonAndDrain, drainFailureReason } from '../member/node-drainer.ts';
import { NAME, httpError, readJson, send, type ApiDeps, type Route } from './http-util.ts';

/** The drain options as a rollout spec writes them; absent ones: kubectl's defaults and --drain-timeout. */
const DrainBody = TypeCompiler.Compile(DrainSpecSchema);

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
        send(res, 200, { kind: 'NodeAction', machine: name, result } satisfies NodeAction);
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
        // The drain runs inside this request: a client that goes away cancels it (and the cordon is undone).
        let gone = false;
        res.on('close', () => (gone = !res.writableFinished));
        const opts = drainOptionsOf(drainSpecWithDefaults(body), m.defaultDrainTimeoutMs());
        try {
          const r = await cordonAndDrain(m, name, 'nkctl-drain', { ...opts, progress: (line) => deps.log.info({ machine: name }, line), stop: () => (gone ? 'the client went away' : null) },
            (c) => event(name, 'Normal', 'Cordoned', `Node ${name}: ${c} for a drain (operator)`));
          event(name, 'Normal', 'Drained', `Node ${name}: ${r.evicted.length} pods evicted and gone, ${r.skipped.length} left (${r.skipped.join(', ') || 'none'}) (operator)`);
          send(res, 200, { kind: 'NodeAction', machine: name, result: 'drained', cordoned: r.cordon, evicted: [...r.evicted], skipped: [...r.skipped], refused: [...r.refused] } satisfies NodeAction);
        } catch (err) {
          // cordonAndDrain undid its own cordon (never an operator's) and says so in the message.
          const message = err instanceof AppError ? err.message : String(err);
          event(name, 'Warning', err instanceof AppError ? drainFailureReason(err.code) : 'DrainStopped', `Node ${name}: ${message} (operator)`);
          throw err;
        }
      },
    },
  ];
}
