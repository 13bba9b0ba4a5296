/**
 * Pull-mode registration with a host cluster, as kubeadm joins a node:
 *   1. the host's CA: from the given kubeconfig, or read unverified and anonymously
 *      from the host's public cluster-info; trusted only if it matches the pinned hash,
 *      and the server must prove it holds a certificate that CA issued;
 *   2. only then, over a connection verified against that CA, the bootstrap token
 *      (least privilege: it may only do step 2) is traded for a short-lived token of
 *      the member's own ServiceAccount (TokenRequest API). The token is never sent
 *      before the pin is checked: whoever answers the unverified read may be anyone;
 *   3. the registration is kept in the data dir (0600, written durably);
 *   4. before the token expires, the member asks for a fresh one with the one it
 *      holds: credentials rotate without a restart.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { AppError, caCertHash, writeFileDurable } from '@nodekeeper/common';
import { hostError, KubeClients, type KubeTarget } from './kube-client.ts';
import { checkClusterName, MEMBER_SERVICE_ACCOUNT, memberNamespace, parseBootstrapToken } from './names.ts';

/** What a registered member keeps about its host. */
export interface HostRegistration {
  readonly cluster: string;
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
  /** When the host said the token expires (RFC 3339). */
  readonly tokenExpires: string;
  readonly tokenIssued: string;
  readonly registeredAt: string;
  readonly provider: string | null;
  readonly region: string | null;
  readonly zone: string | null;
}

export function loadRegistration(file: string): HostRegistration | null {
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as HostRegistration;
    if (typeof r.cluster !== 'string' || typeof r.server !== 'string' || typeof r.token !== 'string' || typeof r.caPem !== 'string') throw new Error('missing fields');
    return r;
  } catch (err) {
    throw new AppError('NK_HOST_REGISTRATION_CORRUPT', `host registration ${file} is unreadable (${(err as Error).message}); move it aside and register again`, { cause: err });
  }
}

export const saveRegistration = (file: string, r: HostRegistration) => writeFileDurable(file, `${JSON.stringify(r, null, 2)}\n`, 0o600);
export const forgetRegistration = (file: string) => rmSync(file, { force: true });

interface Fetched { status: number; body: string; peer: X509Certificate | null }

/** Bounds of the unverified cluster-info read: it is a small ConfigMap. */
const DISCOVERY_MAX_BYTES = 1 << 20;
const DISCOVERY_TIMEOUT_MS = 10_000;

/**
 * An anonymous GET that does not verify the server yet (discovery), bounded in size and
 * time. It carries no credential: the server is not known to be the host until the CA
 * it serves matches the pin and its certificate was issued by that CA.
 */
