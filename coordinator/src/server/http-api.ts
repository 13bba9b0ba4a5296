/**
 * The HTTP API (JSON) for nkctl, agents' enrollment and monitoring. The contract is
 * documented in docs/nkctl.md ("API"). Every request body is size-limited and validated
 * at the edge; errors are `{code, message}` with a fitting status; nothing is half-applied.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError, type Logger } from '@nodekeeper/common';
import { MachineIdentity } from '@nodekeeper/protocol';
import { toEventObject, toMachineList, toMachineObject, toTokenObject } from '../api/objects.ts';
import type { Clock } from '../clock.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/db.ts';
import type { ApiRole } from '../store/types.ts';

const MAX_BODY_BYTES = 64 * 1024;

const EnrollBody = Type.Object(
  { token: Type.String({ maxLength: 128 }), identity: MachineIdentity, agentVersion: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);
const TokenBody = Type.Object(
  {
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 86_400 })),
    uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    description: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
const checks = { enroll: TypeCompiler.Compile(EnrollBody), token: TypeCompiler.Compile(TokenBody) };

export interface ApiDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly caPem: string | null;
  readonly caHash: string | null;
  readonly heartbeatIntervalMs: number;
}

const STATUS_BY_CODE: Record<string, number> = {
  NK_HTTP_BAD_REQUEST: 400,
  NK_HTTP_BODY_TOO_LARGE: 413,
  NK_HTTP_NOT_FOUND: 404,
  NK_HTTP_METHOD_NOT_ALLOWED: 405,
  NK_AUTH_CREDENTIAL_MISSING: 401,
  NK_AUTH_CREDENTIAL_INVALID: 401,
  NK_AUTH_FORBIDDEN: 403,
  NK_TOKEN_INVALID: 401,
  NK_TOKEN_EXPIRED: 401,
  NK_TOKEN_REVOKED: 401,
  NK_TOKEN_EXHAUSTED: 401,
  NK_TOKEN_NOT_FOUND: 404,
  NK_MACHINE_NOT_FOUND: 404,
  NK_MACHINE_REVOKED: 403,
  NK_MACHINE_NAME_CONFLICT: 409,
};

const httpError = (code: string, message: string) => new AppError(code, message);

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = contentType === 'application/json' ? `${JSON.stringify(body, null, 2)}\n` : String(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

async function readJson<S extends TSchema>(req: IncomingMessage, check: ReturnType<typeof TypeCompiler.Compile<S>>): Promise<Static<S>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw httpError('NK_HTTP_BODY_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch (err) {
    throw httpError('NK_HTTP_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!check.Check(value)) {
    const first = check.Errors(value).First();
    throw httpError('NK_HTTP_BAD_REQUEST', `invalid request body at ${first?.path || '/'}: ${first?.message ?? 'does not match the schema'}`);
  }
  return value;
}

type Handler = (ctx: { req: IncomingMessage; res: ServerResponse; params: string[]; url: URL }) => Promise<void> | void;
interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly name: string;
  /** null: no credential needed. */
  readonly role: ApiRole | null;
  readonly handler: Handler;
}

const NAME = '([a-z0-9A-Z][a-zA-Z0-9._-]{0,252})';

