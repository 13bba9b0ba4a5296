/**
 * Routes for machines, tokens, enrollment, the CA and health: the foundation's API.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '@nodekeeper/common';
import { ChallengeBody, EnrollBody, MachinePackagesBody, TokenCreateBody, type Challenge, type Enrolled, type EventList, type TokenCreated, type TokenList } from '@nodekeeper/api';
import { NonceBook, NONCE_TTL_MS } from './enroll-nonces.ts';
import type { PackageOverride } from '../store/types.ts';
import { toEventObject, toMachineList, toMachineObject, tokenObject } from '../api/objects.ts';
import { manifestFor } from '../packages/manifests.ts';
import { checkManifestAtApply, coordinatorAllowList } from '../packages/manifest-policy.ts';
import { NAME, clientAddress, httpError, listVersion, readJson, refuseSkew, send, watchOf, type ApiDeps, type Route } from './http-util.ts';
import { parseListQuery, matchesFilter } from '../watch/query.ts';
import { serveWatch } from '../watch/http-sink.ts';

// The bodies are the contract's (@nodekeeper/api): what /openapi/v3 documents is what is checked here.
const checks = { enroll: TypeCompiler.Compile(EnrollBody), challenge: TypeCompiler.Compile(ChallengeBody), token: TypeCompiler.Compile(TokenCreateBody), packages: TypeCompiler.Compile(MachinePackagesBody) };

/** The Machine object the API serves for one fleet record (get, list and watch alike). */
export function machineObjectOf(deps: Pick<ApiDeps, 'store' | 'machineStatusExtras'>, m: Parameters<typeof toMachineObject>[0], now: number, meta = deps.store.objectMeta('machine', m.name)) {
  const o = toMachineObject(m, now, meta);
  return { ...o, status: { ...o.status, ...(deps.machineStatusExtras?.(m.name) ?? {}) } };
}

/** Every record's Machine object, as machineObjectOf makes it, with one query for all their metadata. */
export function machineObjectsOf(deps: Pick<ApiDeps, 'store' | 'machineStatusExtras'>, records: readonly Parameters<typeof toMachineObject>[0][], now: number) {
  const metas = deps.store.objectMetas('machine');
  return records.map((m) => machineObjectOf(deps, m, now, metas.get(m.name) ?? null));
}

