/**
 * A small real HTTP(S) server for nkctl's tests that speaks the API contract in
 * docs/nkctl.md ("API") from fixture objects: bearer credentials with admin and
 * read-only roles, the documented bodies and error codes. It is test support, not the
 * coordinator, but it holds nkctl to the same contract the coordinator implements.
 */
// @peculiar/x509 (through tsyringe) needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import http from 'node:http';
import https from 'node:https';
import { createHash, webcrypto } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';
import semver from 'semver';
import type { Event as EventObject, Token as TokenObject } from '@nodekeeper/api';
import type { MachineObject } from '../api/objects.ts';
import { API_VERSION } from '../api/objects.ts';
import { handleRemediation, type FixtureRemediation } from './fixture-remediation.ts';
import { actOnFixtureRollout, advanceFixtureRollout, fixtureRolloutObject, newFixtureRollout, type FixtureRollout } from './fixture-rollouts.ts';
import type { Artifact as ArtifactObject, ClusterPackageVersion as ClusterPackageVersionObject, PackageSummary } from '@nodekeeper/api';
import { ROLLOUT_ACTIONS, type RolloutAction } from '@nodekeeper/api';
import type { RolloutSpec } from './fixture-rollouts.ts';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  readonly body: unknown;
}

export interface FixtureData {
  machines: MachineObject[];
  events: Record<string, EventObject[]>;
  tokens: TokenObject[];
  /** Bearer credential -> role. */
  credentials: Record<string, 'admin' | 'read-only'>;
  caCertHash: string | null;
  artifacts?: ArtifactObject[];
  cpv?: ClusterPackageVersionObject;
  packages?: PackageSummary[];
  rollouts?: FixtureRollout[];
  /** Versions whose installs fail their health check in the rollout simulation. */
  failVersions?: string[];
  /** Uploads over this many bytes are refused with 413 before the body is read. */
  maxArtifactBytes?: number;
  /** Remediation state; without it the remediation routes are unknown (an older coordinator). */
  remediation?: FixtureRemediation;
}

/** What an artifact upload delivered, byte for byte. */
export interface RecordedUpload {
  readonly package: string;
  readonly version: string;
  readonly bytes: Buffer;
  readonly signature: string | undefined;
  readonly contentType: string | undefined;
}

export interface FixtureServer {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  readonly uploads: RecordedUpload[];
  readonly data: FixtureData;
  close(): Promise<void>;
}

export interface TestPki {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A throwaway CA and a server certificate for 127.0.0.1 signed by it. */
export async function makeTestPki(): Promise<TestPki> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 86_400_000);
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=nkctl test CA',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=127.0.0.1',
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
  });
  return {
    caPem: ca.toString('pem') + '\n',
    certPem: leaf.toString('pem') + '\n',
    keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey)),
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function apiError(res: http.ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { code, message });
}

/** The bearer credential's role, or an error sent (and undefined). */
function authorize(data: FixtureData, req: http.IncomingMessage, res: http.ServerResponse): 'admin' | 'read-only' | undefined {
  const auth = req.headers.authorization ?? '';
  const role = auth.startsWith('Bearer ') ? data.credentials[auth.slice(7)] : undefined;
  if (role === undefined) apiError(res, 401, 'NK_AUTH_CREDENTIAL_INVALID', 'missing or unknown API credential');
  else if ((req.method ?? 'GET') !== 'GET' && role !== 'admin') apiError(res, 403, 'NK_AUTH_FORBIDDEN', `role ${role} may not ${req.method ?? ''}`);
  else return role;
  return undefined;
}

