/**
 * Routes for machines, tokens, enrollment, the CA and health: the foundation's API.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '@nodekeeper/common';
import { ArtifactRef, MachineIdentity, PackageName, PackageVersion } from '@nodekeeper/protocol';
import type { PackageOverride } from '../store/types.ts';
import { toEventObject, toMachineList, toMachineObject, toTokenObject } from '../api/objects.ts';
import { NAME, httpError, readJson, refuseSkew, send, type ApiDeps, type Route } from './http-util.ts';

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
const PackagesBody = Type.Object(
  {
    packages: Type.Array(
      Type.Object(
        {
          name: PackageName,
          version: PackageVersion,
          artifact: Type.Optional(ArtifactRef),
          parameters: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }), { maxProperties: 64 })),
        },
        { additionalProperties: false },
      ),
      { maxItems: 64 },
    ),
  },
  { additionalProperties: false },
);
const checks = { enroll: TypeCompiler.Compile(EnrollBody), token: TypeCompiler.Compile(TokenBody), packages: TypeCompiler.Compile(PackagesBody) };

export function machineRoutes(deps: ApiDeps): Route[] {
  const { store, fleet, clock, metrics, log } = deps;
  const extras = deps.machineStatusExtras ?? (() => ({}));
  const machineObject = (m: Parameters<typeof toMachineObject>[0], now: number) => {
    const o = toMachineObject(m, now);
    return { ...o, status: { ...o.status, ...extras(m.name) } };
  };
  const machineList = (ms: Parameters<typeof toMachineList>[0], now: number) => {
    const l = toMachineList(ms, now);
    return { ...l, items: l.items.map((o) => ({ ...o, status: { ...o.status, ...extras(o.metadata.name) } })) };
  };
  const machineOr404 = (name: string) => {
    const m = fleet.get(name);
    if (m === undefined) throw httpError('NK_MACHINE_NOT_FOUND', `machine "${name}" not found`);
    return m;
  };

  return [
    { method: 'GET', pattern: /^\/healthz$/, name: 'healthz', access: null, handler: ({ res }) => send(res, 200, 'ok\n', 'text/plain') },
    {
      method: 'GET', pattern: /^\/readyz$/, name: 'readyz', access: null,
      handler: ({ res }) => {
        store.listTokens(); // a cheap query: the store answers
        send(res, 200, 'ok\n', 'text/plain');
      },
    },
    {
      method: 'GET', pattern: /^\/metrics$/, name: 'metrics', access: null,
      handler: async ({ res }) => {
        const counts: Record<string, number> = { Pending: 0, Ready: 0, NotReady: 0, Unknown: 0 };
        for (const m of fleet.list()) counts[m.liveness.state] = (counts[m.liveness.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) metrics.machines.set({ state }, n);
        send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/ca$/, name: 'ca', access: null,
      handler: ({ res }) => {
        if (deps.caPem === null) throw httpError('NK_HTTP_NOT_FOUND', 'this coordinator serves plain HTTP and has no CA');
        send(res, 200, deps.caPem, 'application/x-pem-file');
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/enroll$/, name: 'enroll', access: null,
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
    { method: 'GET', pattern: /^\/v1\/machines$/, name: 'machines', access: 'read-only', handler: ({ res }) => send(res, 200, machineList(fleet.list(), clock())) },
    {
      method: 'GET', pattern: new RegExp(`^/v1/machines/${NAME}$`), name: 'machine', access: 'read-only',
      handler: ({ res, params }) => send(res, 200, machineObject(machineOr404(params[0] ?? ''), clock())),
    },
    {
      method: 'GET', pattern: new RegExp(`^/v1/machines/${NAME}/events$`), name: 'machine-events', access: 'read-only',
      handler: ({ res, params, url }) => {
        const name = params[0] ?? '';
        machineOr404(name);
        const limitRaw = url.searchParams.get('limit') ?? '50';
        if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1) throw httpError('NK_HTTP_BAD_REQUEST', 'limit must be an integer from 1 to 9999');
        send(res, 200, { kind: 'EventList', items: store.machineEvents(name, Number(limitRaw)).map(toEventObject) });
      },
    },
    {
      method: 'POST', pattern: new RegExp(`^/v1/machines/${NAME}/revoke$`), name: 'machine-revoke', access: 'admin',
      handler: ({ res, params }) => {
        const name = params[0] ?? '';
        store.revokeMachine(name);
        fleet.revoked(name);
        log.warn({ machine: name }, 'machine revoked');
        send(res, 200, machineObject(machineOr404(name), clock()));
      },
    },
    {
      method: 'PUT', pattern: new RegExp(`^/v1/machines/${NAME}/packages$`), name: 'machine-packages', access: 'admin',
      handler: async ({ req, res, params }) => {
        const name = params[0] ?? '';
        machineOr404(name);
        const body = await readJson(req, checks.packages);
        const overrides: Record<string, PackageOverride> = {};
        for (const p of body.packages) {
          if (overrides[p.name] !== undefined) throw httpError('NK_HTTP_BAD_REQUEST', `package "${p.name}" is pinned twice`);
          overrides[p.name] = { version: p.version, ...(p.artifact === undefined ? {} : { artifact: p.artifact }), ...(p.parameters === undefined ? {} : { parameters: p.parameters }) };
        }
        refuseSkew(body.packages, deps, `the pin of ${name}`);
        fleet.overridesChanged(store.setPackageOverrides(name, overrides));
        send(res, 200, machineObject(machineOr404(name), clock()));
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/tokens$/, name: 'token-create', access: 'admin',
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
    { method: 'GET', pattern: /^\/v1\/tokens$/, name: 'tokens', access: 'read-only', handler: ({ res }) => send(res, 200, { kind: 'TokenList', items: store.listTokens().map((t) => toTokenObject(t)) }) },
    {
      method: 'DELETE', pattern: /^\/v1\/tokens\/([a-z0-9]{6})$/, name: 'token-revoke', access: 'admin',
      handler: ({ res, params }) => {
        store.revokeToken(params[0] ?? '');
        send(res, 200, { id: params[0], revoked: true });
      },
    },
  ];
}
