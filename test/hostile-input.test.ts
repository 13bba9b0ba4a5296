/**
 * Hostile and broken input against a real coordinator process: every bad frame, body or
 * credential gets its specific error code, the server stays up, and the SQLite file is
 * byte-for-byte the same story afterwards (compared table by table).
 */
import { after, before, describe, test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { MAX_FRAME_BYTES, ProtocolErrorCode, type MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { rawPublicKey } from '@nodekeeper/common';
import { createToken, nkctl, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { StateProbe, type Snapshot } from './harness/state-snapshot.ts';

const publicKey = () => rawPublicKey(generateKeyPairSync('ed25519').publicKey);
const identity = (n: number): MachineIdentity => ({ machineId: `${n}`.repeat(32), hostname: `node-${n}`, addresses: [], zone: null, labels: {} });

/** The controllers tick once a second (grace 600 s): a store quiet for longer has settled. */
const QUIET_MS = 1300;

describe('hostile input', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let probe: StateProbe;
  const creds: Record<number, string> = {};

  async function post(pathname: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    // node's fetch has no per-request CA option; the CA is passed through NODE_EXTRA_CA_CERTS-free https instead.
    const https = await import('node:https');
    return new Promise((resolve, reject) => {
      const data = typeof body === 'string' ? body : JSON.stringify(body);
      const req = https.request(new URL(pathname, coord.url), { method: 'POST', ca, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  /** The store is as `before` says; else the rows that moved are named. */
  function assertStoreIs(before: Snapshot, message = 'the store changed'): void {
    assert.equal(StateProbe.diff(before, probe.snapshot()), '', message);
  }

  /** A connected, welcomed agent session speaking for machine `n`. */
  async function connect(n: number, credential = creds[n]!): Promise<{ ws: WebSocket; frames: any[]; closed: Promise<{ code: number; reason: string }> }> {
    const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${credential}` } });
    const frames: any[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return { ws, frames, closed };
  }

  /** Whether the coordinator's /metrics text matches. */
  async function metricsSays(re: RegExp): Promise<boolean> {
    const https = await import('node:https');
    const text = await new Promise<string>((resolve, reject) => {
      https.get(new URL('/metrics', coord.url), { ca }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString('utf8')));
        res.on('end', () => resolve(t));
      }).on('error', reject);
    });
    return re.test(text);
  }

  async function hello(s: { ws: WebSocket; frames: any[] }, id: MachineIdentity): Promise<void> {
    s.ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: id }));
    await waitFor('a welcome or an error', () => s.frames.length > 0);
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-hostile-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--liveness-grace', '600000', '--flush-interval', '50']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    const { token } = await createToken(coord.nkctlConfig, 2);
    for (const n of [1, 2]) {
      const r = await post('/v1/enroll', { token, identity: identity(n), agentVersion: 'test', publicKey: publicKey() });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      creds[n] = r.body.credential;
    }
    // Machine 1 reports once, so its state is settled (Ready) before the comparisons.
    const s = await connect(1);
    await hello(s, identity(1));
    s.ws.send(JSON.stringify({ type: 'report', seq: 1, full: true, report: { ...sampleReport, identity: identity(1) } }));
    await waitFor('node-1 Ready', async () => JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-1', '-o', 'json'])).stdout).status.phase === 'Ready');
    s.ws.close();
    await s.closed;
    probe = new StateProbe(coord.dataDir);
    // The controllers' first tick (1 s after the start) records the remediation state;
    // later ticks write only on a change. Before it, a quiet 300 ms proves nothing: it
    // landed in the middle of the first case once, in a loaded CI run.
    await waitFor('the first controller tick', () => probe.snapshot().tables.get('remediation') !== '[]');
    await probe.settle(QUIET_MS);
  });

  after(async () => {
    probe?.close();
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const frameCases: Array<[string, string | Buffer, string]> = [
    ['bad JSON', '{"type":', ProtocolErrorCode.badJson],
    ['not an object', '"hello"', ProtocolErrorCode.badEnvelope],
    ['unknown type', '{"type":"shell","cmd":"rm -rf /"}', ProtocolErrorCode.unknownType],
    ['wrong types', '{"type":"report","seq":"two","full":true,"report":{}}', ProtocolErrorCode.invalidMessage],
    ['hostile report values', JSON.stringify({ type: 'report', seq: 2, full: true, report: { ...sampleReport, kubelet: { ...sampleReport.kubelet, health: 'great' } } }), ProtocolErrorCode.invalidMessage],
    ['a binary frame', Buffer.from([1, 2, 3]), ProtocolErrorCode.binaryFrame],
    ['a second hello', JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'x', identity: identity(1) }), ProtocolErrorCode.unexpectedMessage],
    ['a result for no command', '{"type":"command.result","commandId":"c1","ok":true}', ProtocolErrorCode.unexpectedMessage],
  ];
  for (const [name, frame, code] of frameCases) {
    test(`frame: ${name} -> ${code}, nothing stored`, async () => {
      const before = await probe.settle(QUIET_MS);
      const s = await connect(1);
      await hello(s, identity(1));
      s.frames.length = 0;
      s.ws.send(frame);
      await waitFor(`error ${code}`, () => s.frames.find((f) => f.type === 'error'));
      assert.equal(s.frames[0].code, code);
      assert.equal(s.frames[0].fatal, false);
      s.ws.close();
      await s.closed;
      await new Promise((r) => setTimeout(r, 200)); // several flush intervals
      assertStoreIs(before);
    });
  }

  test('a report before hello is refused', async () => {
    const s = await connect(1);
    s.ws.send(JSON.stringify({ type: 'heartbeat', seq: 1 }));
    await waitFor('error', () => s.frames[0]);
    assert.equal(s.frames[0].code, ProtocolErrorCode.unexpectedMessage);
    s.ws.close();
  });

  test('an oversize frame is answered with NK_PROTO_FRAME_TOO_LARGE, then closed with 1009', async () => {
    const before = await probe.settle(QUIET_MS);
    const s = await connect(1);
    await hello(s, identity(1));
    s.ws.send('x'.repeat(MAX_FRAME_BYTES + 1));
    assert.equal((await s.closed).code, 1009);
    const error = s.frames.find((f) => f.type === 'error');
    assert.equal(error?.code, ProtocolErrorCode.frameTooLarge, 'docs/protocol.md promises an error frame before the close');
    assert.equal(error?.fatal, true);
    assertStoreIs(before);
  });

  test("an agent's error frames are counted, and logged at most once per interval", async () => {
    const s = await connect(1);
    await hello(s, identity(1));
    const logged = () => coord.log().split('\n').filter((l) => l.includes('agent reported an error') && l.includes('flood-')).length;
    const loggedBefore = logged();
    for (let i = 0; i < 15; i++) s.ws.send(JSON.stringify({ type: 'error', code: 'NK_X', message: `flood-${i}`, fatal: false }));
    s.ws.send(JSON.stringify({ type: 'heartbeat', seq: 1 }));
    await waitFor('the error frames counted', () => metricsSays(/nodekeeper_agent_error_frames_total (1[5-9]|[2-9]\d)/));
    assert.ok(logged() - loggedBefore <= 1, `logged ${logged() - loggedBefore} of 15 error frames`);
    s.ws.close();
    await s.closed;
  });

  test("machine 1's credential cannot speak for machine 2, in hello or in a report", async () => {
    const before = await probe.settle(QUIET_MS);
    const s = await connect(1);
    await hello(s, identity(2));
    assert.equal(s.frames[0].code, ProtocolErrorCode.identityMismatch);
    assert.equal(s.frames[0].fatal, true);
    assert.equal((await s.closed).code, 4000);

    const t = await connect(1);
    await hello(t, identity(1));
    t.ws.send(JSON.stringify({ type: 'report', seq: 5, full: true, report: { ...sampleReport, identity: identity(2) } }));
    assert.equal((await t.closed).code, 4000);
    assert.equal(t.frames.find((f) => f.type === 'error')?.code, ProtocolErrorCode.identityMismatch);
    const m2 = JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-2', '-o', 'json'])).stdout);
    assert.equal(m2.status.phase, 'Pending', 'node-2 never reported');
    assertStoreIs(before);
  });

  test('a flood is rate-limited, then cut off', async () => {
    const s = await connect(2);
    await hello(s, identity(2));
    for (let i = 0; i < 2000 && s.ws.readyState === WebSocket.OPEN; i++) s.ws.send(JSON.stringify({ type: 'heartbeat', seq: i }));
    const closed = await s.closed;
    assert.ok(s.frames.some((f) => f.code === ProtocolErrorCode.rateLimited), 'a rate-limit error frame was sent');
    assert.equal(closed.code, 4029);
  });

  test('a wrong, malformed or missing credential is refused at the upgrade', async () => {
    for (const [credential, code] of [
      [`${creds[1]!.slice(0, -2)}xx`, 'NK_AUTH_CREDENTIAL_INVALID'],
      ['nkm.nope', 'NK_AUTH_CREDENTIAL_INVALID'],
      ['', 'NK_AUTH_CREDENTIAL_MISSING'],
    ] as const) {
      const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: credential ? { Authorization: `Bearer ${credential}` } : {} });
      const status = await new Promise<{ status: number; body: string }>((resolve) => {
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
      });
      assert.equal(status.status, 401);
      assert.equal(JSON.parse(status.body).code, code);
    }
  });

  test('expired, revoked and garbage tokens are refused with their codes, nothing enrolled', async () => {
    const before = await probe.settle(QUIET_MS);
    const expired = JSON.parse((await nkctl(coord.nkctlConfig, ['token', 'create', '--ttl', '1s', '-o', 'json'])).stdout);
    const revoked = JSON.parse((await nkctl(coord.nkctlConfig, ['token', 'create', '-o', 'json'])).stdout);
    assert.equal((await nkctl(coord.nkctlConfig, ['token', 'revoke', revoked.id])).code, 0);
    await new Promise((r) => setTimeout(r, 1200));
    const afterTokens = probe.snapshot();
    for (const [token, code] of [
      [expired.token, 'NK_TOKEN_EXPIRED'],
      [revoked.token, 'NK_TOKEN_REVOKED'],
      ['abcdef.0123456789abcdef', 'NK_TOKEN_INVALID'],
      ['not a token', 'NK_TOKEN_INVALID'],
    ]) {
      const r = await post('/v1/enroll', { token, identity: identity(3), agentVersion: 'test', publicKey: publicKey() });
      assert.equal(r.status, 401);
      assert.equal(r.body.code, code);
    }
    for (const [body, code] of [
      ['{', 'NK_HTTP_BAD_REQUEST'],
      [{ token: 'x', identity: { machineId: '../../etc' }, agentVersion: 'x' }, 'NK_HTTP_BAD_REQUEST'],
      [{ token: 'x', identity: identity(3), agentVersion: 'x' }, 'NK_HTTP_BAD_REQUEST'], // no machine key
      [{ token: 'x', identity: identity(3), agentVersion: 'x', publicKey: `${'A'.repeat(43)}=`, proof: { nonce: 'x', signature: 'y' } }, 'NK_HTTP_BAD_REQUEST'],
      ['x'.repeat(70_000), 'NK_HTTP_BODY_TOO_LARGE'],
    ] as const) {
      const r = await post('/v1/enroll', body);
      assert.equal(r.body.code, code);
    }
    assert.notEqual(afterTokens, before, 'creating tokens is a change');
    assertStoreIs(afterTokens, 'refused enrollments change nothing');
  });

  test('a revoked machine is disconnected at once and refused afterwards', async () => {
    const s = await connect(2);
    await hello(s, identity(2));
    const r = await nkctl(coord.nkctlConfig, ['machine', 'revoke', 'node-2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await s.closed).code, 4003);
    const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${creds[2]}` } });
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 403);
  });

  test('the API refuses missing, wrong and read-only credentials for writes', async () => {
    const ro = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
    assert.equal((await post('/v1/tokens', {})).body.code, 'NK_AUTH_CREDENTIAL_MISSING');
    assert.equal((await post('/v1/tokens', {}, { Authorization: 'Bearer nka.x.y' })).body.code, 'NK_AUTH_CREDENTIAL_INVALID');
    const forbidden = await post('/v1/tokens', {}, { Authorization: `Bearer ${ro}` });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.code, 'NK_AUTH_FORBIDDEN');
  });
});
