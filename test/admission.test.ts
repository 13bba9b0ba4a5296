/**
 * Admission control on the agents' upgrade path, against a real coordinator process:
 * a crowd arriving at once is admitted at the configured rate, the rest are told
 * 503 NK_PROTO_TRY_AGAIN_LATER with a Retry-After, and agents using the agent's own
 * connection code (which honours Retry-After) all get in soon after. And a session that
 * fails frees its admission slot at once, not when a peer that no longer reads lets the
 * close handshake end.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { createLogger, rawPublicKey } from '@nodekeeper/common';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { CoordinatorConnection } from '../agent/src/connection.ts';
import { enroll } from '../agent/src/enrollment.ts';
import { createToken, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';

const COUNT = 8;
const identity = (n: number): MachineIdentity => ({ machineId: `${n + 1}`.repeat(32), hostname: `node-${n}`, addresses: [], zone: null, labels: {} });

describe('admission control on the upgrade path', { timeout: 120_000 }, () => {
  let coord: CoordinatorProc;
  const credentials: string[] = [];
  const connections: CoordinatorConnection[] = [];

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nk-admission-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--insecure', '--max-upgrades-per-second', '2', '--heartbeat-interval', '1000']);
    const { token } = await createToken(coord.nkctlConfig, COUNT);
    for (let n = 0; n < COUNT; n += 1) credentials.push((await enroll(coord.url, null, token, identity(n), 'test', rawPublicKey(generateKeyPairSync('ed25519').publicKey))).credential);
  });

  after(async () => {
    for (const c of connections) c.stop();
    await coord?.stop();
  });

  test('a crowd at once: a second of the rate gets in, the rest are told when to come back', async () => {
    const started = Date.now();
    const outcomes = await Promise.all(credentials.map((credential) => new Promise<{ status: number; retryAfter: number | null; code: string | null }>((resolve, reject) => {
      const ws = new WebSocket(`${coord.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { Authorization: `Bearer ${credential}` } });
      ws.once('open', () => {
        ws.terminate();
        resolve({ status: 101, retryAfter: null, code: null });
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: Number(res.headers['retry-after']), code: (JSON.parse(body) as { code: string }).code }));
      });
      ws.once('error', (err) => (/Unexpected server response/.test(err.message) ? undefined : reject(err)));
    })));
    const admitted = outcomes.filter((o) => o.status === 101);
    const deferred = outcomes.filter((o) => o.status === 503);
    // The burst (one second of the rate), plus what the rate refilled if this machine was slow.
    const refilled = Math.floor(((Date.now() - started) / 1000) * 2);
    assert.ok(admitted.length >= 2 && admitted.length <= 2 + refilled, JSON.stringify(outcomes));
    assert.equal(admitted.length + deferred.length, COUNT);
    for (const d of deferred) {
      assert.equal(d.code, 'NK_PROTO_TRY_AGAIN_LATER');
      assert.ok(d.retryAfter !== null && d.retryAfter >= 1 && d.retryAfter <= 30, `Retry-After ${d.retryAfter}`);
    }
    const metrics = await (await fetch(new URL('/metrics', coord.url))).text();
    assert.match(metrics, new RegExp(`nodekeeper_agent_upgrades_deferred_total\\{reason="rate"\\} ${deferred.length}\\n`));
  });

  test('agents honouring Retry-After all get in, none refused for good', async () => {
    const log = createLogger({ name: 'test', level: 'silent' });
    let ready = 0;
    for (const [n, credential] of credentials.entries()) {
      const c = new CoordinatorConnection({
        server: coord.url,
        credential: () => credential,
        caPem: null,
        backoff: { baseMs: 100, capMs: 2000 },
        log,
        hello: async () => ({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: identity(n) }),
        onReady: () => void (ready += 1),
        onMessage: () => {},
        onLost: () => {},
        onRefused: (code) => assert.fail(`refused for good: ${code}`),
      });
      connections.push(c);
      c.start();
    }
    await waitFor('every agent connected', () => connections.every((c) => c.isReady), 60_000);
    assert.equal(ready, COUNT);
  });
});

describe('a failed session frees its admission slot at once', { timeout: 120_000 }, () => {
  let coord: CoordinatorProc;
  const credentials: string[] = [];

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nk-admission-slot-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--insecure', '--max-pending-upgrades', '1']);
    const { token } = await createToken(coord.nkctlConfig, 2);
    for (let n = 0; n < 2; n += 1) credentials.push((await enroll(coord.url, null, token, identity(n), 'test', rawPublicKey(generateKeyPairSync('ed25519').publicKey))).credential);
  });

  after(async () => {
    await coord?.stop();
  });

  /** An upgrade by hand: the status line of the answer, and the socket (left unread after it). */
  const upgrade = (credential: string) => new Promise<{ status: string; socket: ReturnType<typeof connect> }>((resolve, reject) => {
    const url = new URL(coord.url);
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`GET /v1/agent/connect HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${credential}\r\n\r\n`);
    });
    socket.once('data', (chunk: Buffer) => {
      // Reads nothing more: the close frame the coordinator sends later is never answered.
      socket.pause();
      resolve({ status: chunk.toString('latin1').split('\r\n')[0] ?? '', socket });
    });
    socket.once('error', reject);
  });

  test('an agent that never says hello and then stops reading does not hold the only slot for the close timeout', async () => {
    const silent = await upgrade(credentials[0]!);
    assert.match(silent.status, / 101 /, 'the first connection takes the one slot');
    try {
      const meanwhile = await upgrade(credentials[1]!);
      meanwhile.socket.destroy();
      assert.match(meanwhile.status, / 503 /, 'while it is pending, the door is shut');
      // A full door answers before any credential check: a bad one gets the same 503,
      // costs no store read and does not count as a failed authentication.
      const bogus = await upgrade(`nkm.${'0'.repeat(16)}.${'A'.repeat(43)}`);
      bogus.socket.destroy();
      assert.match(bogus.status, / 503 /);
      // The hello timeout (10 s) fails the silent session; ws would wait 30 s more for its
      // close frame. The slot must be free well before that.
      const admitted = await waitFor('the second agent admitted', async () => {
        const u = await upgrade(credentials[1]!);
        u.socket.destroy();
        return / 101 /.test(u.status) && u;
      }, 25_000, 500);
      assert.ok(admitted);
      const metrics = await (await fetch(new URL('/metrics', coord.url))).text();
      assert.doesNotMatch(metrics, /nodekeeper_agent_upgrades_rejected_total\{code="NK_AUTH_CREDENTIAL_INVALID"\}/, 'the bogus credential was never checked');
      assert.match(metrics, /nodekeeper_agent_upgrades_deferred_total\{reason="pending"\} [1-9]/);
    } finally {
      silent.socket.destroy();
    }
  });
});
