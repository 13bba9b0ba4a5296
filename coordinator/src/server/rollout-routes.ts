/**
 * Routes for rollouts: create, apply (create-or-update), list, show, events, and the
 * operator's requests. Delete is in delete-routes.ts.
 */
import { checkPreconditions, readPreconditions } from '../api/object-meta.ts';
import { toEventObject } from '../api/objects.ts';
import { toRolloutObject as toObject } from '../api/rollout-objects.ts';
import { observedVersion } from '../packages/cluster-package-version.ts';
import type { RolloutRecord } from '../store/types.ts';
import type { RolloutController } from '../controllers/rollout-controller.ts';
import { OPERATOR_REQUESTS, type OperatorRequest } from '../rollout/types.ts';
import { parseRollout } from '../rollout/spec.ts';
import { NAME, httpError, listVersion, readJson, send, watchOf, type ApiDeps, type Route } from './http-util.ts';
import { matchesFilter, parseListQuery } from '../watch/query.ts';
import { serveWatch } from '../watch/http-sink.ts';

/** Builds the Rollout objects the API serves (get, list and watch alike). */
export function rolloutObjectBuilder(deps: Pick<ApiDeps, 'fleet'>): (r: RolloutRecord) => ReturnType<typeof toObject> {
  const current = (machine: string, pkg: string) => observedVersion(deps.fleet.get(machine), pkg)?.raw ?? null;
  return (r) => toObject(r, current);
}

export function rolloutRoutes(deps: ApiDeps, rollouts: RolloutController): Route[] {
  const { store } = deps;
  const toRolloutObject = rolloutObjectBuilder(deps);
  const get = (name: string) => {
    const r = store.getRollout(name);
    if (r === null) throw httpError('NK_ROLLOUT_NOT_FOUND', `rollout "${name}" not found`);
    return r;
  };
  return [
    {
      method: 'POST', pattern: /^\/v1\/rollouts$/, name: 'rollout-create', access: 'admin',
      handler: async ({ req, res }) => send(res, 201, toRolloutObject(rollouts.create(await readJson(req, null)))),
    },
    {
      // apply: create-or-update by name, idempotent; optimistic concurrency on metadata.resourceVersion / uid.
      method: 'PUT', pattern: new RegExp(`^/v1/rollouts/${NAME}$`), name: 'rollout-apply', access: 'admin',
      handler: async ({ req, res, params }) => {
        const name = params[0] ?? '';
        const body = await readJson(req, null);
        const what = `rollout "${name}"`;
        const pre = readPreconditions(body, what);
        const { name: named, spec } = parseRollout(body);
        if (named !== name) throw httpError('NK_ROLLOUT_INVALID', `metadata.name must be "${name}", the name in the URL (got "${named}")`);
        // From here to the write nothing awaits: no other request can slip in between the check and the write.
        const current = store.getRollout(name);
        checkPreconditions(pre, current?.meta ?? null, what);
        if (current === null) {
          send(res, 201, toRolloutObject(rollouts.create(body)));
          return;
        }
        const { record } = rollouts.applySpec(name, spec);
        send(res, 200, toRolloutObject(record));
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/rollouts$/, name: 'rollouts', access: 'read-only',
      handler: ({ req, res, url }) => {
        const q = parseListQuery(url, 'name');
        if (q.watch) return serveWatch(watchOf(deps).hub, 'rollouts', q, req, res);
        const resourceVersion = listVersion(deps);
        const items = store.listRollouts().filter((r) => matchesFilter(q.filter, r.name, null)).map(toRolloutObject);
        send(res, 200, { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RolloutList', metadata: { resourceVersion }, items });
      },
    },
    {
      method: 'GET', pattern: new RegExp(`^/v1/rollouts/${NAME}$`), name: 'rollout', access: 'read-only',
      handler: ({ res, params }) => send(res, 200, toRolloutObject(get(params[0] ?? ''))),
    },
    {
      method: 'GET', pattern: new RegExp(`^/v1/rollouts/${NAME}/events$`), name: 'rollout-events', access: 'read-only',
      handler: ({ res, params, url }) => {
        const name = params[0] ?? '';
        get(name);
        const limitRaw = url.searchParams.get('limit') ?? '50';
        if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1) throw httpError('NK_HTTP_BAD_REQUEST', 'limit must be an integer from 1 to 9999');
        send(res, 200, { kind: 'EventList', items: store.listEvents({ object: `rollout/${name}`, limit: Number(limitRaw) }).map(toEventObject) });
      },
    },
    {
      method: 'POST', pattern: new RegExp(`^/v1/rollouts/${NAME}/(${OPERATOR_REQUESTS.join('|')})$`), name: 'rollout-request', access: 'admin',
      handler: ({ res, params }) => send(res, 200, toRolloutObject(rollouts.request(params[0] ?? '', params[1] as OperatorRequest))),
    },
  ];
}
