/**
 * `GET /openapi/v3`: the API contract (@nodekeeper/api) as an OpenAPI 3.1 document. A
 * read-only credential is needed, as for every read of the API (Kubernetes, too, serves
 * its /openapi/v3 to authenticated users only). Built once: it is a pure function of
 * the contract, and createApi has checked the routes against the same table.
 */
import { openApiDocument } from '@nodekeeper/api';
import { send, type Route } from './http-util.ts';

export function openApiRoutes(): Route[] {
  const body = `${JSON.stringify(openApiDocument())}\n`;
  return [
    { method: 'GET', pattern: /^\/openapi\/v3$/, name: 'openapi', access: 'read-only', handler: ({ res }) => send(res, 200, body, 'application/json; charset=utf-8') },
  ];
}
