/**
 * Enrollment by hand, for tests that act as an agent without running one: a fresh
 * machine key's public half, and POST /v1/enroll over the coordinator's CA.
 */
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { rawPublicKey } from '@nodekeeper/common';
import type { MachineIdentity } from '@nodekeeper/protocol';

export const newMachinePublicKey = (): string => rawPublicKey(generateKeyPairSync('ed25519').publicKey);

/** Enrolls `identity` with `token` (and a fresh machine key); the answer's status and body. An http: url (a coordinator run with --insecure) takes no CA. */
export function enrollByHand(url: string, ca: string, token: string, identity: MachineIdentity): Promise<{ status: number; body: { credential?: string; code?: string } }> {
  return new Promise((resolve, reject) => {
    const target = new URL('/v1/enroll', url);
    const request = target.protocol === 'http:' ? http.request : https.request;
    const req = request(target, { method: 'POST', ...(target.protocol === 'http:' ? {} : { ca }), headers: { 'Content-Type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: t ? JSON.parse(t) : {} }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ token, identity, agentVersion: 'test', publicKey: newMachinePublicKey() }));
  });
}