function getUnverified(url: URL): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    // agent: false: a fresh connection and TLS session, so the peer certificate is always there to check.
    const req = https.get(url, { agent: false, rejectUnauthorized: false, timeout: DISCOVERY_TIMEOUT_MS }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerX509Certificate?.() ?? null;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > DISCOVERY_MAX_BYTES) req.destroy(new Error(`cluster-info is larger than ${DISCOVERY_MAX_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), peer }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${DISCOVERY_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

/** Checks a CA against the pin; throws NK_HOST_CA_MISMATCH naming both hashes. */
export function checkCaPin(caPem: string, pin: string): void {
  let hash: string;
  try {
    hash = caCertHash(caPem);
  } catch (err) {
    throw new AppError('NK_HOST_CA_MISMATCH', 'the host CA is not a valid PEM certificate', { cause: err });
  }
  if (hash !== pin) throw new AppError('NK_HOST_CA_MISMATCH', `the host's CA hash is ${hash}, not the pinned ${pin}: refusing to trust it`);
}

/** Reads the host's public cluster-info anonymously and returns its CA, if it matches the pin. */
export async function discoverHostCa(server: string, pin: string): Promise<string> {
  const url = new URL('/api/v1/namespaces/kube-public/configmaps/cluster-info', server);
  let res: Fetched;
  try {
    res = await getUnverified(url);
  } catch (err) {
    throw new AppError('NK_HOST_UNREACHABLE', `cannot reach the host at ${url.origin}: ${(err as Error).message}`, { cause: err });
  }
  if (res.status === 401 || res.status === 403) {
    throw new AppError('NK_HOST_CA_DISCOVERY_FAILED', `GET kube-public/cluster-info answered ${res.status} to an anonymous read: run nkctl host install (again) on the host, or register with --host-kubeconfig holding the host CA`);
  }
  if (res.status !== 200) throw new AppError('NK_HOST_CA_DISCOVERY_FAILED', `GET kube-public/cluster-info answered ${res.status}; was nkctl host install run on the host?`);
  let caPem: string;
  try {
    const cm = JSON.parse(res.body) as { data?: { kubeconfig?: string } };
    const kubeconfig = parseYaml(cm.data?.kubeconfig ?? '') as { clusters?: { cluster?: { 'certificate-authority-data'?: string } }[] };
    caPem = Buffer.from(kubeconfig.clusters?.[0]?.cluster?.['certificate-authority-data'] ?? '', 'base64').toString('utf8');
  } catch (err) {
    throw new AppError('NK_HOST_CA_DISCOVERY_FAILED', 'the host cluster-info has no readable kubeconfig', { cause: err });
  }
  checkCaPin(caPem, pin);
  if (res.peer === null || !res.peer.checkIssued(new X509Certificate(caPem))) {
    throw new AppError('NK_HOST_CA_MISMATCH', "the host's serving certificate was not issued by the pinned CA");
  }
  return caPem;
}

/** Asks the host for a token of the member's ServiceAccount, with `token` (bootstrap or current). */
export async function requestMemberToken(t: KubeTarget, cluster: string, expirationSeconds: number): Promise<{ token: string; expires: string }> {
  const api = KubeClients.of(t).core;
  try {
    const res = await api.createNamespacedServiceAccountToken({
      name: MEMBER_SERVICE_ACCOUNT,
      namespace: memberNamespace(cluster),
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds } },
    });
    const token = res.status?.token;
    if (!token) throw new AppError('NK_HOST_API_ERROR', 'the host answered a TokenRequest without a token');
    const expires = res.status?.expirationTimestamp;
    return { token, expires: (expires instanceof Date ? expires : new Date(expires ?? Date.now() + expirationSeconds * 1000)).toISOString() };
  } catch (err) {
    throw hostError(`request a token for ${memberNamespace(cluster)}/${MEMBER_SERVICE_ACCOUNT}`, err);
  }
}

export interface RegisterRequest {
  readonly cluster: string;
  readonly server: string;
  /** The host CA when the caller has it (from a kubeconfig); otherwise discovered. */
  readonly caPem: string | null;
  readonly caHash: string;
  readonly bootstrapToken: string;
  readonly tokenTtlSeconds: number;
  readonly provider?: string | null;
  readonly region?: string | null;
  readonly zone?: string | null;
  readonly now: number;
}

/** Steps 1 and 2: returns the registration to keep (the caller saves it). */
export async function register(req: RegisterRequest): Promise<HostRegistration> {
  const cluster = checkClusterName(req.cluster);
  parseBootstrapToken(req.bootstrapToken);
  let server: URL;
  try {
    server = new URL(req.server);
    if (server.protocol !== 'https:') throw new Error('not https');
  } catch {
    throw new AppError('NK_HOST_KUBECONFIG_INVALID', `host server "${req.server.slice(0, 200)}" is not an https:// URL`);
  }
  let caPem: string;
  if (req.caPem !== null) {
    checkCaPin(req.caPem, req.caHash);
    caPem = req.caPem;
  } else {
    caPem = await discoverHostCa(server.origin, req.caHash);
  }
  const { token, expires } = await requestMemberToken({ server: server.origin, caPem, token: req.bootstrapToken }, cluster, req.tokenTtlSeconds);
  const at = new Date(req.now).toISOString();
  return {
    cluster, server: server.origin, caPem, token, tokenExpires: expires, tokenIssued: at, registeredAt: at,
    provider: req.provider ?? null, region: req.region ?? null, zone: req.zone ?? null,
  };
}

/** When to ask for a fresh token: at 80 % of its lifetime (wall clock, as the host judges expiry). */
export function rotationDue(r: HostRegistration, now: number): boolean {
  const issued = Date.parse(r.tokenIssued);
  const expires = Date.parse(r.tokenExpires);
  return now >= issued + (expires - issued) * 0.8;
}
