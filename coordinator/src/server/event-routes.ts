/**
 * The coordinator's event log as a list (`GET /v1/events`, newest last, `?limit=`) and a
 * watch (`?watch=1`, watch/event-log.ts). An event's resourceVersion is its id.
 */
import { toEventObject } from '../api/objects.ts';
import { serveEventWatch } from '../watch/http-sink.ts';
import { parseListQuery } from '../watch/query.ts';
import { httpError, send, watchOf, type ApiDeps, type Route } from './http-util.ts';

const DEFAULT_LIMIT = 50;

export function eventRoutes(deps: ApiDeps): Route[] {
  const { store } = deps;
  return [
    {
      method: 'GET', pattern: /^\/v1\/events$/, name: 'events', access: 'read-only',
      handler: ({ req, res, url }) => {
        const limitRaw = url.searchParams.get('limit') ?? String(DEFAULT_LIMIT);
        if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1) throw httpError('NK_HTTP_BAD_REQUEST', 'limit must be an integer from 1 to 9999');
        const q = parseListQuery(url, 'none');
        if (q.watch) return serveEventWatch(watchOf(deps).hub, watchOf(deps).events, q, Number(limitRaw), req, res);
        const resourceVersion = String(store.eventIdBounds().newest);
        send(res, 200, { kind: 'EventList', metadata: { resourceVersion }, items: store.listEvents({ limit: Number(limitRaw) }).map(toEventObject) });
      },
    },
  ];
}