/** PUT /v1/artifacts: the body streamed, hashed and kept for the test to compare. */
function receiveArtifact(data: FixtureData, uploads: RecordedUpload[], server: () => string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const fail = (status: number, code: string, message: string) => {
    // Answer before reading the body, and drain it, as the coordinator does for 413
    // (closing instead would race the client's writes: EPIPE before it reads the answer).
    req.resume();
    apiError(res, status, code, message);
  };
  if (authorize(data, req, res) === undefined) {
    req.resume();
    return;
  }
  const url = new URL(req.url ?? '/', 'http://x');
  const pkg = url.searchParams.get('package') ?? '';
  const version = url.searchParams.get('version') ?? '';
  if (!/^[a-z][a-z0-9-]*$/.test(pkg) || semver.valid(semver.coerce(version)) === null) return fail(400, 'NK_HTTP_BAD_REQUEST', 'package and version query parameters are required');
  const declared = Number(req.headers['content-length']);
  const max = data.maxArtifactBytes ?? 64 * 1024 * 1024;
  if (declared > max) return fail(413, 'NK_ARTIFACT_TOO_LARGE', `artifact of ${declared} bytes exceeds the limit of ${max}`);
  const signature = req.headers['x-nodekeeper-signature'];
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => {
    hash.update(c);
    chunks.push(c);
  });
  req.on('end', () => {
    const bytes = Buffer.concat(chunks);
    uploads.push({ package: pkg, version, bytes, signature: typeof signature === 'string' ? signature : undefined, contentType: req.headers['content-type'] });
    const digest = hash.digest('hex');
    const artifact: ArtifactObject = {
      kind: 'Artifact', package: pkg, version, sha256: digest, size: bytes.length, signature: typeof signature === 'string' ? signature : null,
      url: `${server()}/v1/artifacts/sha256/${digest}`, createdAt: new Date().toISOString(),
    };
    data.artifacts = [...(data.artifacts ?? []).filter((a) => a.sha256 !== digest), artifact];
    send(res, 201, artifact);
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The checks of POST /v1/rollouts the tests exercise, with the documented codes. */
function checkRollout(data: FixtureData, body: unknown): { status: number; code: string; message: string } | null {
  const invalid = (path: string, why: string) => ({ status: 400, code: 'NK_ROLLOUT_INVALID', message: `invalid Rollout at ${path}: ${why}` });
  if (!isObject(body) || body['kind'] !== 'Rollout' || body['apiVersion'] !== API_VERSION) return invalid('/', 'expected a nodekeeper.io/v1alpha1 Rollout');
  const meta = body['metadata'];
  if (!isObject(meta) || typeof meta['name'] !== 'string') return invalid('/metadata/name', 'required');
  const spec = body['spec'];
  if (!isObject(spec) || !Array.isArray(spec['packages']) || spec['packages'].length === 0) return invalid('/spec/packages', 'must list at least one package');
  if (!isObject(spec['selector'])) return invalid('/spec/selector', 'required');
  if (!isObject(spec['strategy'])) return invalid('/spec/strategy', 'required');
  if ((data.rollouts ?? []).some((r) => r.name === meta['name'])) return { status: 409, code: 'NK_ROLLOUT_EXISTS', message: `rollout "${meta['name']}" already exists` };
  for (const [i, p] of (spec['packages'] as unknown[]).entries()) {
    if (!isObject(p) || typeof p['package'] !== 'string' || typeof p['version'] !== 'string') return invalid(`/spec/packages/${i}`, 'must be {package, version}');
    const { package: pkg, version } = p as { package: string; version: string };
    if (!(data.artifacts ?? []).some((a) => a.package === pkg && a.version === version)) {
      return { status: 400, code: 'NK_ROLLOUT_UNKNOWN_PACKAGE', message: `no artifact for ${pkg} ${version}: push one with nkctl artifact push FILE --package ${pkg} --version ${version}` };
    }
    const desired = data.cpv?.spec.packages.find((x) => x.name === pkg)?.version;
    if (desired !== undefined && spec['allowDowngrade'] !== true && semver.lt(semver.coerce(version) ?? '0.0.0', semver.coerce(desired) ?? '0.0.0')) {
      return { status: 400, code: 'NK_ROLLOUT_DOWNGRADE', message: `${pkg} ${version} is older than the cluster's ${desired}; set allowDowngrade to roll back on purpose` };
    }
  }
  return null;
}

/** Routes of packages, artifacts and rollouts. True when the request was answered. */
function handlePackages(data: FixtureData, method: string, parts: string[], url: URL, body: unknown, res: http.ServerResponse): boolean {
  if (parts[1] === 'artifacts' && parts.length === 2 && method === 'GET') {
    send(res, 200, { kind: 'ArtifactList', items: data.artifacts ?? [] });
    return true;
  }
  if (parts[1] === 'packages' && parts.length === 2 && method === 'GET') {
    send(res, 200, { kind: 'PackageList', items: data.packages ?? [] });
    return true;
  }
  if (parts[1] === 'clusterpackageversion' && parts.length === 2) {
    const empty: ClusterPackageVersionObject = { apiVersion: API_VERSION, kind: 'ClusterPackageVersion', metadata: { name: 'cluster', generation: 0 }, spec: { packages: [] }, status: { observedGeneration: 0, packages: data.packages ?? [] } };
    const cpv = data.cpv ?? empty;
    // The fixture's resourceVersion is its generation: it moves on every (spec) change.
    const withVersion = (c: ClusterPackageVersionObject) => (c.metadata.generation === 0 ? c : { ...c, metadata: { ...c.metadata, resourceVersion: String(c.metadata.generation) } });
    if (method === 'GET') send(res, 200, cpv);
    else if (method === 'PUT') {
      const spec = isObject(body) ? body['spec'] : undefined;
      if (!isObject(body) || body['kind'] !== 'ClusterPackageVersion' || !isObject(spec) || !Array.isArray(spec['packages'])) {
        apiError(res, 400, 'NK_CPV_INVALID', 'invalid ClusterPackageVersion at /spec/packages: required');
      } else if (JSON.stringify(spec) === JSON.stringify(cpv.spec) && cpv.metadata.generation > 0) {
        send(res, 200, cpv);
      } else {
        data.cpv = withVersion({ ...cpv, metadata: { ...cpv.metadata, generation: cpv.metadata.generation + 1 }, spec: spec as ClusterPackageVersionObject['spec'] });
        send(res, cpv.metadata.generation === 0 ? 201 : 200, data.cpv);
      }
    } else return false;
    return true;
  }
  if (parts[1] !== 'rollouts') return false;
  const rollouts = (data.rollouts ??= []);
  if (parts.length === 2 && method === 'GET') {
    send(res, 200, { kind: 'RolloutList', items: rollouts.map(fixtureRolloutObject) });
    return true;
  }
  if (parts.length === 2 && method === 'POST') {
    const bad = checkRollout(data, body);
    if (bad !== null) apiError(res, bad.status, bad.code, bad.message);
    else {
      const obj = body as { metadata: { name: string }; spec: RolloutSpec };
      const r = newFixtureRollout(obj.spec, obj.metadata.name, data.machines, Date.now());
      rollouts.push(r);
      send(res, 201, fixtureRolloutObject(r));
    }
    return true;
  }
  const r = rollouts.find((x) => x.name === parts[2]);
  if (parts.length === 3 && method === 'PUT') {
    // apply: create-or-update; the same spec again is unchanged, packages never change.
    const obj = body as { metadata?: { name?: string }; spec?: RolloutSpec };
    if (r === undefined) {
      const bad = checkRollout(data, body);
      if (bad !== null) apiError(res, bad.status, bad.code, bad.message);
      else {
        const created = newFixtureRollout(obj.spec!, parts[2] ?? '', data.machines, Date.now());
        rollouts.push(created);
        send(res, 201, fixtureRolloutObject(created));
      }
    } else if (JSON.stringify(obj.spec?.packages) !== JSON.stringify(r.spec.packages)) {
      apiError(res, 422, 'NK_ROLLOUT_FIELD_IMMUTABLE', `rollout "${r.name}": spec.packages cannot change after creation`);
    } else if (JSON.stringify(obj.spec) === JSON.stringify(r.spec)) {
      send(res, 200, fixtureRolloutObject(r));
    } else {
      const updated = { ...r, spec: obj.spec!, resourceVersion: (r.resourceVersion ?? 1) + 1 };
      rollouts[rollouts.indexOf(r)] = updated;
      send(res, 200, fixtureRolloutObject(updated));
    }
    return true;
  }
  if (r === undefined) {
    apiError(res, 404, 'NK_ROLLOUT_NOT_FOUND', `rollout "${parts[2] ?? ''}" not found`);
    return true;
  }
  if (parts.length === 3 && method === 'GET') {
    // One step per read, so a watcher sees every phase.
    advanceFixtureRollout(r, data.failVersions ?? [], Date.now());
    send(res, 200, fixtureRolloutObject(r));
  } else if (parts[3] === 'events' && method === 'GET') {
    const limit = Number(url.searchParams.get('limit') ?? '100');
    send(res, 200, { kind: 'EventList', items: r.events.slice(-limit) });
  } else if (parts.length === 4 && method === 'POST' && (ROLLOUT_ACTIONS as readonly string[]).includes(parts[3] ?? '')) {
    const error = actOnFixtureRollout(r, parts[3] as RolloutAction, Date.now());
    if (error !== null) apiError(res, 409, 'NK_ROLLOUT_BAD_TRANSITION', error);
    else send(res, 200, fixtureRolloutObject(r));
  } else return false;
  return true;
}

/** Route one request by the documented contract. */
function handle(data: FixtureData, req: http.IncomingMessage, body: unknown, res: http.ServerResponse): void {
  if (authorize(data, req, res) === undefined) return;
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://x');
  const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const machine = (name: string | undefined) => data.machines.find((m) => m.metadata.name === name);
  const notFound = (name: string | undefined) => apiError(res, 404, 'NK_MACHINE_NOT_FOUND', `machine "${name}" not found`);

  if (parts[0] !== 'v1') return apiError(res, 404, 'NK_HTTP_NOT_FOUND', `no route ${url.pathname}`);
  if (handlePackages(data, method, parts, url, body, res)) return;
  if (data.remediation !== undefined && handleRemediation(data.remediation, data.machines, method, parts, body, (status, b) => send(res, status, b))) return;
  if (parts[1] === 'machines') {
    if (parts.length === 2 && method === 'GET') return send(res, 200, { apiVersion: API_VERSION, kind: 'MachineList', items: data.machines });
    const m = machine(parts[2]);
    if (m === undefined) return notFound(parts[2]);
    if (parts.length === 3 && method === 'GET') return send(res, 200, m);
    if (parts[3] === 'events' && method === 'GET') {
      const limit = Number(url.searchParams.get('limit') ?? '100');
      return send(res, 200, { kind: 'EventList', items: (data.events[m.metadata.name] ?? []).slice(-limit) });
    }
    if (parts[3] === 'revoke' && method === 'POST') {
      const revoked = { ...m, status: { ...m.status, revoked: true as const, revokedTime: new Date().toISOString() } };
      data.machines = data.machines.map((x) => (x === m ? revoked : x));
      return send(res, 200, revoked);
    }
  }
  if (parts[1] === 'tokens') {
    if (parts.length === 2 && method === 'GET') return send(res, 200, { kind: 'TokenList', items: data.tokens });
    if (parts.length === 2 && method === 'POST') {
      const b = body as { ttlSeconds?: unknown; uses?: unknown; description?: unknown } | null;
      if (typeof b?.ttlSeconds !== 'number' || typeof b.uses !== 'number' || typeof b.description !== 'string') {
        return apiError(res, 400, 'NK_HTTP_BAD_REQUEST', 'body must be {ttlSeconds, uses, description}');
      }
      const expiresAt = new Date(Date.now() + b.ttlSeconds * 1000).toISOString();
      return send(res, 201, { token: 'qwerty.0123456789abcdef', id: 'qwerty', expiresAt, uses: b.uses, caCertHash: data.caCertHash });
    }
    if (parts.length === 3 && method === 'DELETE') {
      const t = data.tokens.find((x) => x.id === parts[2]);
      if (t === undefined) return apiError(res, 404, 'NK_TOKEN_NOT_FOUND', `token "${parts[2]}" not found`);
      return send(res, 200, { id: t.id, revoked: true });
    }
  }
  return apiError(res, 404, 'NK_HTTP_NOT_FOUND', `no route ${method} ${url.pathname}`);
}

/** Start a fixture server on 127.0.0.1, on a free port; https when `tls` is given. */
export async function startFixtureServer(data: FixtureData, tls?: TestPki): Promise<FixtureServer> {
  const requests: RecordedRequest[] = [];
  const uploads: RecordedUpload[] = [];
  let base = '';
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method === 'PUT' && (req.url ?? '').split('?')[0] === '/v1/artifacts') {
      requests.push({ method: 'PUT', url: req.url ?? '', authorization: req.headers.authorization, body: null });
      receiveArtifact(data, uploads, () => base, req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        return apiError(res, 400, 'NK_HTTP_BAD_REQUEST', 'body is not JSON');
      }
      requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      handle(data, req, body, res);
    });
  };
  const server = tls === undefined ? http.createServer(listener) : https.createServer({ cert: tls.certPem, key: tls.keyPem }, listener);
  // As the coordinator: an upload too large is refused before its body is invited.
  server.on('checkContinue', (req, res) => {
    const declared = Number(req.headers['content-length']);
    if (declared > (data.maxArtifactBytes ?? 64 * 1024 * 1024)) {
      apiError(res, 413, 'NK_ARTIFACT_TOO_LARGE', `artifact of ${declared} bytes exceeds the limit of ${data.maxArtifactBytes ?? 64 * 1024 * 1024}`);
      return;
    }
    res.writeContinue();
    listener(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  return {
    url: base,
    port,
    requests,
    uploads,
    data,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
