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
import { AppError, caCertHash, signEd25519, writeFileDurable } from '@nodekeeper/common';
import { reenrollStatement, type MachineIdentity } from '@nodekeeper/protocol';
import type { MachineKey } from './machine-key.ts';
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

/** Step 2: trade the bootstrap token for this machine's credential, registering its key. */
export async function enroll(
  server: string,
  caPem: string | null,
  token: string,
  identity: MachineIdentity,
  agentVersion: string,
  publicKey: string,
): Promise<{ machine: string; credential: string }> {
  return postEnroll(server, caPem, { token, identity, agentVersion, publicKey });
}

/**
 * Re-enrolls this (already enrolled) machine without a bootstrap token: the coordinator
 * hands out a single-use nonce, and a signature by the machine key over it proves this
 * is the machine that registered that key. For a lost or lapsed credential.
 */
export async function reenrollWithKey(
  server: string,
  caPem: string | null,
  identity: MachineIdentity,
  agentVersion: string,
  key: MachineKey,
): Promise<{ machine: string; credential: string }> {
  const url = new URL('/v1/enroll/challenge', server);
  let res: Response;
  try {
    res = await request(url, { method: 'POST', ...(caPem === null ? {} : { ca: caPem }), body: { machine: identity.hostname } });
  } catch (err) {
    throw unreachable(url, err);
  }
  const body = parseBody(res.body);
  if (res.status !== 200 || typeof body['nonce'] !== 'string') throw refused(res.status, body, 'NK_AGENT_ENROLLMENT_FAILED', 're-enrollment challenge');
  const nonce = body['nonce'];
  const signature = signEd25519(reenrollStatement({ machine: identity.hostname, machineId: identity.machineId, nonce, publicKey: key.publicKey }), key.privateKey);
  return postEnroll(server, caPem, { identity, agentVersion, publicKey: key.publicKey, proof: { nonce, signature } });
}

function parseBody(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {}; // a non-JSON answer is a refusal either way
  }
}

function refused(status: number, body: Record<string, unknown>, fallback: string, what: string): AppError {
  const code = typeof body['code'] === 'string' ? body['code'] : fallback;
  const message = typeof body['message'] === 'string' ? body['message'] : `${what} answered HTTP ${status}`;
  return new AppError(code, `${what} refused: ${message}`, { context: { status } });
}

async function postEnroll(server: string, caPem: string | null, payload: Record<string, unknown>): Promise<{ machine: string; credential: string }> {
  const url = new URL('/v1/enroll', server);
  let res: Response;
  try {
    res = await request(url, { method: 'POST', ...(caPem === null ? {} : { ca: caPem }), body: payload });
  } catch (err) {
    throw unreachable(url, err);
  }
  const body = parseBody(res.body);
  if (res.status !== 201 || typeof body['credential'] !== 'string' || typeof body['machine'] !== 'string') {
    throw refused(res.status, body, 'NK_AGENT_ENROLLMENT_FAILED', 'enrollment');
  }
  return { machine: body['machine'], credential: body['credential'] };
}
