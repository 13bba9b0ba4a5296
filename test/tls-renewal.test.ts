/**
 * The serving certificate is renewed in place before it expires (the issue: a
 * coordinator up for 365 days served an expired one). With a lifetime of seconds
 * (--tls-serving-lifetime), a real coordinator must serve a new certificate, signed by
 * the same CA, before the old one expires: no restart, agents connected before stay
 * connected, new connections see the new certificate.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { createToken, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { enrollByHand } from './harness/machine-key.ts';

const identity = { machineId: '5'.repeat(32), hostname: 'node-5', addresses: [], zone: null, labels: {} };

describe('serving certificate renewal', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-tls-renew-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--tls-serving-lifetime', '8', '--liveness-grace', '600000']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The certificate a new, verifying TLS connection is served. */
  const served = (): Promise<tls.PeerCertificate> => new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: coord.port, ca, servername: 'localhost' }, () => {
      const cert = s.getPeerCertificate();
      s.end();
      resolve(cert);
    });
    s.on('error', reject);
  });

  test('a new certificate is served before expiry; connected agents stay; new connections see it', async () => {
    const first = await served();
    const firstExpiry = new Date(first.valid_to).getTime();
    assert.ok(firstExpiry - Date.now() < 20_000, `the injected lifetime is used (valid to ${first.valid_to})`);

    const { token } = await createToken(coord.nkctlConfig, 1);
    const enrolled = (await enrollByHand(coord.url, ca, token, identity)).body as { credential: string };
    const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${enrolled.credential}` } });
    const frames: any[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    let closed = false;
    ws.on('close', () => (closed = true));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity }));
    await waitFor('welcome', () => frames.find((f) => f.type === 'welcome'));

    // Renewed before the first one expires.
    const renewed = await waitFor('a renewed certificate', async () => {
      const c = await served();
      return c.fingerprint256 !== first.fingerprint256 ? c : undefined;
    }, 20_000, 250);
    assert.ok(Date.now() < firstExpiry, 'renewed before the old certificate expired');
    assert.ok(new Date(renewed.valid_to).getTime() > firstExpiry, 'the new one lasts longer');
    assert.equal(renewed.issuer.CN, first.issuer.CN, 'signed by the same CA (agents pin it)');

    // The agent connected before is still connected and answered.
    assert.equal(closed, false, 'the agent connection was dropped');
    const pong = new Promise<void>((resolve) => ws.once('pong', () => resolve()));
    ws.ping();
    await pong;
    ws.send(JSON.stringify({ type: 'heartbeat', seq: 1 }));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(closed, false);

    // And it keeps renewing: past the first certificate's expiry, a valid one is served.
    await new Promise((r) => setTimeout(r, Math.max(0, firstExpiry - Date.now() + 1000)));
    const later = await served(); // verifies: an expired certificate would fail here
    assert.ok(new Date(later.valid_to).getTime() > Date.now());
    assert.equal(closed, false);
    ws.close();
  });
});