/** Builds the request handler for every route but the agent WebSocket. */
export function createApi(deps: ApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { store, fleet, clock, metrics, log } = deps;
  const machineOr404 = (name: string) => {
    const m = fleet.get(name);
    if (m === undefined) throw httpError('NK_MACHINE_NOT_FOUND', `machine "${name}" not found`);
    return m;
  };

  const routes: Route[] = [
    { method: 'GET', pattern: /^\/healthz$/, name: 'healthz', role: null, handler: ({ res }) => send(res, 200, 'ok\n', 'text/plain') },
    {
      method: 'GET', pattern: /^\/readyz$/, name: 'readyz', role: null,
      handler: ({ res }) => {
        store.listTokens(); // a cheap query: the store answers
        send(res, 200, 'ok\n', 'text/plain');
      },
    },
    {
      method: 'GET', pattern: /^\/metrics$/, name: 'metrics', role: null,
      handler: async ({ res }) => {
        const counts: Record<string, number> = { Pending: 0, Ready: 0, NotReady: 0, Unknown: 0 };
        for (const m of fleet.list()) counts[m.liveness.state] = (counts[m.liveness.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) metrics.machines.set({ state }, n);
        send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/ca$/, name: 'ca', role: null,
      handler: ({ res }) => {
        if (deps.caPem === null) throw httpError('NK_HTTP_NOT_FOUND', 'this coordinator serves plain HTTP and has no CA');
        send(res, 200, deps.caPem, 'application/x-pem-file');
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/enroll$/, name: 'enroll', role: null,
      handler: async ({ req, res }) => {
        const body = await readJson(req, checks.enroll);
        try {
          const { machine, credential } = store.enroll({ token: body.token, identity: body.identity, agentVersion: body.agentVersion });
          fleet.enrolled(machine);
          metrics.enrollments.inc({ result: 'ok' });
          log.info({ machine: machine.name }, 'machine enrolled');
          send(res, 201, { machine: machine.name, credential, heartbeatIntervalMs: deps.heartbeatIntervalMs });
        } catch (err) {
          metrics.enrollments.inc({ result: err instanceof AppError ? err.code : 'error' });
          throw err;
        }
      },
    },
    { method: 'GET', pattern: /^\/v1\/machines$/, name: 'machines', role: 'read-only', handler: ({ res }) => send(res, 200, toMachineList(fleet.list(), clock())) },
    {
      method: 'GET', pattern: new RegExp(`^/v1/machines/${NAME}$`), name: 'machine', role: 'read-only',
      handler: ({ res, params }) => send(res, 200, toMachineObject(machineOr404(params[0] ?? ''), clock())),
    },
    {
      method: 'GET', pattern: new RegExp(`^/v1/machines/${NAME}/events$`), name: 'machine-events', role: 'read-only',
      handler: ({ res, params, url }) => {
        const name = params[0] ?? '';
        machineOr404(name);
        const limitRaw = url.searchParams.get('limit') ?? '50';
        if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1) throw httpError('NK_HTTP_BAD_REQUEST', 'limit must be an integer from 1 to 9999');
        send(res, 200, { kind: 'EventList', items: store.machineEvents(name, Number(limitRaw)).map(toEventObject) });
      },
    },
    {
      method: 'POST', pattern: new RegExp(`^/v1/machines/${NAME}/revoke$`), name: 'machine-revoke', role: 'admin',
      handler: ({ res, params }) => {
        const name = params[0] ?? '';
        store.revokeMachine(name);
        fleet.revoked(name);
        log.warn({ machine: name }, 'machine revoked');
        send(res, 200, toMachineObject(machineOr404(name), clock()));
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/tokens$/, name: 'token-create', role: 'admin',
      handler: async ({ req, res }) => {
        const body = await readJson(req, checks.token);
        const { token, record } = store.createToken({
          ttlMs: (body.ttlSeconds ?? 3600) * 1000,
          maxUses: body.uses ?? 1,
          description: body.description ?? '',
        });
        log.info({ tokenId: record.id, uses: record.maxUses }, 'bootstrap token created');
        send(res, 201, { token, id: record.id, expiresAt: new Date(record.expiresAt).toISOString(), uses: record.maxUses, caCertHash: deps.caHash });
      },
    },
    { method: 'GET', pattern: /^\/v1\/tokens$/, name: 'tokens', role: 'read-only', handler: ({ res }) => send(res, 200, { kind: 'TokenList', items: store.listTokens().map((t) => toTokenObject(t)) }) },
    {
      method: 'DELETE', pattern: /^\/v1\/tokens\/([a-z0-9]{6})$/, name: 'token-revoke', role: 'admin',
      handler: ({ res, params }) => {
        store.revokeToken(params[0] ?? '');
        send(res, 200, { id: params[0], revoked: true });
      },
    },
  ];

  const authorize = (req: IncomingMessage, role: ApiRole): void => {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer (\S{1,512})$/.exec(h) : null;
    if (m?.[1] === undefined) throw httpError('NK_AUTH_CREDENTIAL_MISSING', 'this endpoint needs an API credential: Authorization: Bearer <credential>');
    const cred = store.authenticateApi(m[1]);
    if (role === 'admin' && cred.role !== 'admin') throw httpError('NK_AUTH_FORBIDDEN', 'this endpoint needs an admin credential; yours is read-only');
  };

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://coordinator');
    const candidates = routes.filter((r) => r.pattern.test(url.pathname));
    const route = candidates.find((r) => r.method === req.method);
    const name = route?.name ?? 'unmatched';
    res.on('finish', () => metrics.apiRequests.inc({ route: name, status: String(res.statusCode) }));
    void (async () => {
      if (route === undefined) {
        throw candidates.length > 0
          ? httpError('NK_HTTP_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`)
          : httpError('NK_HTTP_NOT_FOUND', `no such endpoint: ${url.pathname}`);
      }
      if (route.role !== null) authorize(req, route.role);
      const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map((p) => decodeURIComponent(p));
      await route.handler({ req, res, params, url });
    })().catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof AppError) {
        const status = STATUS_BY_CODE[err.code] ?? (err.code.startsWith('NK_STORE_') ? 503 : err.code.endsWith('_NOT_FOUND') ? 404 : 400);
        send(res, status, { code: err.code, message: err.message });
        return;
      }
      log.error({ err, route: name }, 'API request failed');
      send(res, 500, { code: 'NK_INTERNAL', message: 'internal error; see the coordinator log' });
    });
  };
}
