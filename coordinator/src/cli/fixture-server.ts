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
import { webcrypto } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';
import type { EventObject, MachineObject, TokenObject } from '../api/objects.ts';
import { API_VERSION } from '../api/objects.ts';

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
}

export interface FixtureServer {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
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

/** Route one request by the documented contract. */
function handle(data: FixtureData, req: http.IncomingMessage, body: unknown, res: http.ServerResponse): void {
  const auth = req.headers.authorization ?? '';
  const role = auth.startsWith('Bearer ') ? data.credentials[auth.slice(7)] : undefined;
  if (role === undefined) return apiError(res, 401, 'NK_AUTH_CREDENTIAL_INVALID', 'missing or unknown API credential');
  const method = req.method ?? 'GET';
  if (method !== 'GET' && role !== 'admin') return apiError(res, 403, 'NK_AUTH_FORBIDDEN', `role ${role} may not ${method}`);
  const url = new URL(req.url ?? '/', 'http://x');
  const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const machine = (name: string | undefined) => data.machines.find((m) => m.metadata.name === name);
  const notFound = (name: string | undefined) => apiError(res, 404, 'NK_MACHINE_NOT_FOUND', `machine "${name}" not found`);

  if (parts[0] !== 'v1') return apiError(res, 404, 'NK_HTTP_NOT_FOUND', `no route ${url.pathname}`);
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
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    port,
    requests,
    data,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
