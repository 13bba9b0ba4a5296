/**
 * A slow client must not hold the coordinator's HTTP server (invariant 11): headers
 * trickled a byte at a time are cut off after --http-headers-timeout, a connection that
 * never finishes its TLS handshake too, and connections that are not agent WebSockets
 * are capped (--http-max-connections) apart from the agents' own cap. Meanwhile the
 * coordinator keeps answering, and agents already connected stay connected.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { createToken, startCoordinator, type CoordinatorProc } from './harness/processes.ts';
import { enrollByHand } from './harness/machine-key.ts';

describe('HTTP server limits', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-http-limits-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--http-headers-timeout', '1500', '--http-max-connections', '6', '--liveness-grace', '600000']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const healthz = async (): Promise<number> => {
    const https = await import('node:https');
    return new Promise((resolve, reject) => {
      const req = https.get(new URL('/healthz', coord.url), { ca, agent: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error('healthz timed out')));
      req.on('error', reject);
    });
  };

  /** Resolves with how long the socket stayed open (ms) once the server closes it. */
  const closedAfter = (s: net.Socket): Promise<number> => {
    const t0 = Date.now();
    return new Promise((resolve) => {
      s.on('error', () => {});
      s.on('close', () => resolve(Date.now() - t0));
    });
  };

  test('a slowloris client trickling headers is cut off; the coordinator keeps answering', async () => {
    const s = tls.connect({ host: '127.0.0.1', port: coord.port, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', () => resolve());
      s.once('error', reject);
    });
    const closed = closedAfter(s);
    let answer = '';
    s.on('data', (c: Buffer) => (answer += c.toString('utf8')));
    s.write('GET /v1/machines HTTP/1.1\r\nHost: localhost\r\n');
    let i = 0;
    const trickle = setInterval(() => {
      if (!s.destroyed) s.write(`X-Slow-${i++}: a\r\n`);
    }, 200);
    try {
      // Still responsive while the slow client hangs on.
      assert.equal(await healthz(), 200);
      const heldMs = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 20_000))]);
      assert.notEqual(heldMs, -1, 'the server never cut off the trickling client');
      assert.ok(heldMs < 10_000, `cut off after ${heldMs} ms`);
      assert.match(answer, /^HTTP\/1\.1 408/, 'answered 408 Request Timeout');
    } finally {
      clearInterval(trickle);
      s.destroy();
    }
    assert.equal(await healthz(), 200);
  });

  test('a connection that never completes its TLS handshake is cut off too', async () => {
    const s = net.connect(coord.port, '127.0.0.1');
    const closed = closedAfter(s);
    const heldMs = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 20_000))]);
    assert.notEqual(heldMs, -1, 'a silent TCP connection was held open');
    assert.equal(await healthz(), 200);
  });

  test('HTTP connections are capped apart from agents: an agent connected before stays, and the cap lifts when the idlers are cut', async () => {
    const { token } = await createToken(coord.nkctlConfig, 1);
    const enrolled = (await enrollByHand(coord.url, ca, token, { machineId: '7'.repeat(32), hostname: 'node-7', addresses: [], zone: null, labels: {} })).body as { credential: string };
    const agents: WebSocket[] = [];
    // More agents than the HTTP cap: upgraded connections do not count against it.
    for (let i = 0; i < 8; i++) {
      const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${enrolled.credential}` } });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.on('error', () => {});
      agents.push(ws);
    }
    // The last one supersedes the others for the same machine; make one that stays.
    const live = agents.at(-1)!;
    const idlers = Array.from({ length: 6 }, () => net.connect(coord.port, '127.0.0.1'));
    const idlersClosed = idlers.map(closedAfter);
    await Promise.all(idlers.map((s) => new Promise<void>((r) => s.once('connect', () => r()))));
    await new Promise((r) => setTimeout(r, 200));
    // Over the cap: refused at once.
    const extra = net.connect(coord.port, '127.0.0.1');
    const extraHeld = await Promise.race([closedAfter(extra), new Promise<number>((r) => setTimeout(() => r(-1), 1000))]);
    assert.notEqual(extraHeld, -1, 'a connection over the cap was accepted');
    // The idlers are cut by the handshake timeout; then it answers again.
    await Promise.all(idlersClosed);
    assert.equal(await healthz(), 200);
    assert.equal(live.readyState, WebSocket.OPEN, 'the agent connection survived');
    const metrics = await new Promise<string>((resolve, reject) => {
      https.get(new URL('/metrics', coord.url), { ca }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c));
        res.on('end', () => resolve(t));
      }).on('error', reject);
    });
    assert.match(metrics, /nodekeeper_http_connections_refused_total [1-9]/);
    for (const ws of agents) ws.terminate();
  });
});