export function machineRoutes(deps: ApiDeps): Route[] {
  const { store, fleet, clock, metrics, log } = deps;
  const nonces = new NonceBook();
  const extras = deps.machineStatusExtras ?? (() => ({}));
  const machineObject = (m: Parameters<typeof toMachineObject>[0], now: number) => machineObjectOf(deps, m, now);
  const machineList = (ms: Parameters<typeof toMachineList>[0], now: number) => {
    // One query for every machine's metadata: the fleet view keeps records, the store keeps versions.
    const l = toMachineList(ms, now, store.objectMetas('machine'));
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
        const outage = deps.storeHealth?.outage ?? null;
        if (outage !== null) {
          // Reads are still served; writes are refused until the store takes them again.
          send(res, 503, `store unavailable since ${new Date(outage.since).toISOString()}: ${outage.lastCode}: ${outage.lastMessage} (${outage.failures} write(s) refused; retrying)\n`, 'text/plain');
          return;
        }
        send(res, 200, 'ok\n', 'text/plain');
      },
    },
    {
      method: 'GET', pattern: /^\/metrics$/, name: 'metrics', access: null,
      handler: async ({ res }) => {
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
      // Step one of re-enrollment by proof of the machine key: a single-use nonce bound to
      // the name. Answered for any name, so it tells nobody which machines exist.
      method: 'POST', pattern: /^\/v1\/enroll\/challenge$/, name: 'enroll-challenge', access: null,
      handler: async ({ req, res }) => {
        deps.authFailures?.check(req);
        const body = await readJson(req, checks.challenge);
        send(res, 200, { nonce: nonces.issue(body.machine, clock()), expiresInMs: NONCE_TTL_MS } satisfies Challenge);
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/enroll$/, name: 'enroll', access: null,
      handler: async ({ req, res }) => {
        deps.authFailures?.check(req);
        const body = await readJson(req, checks.enroll);
        try {
          // The nonce is spent whatever happens next: a proof is good for one try.
          if (body.proof !== undefined && !nonces.take(body.proof.nonce, body.identity.hostname, clock())) {
            throw new AppError('NK_ENROLL_PROOF_INVALID', 'the re-enrollment nonce is unknown, used or expired: ask POST /v1/enroll/challenge for another');
          }
          const { machine, credential } = store.enroll({
            identity: body.identity,
            agentVersion: body.agentVersion,
            publicKey: body.publicKey,
            credentialTtlMs: deps.machineCredentialTtlMs,
            ...(body.token === undefined ? {} : { token: body.token }),
            ...(body.proof === undefined ? {} : { proof: body.proof }),
          });
          fleet.enrolled(machine);
          metrics.enrollments.inc({ result: 'ok' });
          log.info({ machine: machine.name, via: body.proof === undefined ? 'token' : 'key' }, 'machine enrolled');
          send(res, 201, { machine: machine.name, credential, heartbeatIntervalMs: deps.heartbeatIntervalMs, credentialExpiresInMs: deps.machineCredentialTtlMs } satisfies Enrolled);
        } catch (err) {
          const code = err instanceof AppError ? err.code : 'error';
          metrics.enrollments.inc({ result: code });
          if (code.startsWith('NK_TOKEN_') || code.startsWith('NK_ENROLL_') || code === 'NK_MACHINE_ALREADY_ENROLLED') deps.authFailures?.failed(req);
          log.warn({ code, hostname: body.identity.hostname, remote: clientAddress(req) }, 'enrollment refused');
          throw err;
        }
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/machines$/, name: 'machines', access: 'read-only',
      handler: ({ req, res, url }) => {
        const q = parseListQuery(url, 'labelSelector');
        if (q.watch) return serveWatch(watchOf(deps).hub, 'machines', q, req, res);
        const resourceVersion = listVersion(deps);
        const list = machineList(fleet.list().filter((m) => matchesFilter(q.filter, m.name, m.labels)), clock());
        send(res, 200, { ...list, metadata: { resourceVersion } });
      },
    },
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
        send(res, 200, { kind: 'EventList', items: store.machineEvents(name, Number(limitRaw)).map(toEventObject) } satisfies EventList);
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
      method: 'POST', pattern: new RegExp(`^/v1/machines/${NAME}/reset$`), name: 'machine-reset', access: 'admin',
      handler: ({ res, params }) => {
        const name = params[0] ?? '';
        const record = store.resetMachine(name, 'an admin');
        // Its connections (welcomed or not) go now; the fleet view keeps its state.
        fleet.enrolled(record);
        log.warn({ machine: name }, 'machine reset: the next bootstrap-token enrollment of this name becomes this machine');
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
        const cpv = store.getClusterPackageVersion()?.packages ?? [];
        for (const p of body.packages) {
          if (overrides[p.name] !== undefined) throw httpError('NK_HTTP_BAD_REQUEST', `package "${p.name}" is pinned twice`);
          // A pin installs with the ClusterPackageVersion's manifest (or the built-in one): held to the same rules.
          const own = cpv.findIndex((c) => c.name === p.name);
          const manifest = manifestFor(p.name, cpv[own]?.manifest);
          if (manifest !== null) checkManifestAtApply(manifest, deps.installAllowList ?? coordinatorAllowList(), own >= 0 && cpv[own]?.manifest !== undefined ? `clusterpackageversion.spec.packages[${own}].manifest` : `builtin.${p.name}`);
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
        const created: TokenCreated = { token, id: record.id, expiresAt: new Date(record.expiresAt).toISOString(), uses: record.maxUses, caCertHash: deps.caHash };
        send(res, 201, created);
      },
    },
    { method: 'GET', pattern: /^\/v1\/tokens$/, name: 'tokens', access: 'read-only', handler: ({ res }) => {
      const metas = store.objectMetas('token');
      send(res, 200, { kind: 'TokenList', items: store.listTokens().map((t) => tokenObject(t, metas.get(t.id) ?? null, clock())) } satisfies TokenList);
    } },
    {
      method: 'DELETE', pattern: /^\/v1\/tokens\/([a-z0-9]{6})$/, name: 'token-revoke', access: 'admin',
      handler: ({ res, params }) => {
        store.revokeToken(params[0] ?? '');
        send(res, 200, { id: params[0], revoked: true });
      },
    },
  ];
}
