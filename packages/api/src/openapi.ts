/**
 * The OpenAPI 3.1 document of the HTTP API, built from the path table and the schemas
 * (served at `/openapi/v3`). Pure: the same contract gives the same document. OpenAPI
 * 3.1 schemas are JSON Schema 2020-12, which TypeBox schemas already are; their symbol
 * keys (TypeBox's own bookkeeping) do not survive JSON and are dropped here.
 */
import type { TSchema } from '@sinclair/typebox';
import { PATHS, SCHEMAS, type PathEntry, type SchemaName } from './paths.ts';
import { API_VERSION } from './version.ts';

/** The vendor extension naming who may call an operation (`none`, `agent`, `read-only`, `admin`). */
export const ACCESS_EXTENSION = 'x-nodekeeper-access';
/** The vendor extension naming the route as the server and its metrics do. */
export const ROUTE_EXTENSION = 'x-nodekeeper-route';

const plain = (s: TSchema): Record<string, unknown> => JSON.parse(JSON.stringify(s)) as Record<string, unknown>;
const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: SchemaName) => ({ content: { 'application/json': { schema: ref(name) } } });

function operation(e: PathEntry, seen: Map<string, number>): Record<string, unknown> {
  // operationId must be unique: routes with several paths (remediation-switch) get a suffix.
  const n = (seen.get(e.name) ?? 0) + 1;
  seen.set(e.name, n);
  const parameters = [
    ...Object.entries(e.params ?? {}).map(([name, p]) => ({ name, in: 'path', required: true, schema: plain(p.schema), ...(p.description === undefined ? {} : { description: p.description }) })),
    ...Object.entries(e.query ?? {}).map(([name, p]) => ({ name, in: 'query', required: false, schema: plain(p.schema), ...(p.description === undefined ? {} : { description: p.description }) })),
  ];
  const success = 'schema' in e.response
    ? { description: 'success', ...json(e.response.schema) }
    : { description: 'success', content: { [e.response.contentType]: {} } };
  return {
    operationId: n === 1 ? e.name : `${e.name}-${n}`,
    summary: e.summary,
    [ROUTE_EXTENSION]: e.name,
    [ACCESS_EXTENSION]: e.access,
    security: e.access === 'none' ? [] : [{ bearer: [] }],
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(e.request === undefined
      ? {}
      : { requestBody: { required: true, content: e.request === 'binary' ? { 'application/octet-stream': {} } : { 'application/json': { schema: ref(e.request) } } } }),
    responses: {
      [String(e.response.status)]: success,
      ...(e.createsOnApply === true && 'schema' in e.response ? { 201: { description: 'created', ...json(e.response.schema) } } : {}),
      default: { description: 'error: a stable code (docs/errors.md) and a message', ...json('ErrorBody') },
    },
  };
}

/** The whole document. */
export function openApiDocument(paths: readonly PathEntry[] = PATHS): Record<string, unknown> {
  const out: Record<string, Record<string, unknown>> = {};
  const seen = new Map<string, number>();
  for (const e of paths) (out[e.path] ??= {})[e.method.toLowerCase()] = operation(e, seen);
  return {
    openapi: '3.1.0',
    info: {
      title: 'nodekeeper coordinator API',
      version: API_VERSION,
      description: 'The HTTP API of the nodekeeper coordinator (docs/api.md). Errors are {code, message, path?} with the codes of docs/errors.md.',
    },
    paths: out,
    components: {
      schemas: Object.fromEntries(Object.entries(SCHEMAS).map(([name, s]) => [name, plain(s)])),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API credential (nkctl credential create), or a machine credential where access is agent.' } },
    },
  };
}
