/**
 * Machine identity against a real coordinator and a real agent process (architecture
 * invariants 4 and 10), replaying the takeover that worked before: a holder of a
 * bootstrap token enrolled an existing machine's name and took its credential, cutting
 * the real agent off for good. Also: forged proofs, the agent's own recovery of a lapsed
 * credential with its key, rotation over the live connection, an admin reset, pre-hello
 * connections closed by revocation, and failed upgrades that cannot starve admission.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { rawPublicKey, signEd25519 } from '@nodekeeper/common';
import { reenrollStatement, type MachineIdentity } from '@nodekeeper/protocol';
import { makeHostRoot } from './harness/host-root.ts';
import { createToken, nkctl, startAgent, startCoordinator, waitFor, type CoordinatorProc, type Proc } from './harness/processes.ts';

const MACHINE_ID = 'a1'.repeat(16);
/** The shortest credential life the coordinator takes: rotation is due 5 s after enrollment. */
const TTL_MS = 15_000;
const newKey = () => generateKeyPairSync('ed25519').privateKey;
const ident = (hostname: string, machineId: string): MachineIdentity => ({ machineId, hostname, addresses: [], zone: null, labels: {} });

describe('machine identity', { timeout: 240_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let agent: Proc;
  let stateDir: string;
  let root: string;

  function call(method: string, pathname: string, body?: unknown, opts: { localAddress?: string } = {}): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const req = https.request(new URL(pathname, coord.url), { method, ca, headers: { 'Content-Type': 'application/json' }, ...opts }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  /** Opens an agent WebSocket; resolves with the open socket or the HTTP refusal. */
  function dial(credential: string, opts: { localAddress?: string } = {}): Promise<{ ws: WebSocket; closed: Promise<number> } | { status: number; code: string }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${credential}` }, ...opts });
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      ws.once('open', () => resolve({ ws, closed }));
      ws.once('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text || '{}') as { code?: string }).code ?? '' }));
      });
      ws.once('error', (err) => (/Unexpected server response/.test(err.message) ? undefined : reject(err)));
    });
  }

  const agentLog = () => agent.log();
  const count = (re: RegExp) => agentLog().split('\n').filter((l) => re.test(l)).length;
  const savedCredential = async () => (await readFile(path.join(stateDir, 'credential'), 'utf8')).trim();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-identity-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), [
      '--heartbeat-interval', '500', '--liveness-grace', '600000', '--flush-interval', '100', '--machine-credential-ttl', String(TTL_MS),
    ]);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    ({ root } = await makeHostRoot(path.join(dir, 'node-a'), { machineId: MACHINE_ID, hostname: 'node-a' }));
    stateDir = path.join(dir, 'node-a-state');
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    agent = startAgent({ server: coord.url, stateDir, hostRoot: root, kubeletHealthzUrl: 'http://127.0.0.1:9/healthz', token, caHash: caCertHash });
    await waitFor('the agent connected', () => count(/connected to coordinator/) >= 1, 30_000);
  });

  after(async () => {
    await agent?.stop();
    await coord?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('a bootstrap token cannot take over an enrolled machine, with or without its machine id', async () => {
    const { token } = await createToken(coord.nkctlConfig, 10);
    const connectedBefore = count(/connected to coordinator/);
    const attacker = rawPublicKey(newKey());
    for (const machineId of ['f0'.repeat(16), MACHINE_ID]) {
      // Without a key (the body that worked before keys) and with one (today's body).
      for (const body of [{ token, identity: ident('node-a', machineId), agentVersion: 'evil' }, { token, identity: ident('node-a', machineId), agentVersion: 'evil', publicKey: attacker }]) {
        const r = await call('POST', '/v1/enroll', body);
        assert.notEqual(r.status, 201, `took over node-a with ${JSON.stringify(body).slice(0, 120)}: ${JSON.stringify(r.body)}`);
        assert.equal(JSON.stringify(r.body).includes(MACHINE_ID), false, 'the answer names the enrolled machine id');
        if ('publicKey' in body) assert.equal(r.body.code, 'NK_MACHINE_ALREADY_ENROLLED');
      }
    }
    // The real agent was never disconnected and still reports.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(count(/connected to coordinator/), connectedBefore, 'the real agent reconnected: it was cut off');
    assert.equal(count(/refused this machine's credential/), 0);
    const m = JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-a', '-o', 'json'])).stdout);
    assert.notEqual(m.status.phase, 'Pending');
  });

  test('a forged proof of the machine key is refused, and a nonce is good for one try', async () => {
    const forger = newKey();
    const challenge = await call('POST', '/v1/enroll/challenge', { machine: 'node-a' });
    assert.equal(challenge.status, 200);
    const nonce = challenge.body.nonce as string;
    const publicKey = rawPublicKey(forger);
    const signature = signEd25519(reenrollStatement({ machine: 'node-a', machineId: MACHINE_ID, nonce, publicKey }), forger);
    const r = await call('POST', '/v1/enroll', { identity: ident('node-a', MACHINE_ID), agentVersion: 'evil', publicKey, proof: { nonce, signature } });
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'NK_ENROLL_PROOF_INVALID');
    // Even a correct signature (the test reads the agent's key) cannot reuse that nonce.
    const realKey = createPrivateKey(await readFile(path.join(stateDir, 'machine.key'), 'utf8'));
    const real = rawPublicKey(realKey);
    const replay = await call('POST', '/v1/enroll', {
      identity: ident('node-a', MACHINE_ID), agentVersion: 'x', publicKey: real,
      proof: { nonce, signature: signEd25519(reenrollStatement({ machine: 'node-a', machineId: MACHINE_ID, nonce, publicKey: real }), realKey) },
    });
    assert.equal(replay.body.code, 'NK_ENROLL_PROOF_INVALID', 'a spent nonce was accepted');
    // A challenge is answered for any name: it does not tell which machines exist.
    assert.equal((await call('POST', '/v1/enroll/challenge', { machine: 'no-such-node' })).status, 200);
  });

  test('the credential is rotated over the live connection, without a reconnect', async () => {
    const before = await savedCredential();
    const connectedBefore = count(/connected to coordinator/);
    await waitFor('a rotated credential saved', async () => (await savedCredential()) !== before, 30_000);
    await waitFor('the rotation confirmed', async () => (await dial(before).then((d) => ('status' in d ? d.code : (d.ws.close(), 'open')))) === 'NK_AUTH_CREDENTIAL_INVALID', 10_000);
    assert.equal(count(/connected to coordinator/), connectedBefore, 'rotation must not drop the connection');
    const fresh = await dial(await savedCredential());
    assert.ok('ws' in fresh, 'the saved credential works');
    fresh.ws.close();
  });

  test('an agent whose credential lapsed while it was away re-enrolls with its machine key, no token needed', async () => {
    await agent.stop();
    const old = await savedCredential();
    // Probed from an address of its own, no faster than the per-source failure allowance
    // refills (0.5/s): the failures cost this probe nothing, and the agent (127.0.0.1) nothing.
    await waitFor('the credential lapsed', async () => {
      const d = await dial(old, { localAddress: '127.0.0.3' });
      if ('ws' in d) d.ws.close();
      return 'code' in d && d.code === 'NK_AUTH_CREDENTIAL_EXPIRED';
    }, TTL_MS + 30_000, 2000);
    // Started without --token: the key is all it has.
    agent = startAgent({ server: coord.url, stateDir, hostRoot: root, kubeletHealthzUrl: 'http://127.0.0.1:9/healthz' });
    await waitFor('re-enrolled and connected', () => /re-enrolled with the machine key/.test(agentLog()) && /connected to coordinator/.test(agentLog().split('re-enrolled with the machine key')[1] ?? ''), 90_000);
    assert.notEqual(await savedCredential(), old);
    const reasons = (await nkctl(coord.nkctlConfig, ['describe', 'machine', 'node-a'])).stdout;
    assert.match(reasons, /ReEnrolled/);
  });

  test('revocation closes a connection that has not said hello yet', async () => {
    const { token } = await createToken(coord.nkctlConfig, 1);
    const r = await call('POST', '/v1/enroll', { token, identity: ident('node-b', 'b2'.repeat(16)), agentVersion: 't', publicKey: rawPublicKey(newKey()) });
    assert.equal(r.status, 201);
    const d = await dial(r.body.credential);
    assert.ok('ws' in d);
    const revoked = await nkctl(coord.nkctlConfig, ['machine', 'revoke', 'node-b']);
    assert.equal(revoked.code, 0, revoked.stderr);
    // Well before the 10 s hello timeout.
    const code = await Promise.race([d.closed, new Promise<number>((res) => setTimeout(() => res(-1), 5000))]);
    assert.equal(code, 4003);
  });

  test('failed upgrades from one address are cut off before the credential check and never starve real agents', async () => {
    let limited = 0;
    for (let i = 0; i < 40; i++) {
      const d = await dial(`nkm.${'0'.repeat(16)}.${'x'.repeat(43)}`, { localAddress: '127.0.0.2' });
      if ('ws' in d) assert.fail('a bad credential was admitted');
      if (d.code === 'NK_AUTH_TOO_MANY_FAILURES') limited += 1;
      else assert.equal(d.code, 'NK_AUTH_CREDENTIAL_INVALID');
    }
    assert.ok(limited >= 15, `only ${limited} of 40 bad upgrades were limited`);
    // The real agent, from another address, still gets in.
    const d = await dial(await savedCredential());
    assert.ok('ws' in d, `the real agent was refused: ${JSON.stringify(d)}`);
    d.ws.close();
  });

  test("an admin reset voids the machine's credential and key; the node enrolls again with a token", async () => {
    const r = await nkctl(coord.nkctlConfig, ['machine', 'reset', 'node-a']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /machine\/node-a reset/);
    await waitFor('the agent cut off', () => /refused this machine's credential/.test(agentLog()), 15_000);
    await waitFor('its key no longer re-enrolls it', () => /re-enrollment with the machine key failed/.test(agentLog()), 30_000, 500);
    await agent.stop();
    // The node is reinstalled: a new state dir, a new key, a token.
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    stateDir = path.join(dir, 'node-a-state-2');
    agent = startAgent({ server: coord.url, stateDir, hostRoot: root, kubeletHealthzUrl: 'http://127.0.0.1:9/healthz', token, caHash: caCertHash });
    await waitFor('the reinstalled node connected', () => count(/connected to coordinator/) >= 1, 30_000);
    const described = (await nkctl(coord.nkctlConfig, ['describe', 'machine', 'node-a'])).stdout;
    assert.match(described, /MachineReset/);
  });
});
