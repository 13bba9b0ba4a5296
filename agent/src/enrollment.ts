/**
 * First contact with the coordinator, kubeadm-style:
 * 1. discover the coordinator's CA over TLS without trusting it yet, and accept it only
 *    if the sha256 of its public key matches the pin the operator gave
 *    (--discovery-ca-hash), and the server proved it holds a certificate that CA issued;
 * 2. present the bootstrap token once, over TLS verified against that CA, and receive a
 *    per-machine credential, kept mode 0600 in the state dir. The token is not kept.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { AppError, caCertHash, writeFileDurable } from '@nodekeeper/common';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { http } from './node-http.ts';

const REQUEST_TIMEOUT_MS = 15_000;
const MAX_RESPONSE_BYTES = 256 * 1024;

export interface AgentState {
  /** The machine credential, `nkm.<id>.<secret>`. */
  readonly credential: string;
  /** PEM of the CA to verify the coordinator with; null for an insecure (http) setup. */
  readonly caPem: string | null;
}

const files = (stateDir: string) => ({ credential: join(stateDir, 'credential'), ca: join(stateDir, 'ca.crt') });

/** Reads the saved credential and CA, or null when the agent has not enrolled yet. */
export function loadState(stateDir: string): AgentState | null {
  const f = files(stateDir);
  if (!existsSync(f.credential)) return null;
  const credential = readFileSync(f.credential, 'utf8').trim();
  if (!/^nkm\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(credential)) {
    throw new AppError('NK_AGENT_STATE_CORRUPT', `${f.credential} does not hold a machine credential; remove it and enroll again with a new token`);
  }
  return { credential, caPem: existsSync(f.ca) ? readFileSync(f.ca, 'utf8') : null };
}

/** Saves the credential (mode 0600) and the CA durably, replacing any earlier ones. */
export async function saveState(stateDir: string, state: AgentState): Promise<void> {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  if (state.caPem !== null) await writeFileDurable(files(stateDir).ca, state.caPem, 0o644);
  await writeFileDurable(files(stateDir).credential, `${state.credential}\n`, 0o600);
}

interface Response {
  status: number;
  body: string;
  peerCertificatePem: string | null;
}

function request(url: URL, opts: { method: string; ca?: string; insecureTls?: boolean; body?: unknown }): Promise<Response> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      {
        method: opts.method,
        timeout: REQUEST_TIMEOUT_MS,
        headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        ...(url.protocol === 'https:' ? { ca: opts.ca, rejectUnauthorized: opts.insecureTls !== true } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const socket = res.socket as TLSSocket;
        const peer = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), peerCertificatePem: peer?.toString() ?? null }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const unreachable = (url: URL, err: unknown) =>
  new AppError('NK_AGENT_COORDINATOR_UNREACHABLE', `cannot reach the coordinator at ${url.origin}: ${(err as Error).message}`, { cause: err });

/** Step 1: the coordinator's CA, accepted only if it matches the pin. */
export async function discoverCa(server: string, pin: string): Promise<string> {
  const url = new URL('/v1/ca', server);
  let res: Response;
  try {
    res = await request(url, { method: 'GET', insecureTls: true });
  } catch (err) {
    throw unreachable(url, err);
  }
  if (res.status !== 200) throw new AppError('NK_AGENT_CA_DISCOVERY_FAILED', `GET ${url.pathname} answered ${res.status}`);
  let hash: string;
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(res.body);
    hash = caCertHash(res.body);
  } catch (err) {
    throw new AppError('NK_AGENT_CA_DISCOVERY_FAILED', 'the coordinator did not serve a valid CA certificate', { cause: err });
  }
  if (hash !== pin) {
    throw new AppError('NK_AGENT_CA_PIN_MISMATCH', `the coordinator's CA hash is ${hash}, not the pinned ${pin}: refusing to trust it`);
  }
  if (res.peerCertificatePem === null || !new X509Certificate(res.peerCertificatePem).checkIssued(ca)) {
    throw new AppError('NK_AGENT_CA_PIN_MISMATCH', "the server's certificate was not issued by the pinned CA");
  }
  return res.body;
}

/** Step 2: trade the bootstrap token for this machine's credential. */
export async function enroll(
  server: string,
  caPem: string | null,
  token: string,
  identity: MachineIdentity,
  agentVersion: string,
): Promise<{ machine: string; credential: string }> {
  const url = new URL('/v1/enroll', server);
  let res: Response;
  try {
    res = await request(url, { method: 'POST', ...(caPem === null ? {} : { ca: caPem }), body: { token, identity, agentVersion } });
  } catch (err) {
    throw unreachable(url, err);
  }
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    // handled below: a non-JSON answer is a failed enrollment either way
  }
  if (res.status !== 201 || typeof body['credential'] !== 'string' || typeof body['machine'] !== 'string') {
    const code = typeof body['code'] === 'string' ? body['code'] : 'NK_AGENT_ENROLLMENT_FAILED';
    const message = typeof body['message'] === 'string' ? body['message'] : `enrollment answered HTTP ${res.status}`;
    throw new AppError(code, `enrollment refused: ${message}`, { context: { status: res.status } });
  }
  return { machine: body['machine'], credential: body['credential'] };
}
