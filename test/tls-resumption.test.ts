/**
 * TLS session resumption survives a coordinator restart and a ticket key rotation
 * (tls/ticket-keys.ts): a real coordinator on port 0, real `tls.connect` with the
 * pinned CA. Rotations are made due by dating the key file back while the coordinator
 * is down (it rotates at start when a rotation is due), so no case waits on a clock; the
 * timer-driven rotation is covered in process by coordinator/src/tls/ticket-keys.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { createLogger } from '@nodekeeper/common';
import { CoordinatorConnection } from '../agent/src/connection.ts';
import { ensurePki } from '../coordinator/src/tls/pki.ts';
import { createToken, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { enrollByHand } from './harness/machine-key.ts';

const ROTATION_S = 3600;

describe('TLS session resumption across restarts and rotations', { timeout: 180_000 }, () => {
  let dir: string;
  let dataDir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let keyFile: string;

  const start = async (port = 0) => {
    coord = await startCoordinator(dataDir, ['--tls-ticket-rotation', String(ROTATION_S), '--liveness-grace', '600000', '--port', String(port)]);
  };
  /** kill -9, then (while it is down) `meanwhile`, then start again on the same data dir. */
  const crashAndRestart = async (meanwhile: () => Promise<void> = async () => {}) => {
    await coord.stop('SIGKILL');
    await meanwhile();
    await start();
  };
  /** Dates the key file's rotation back by more than an interval: the next start rotates. */
  const makeRotationDue = async () => {
    const data = await readFile(keyFile);
    data.writeBigUInt64BE(BigInt(Date.now() - (ROTATION_S + 60) * 1000), 8);
    await writeFile(keyFile, data);
  };

  /**
   * One HTTPS request on a fresh TLS connection: whether it resumed, and the last ticket
   * it got (a resumed one may get none: then the one it came with).
   */
  const connect = (session?: Buffer): Promise<{ reused: boolean; session: Buffer }> => new Promise((resolve, reject) => {
    let ticket: Buffer | undefined = session;
    const s = tls.connect({ host: '127.0.0.1', port: coord.port, ca, servername: 'localhost', ...(session === undefined ? {} : { session }) }, () => {
      s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    s.on('session', (t: Buffer) => (ticket = t));
    s.on('data', () => {});
    s.on('error', reject);
    s.on('end', () => {
      if (ticket === undefined) reject(new Error('no session ticket was issued'));
      else resolve({ reused: s.isSessionReused(), session: ticket });
    });
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-tls-resume-'));
    dataDir = path.join(dir, 'coordinator');
    await start();
    ca = await readFile(path.join(dataDir, 'ca.crt'), 'utf8');
    keyFile = path.join(dataDir, 'pki', 'ticket-keys');
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  let t0: Buffer; // the first ticket, sealed by the first key
  let t1: Buffer; // a ticket sealed after the first rotation

  test('a full handshake gets a ticket, the next connection resumes with it; the key file is 0600', async () => {
    const first = await connect();
    assert.equal(first.reused, false);
    t0 = first.session;
    assert.equal((await connect(t0)).reused, true, 'the second connection resumes');
    const st = await stat(keyFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, 112);
  });

  test('after kill -9 and a restart on the same data dir, the old ticket still resumes', async () => {
    await crashAndRestart();
    assert.equal((await connect(t0)).reused, true);
  });

  test('after a rotation the ticket from before it resumes; after a second one it does not (full handshake, still served)', async () => {
    const before1 = await readFile(keyFile);
    await crashAndRestart(makeRotationDue);
    const after1 = await readFile(keyFile);
    assert.notDeepEqual(after1.subarray(16, 64), before1.subarray(16, 64), 'the start rotated the current key');
    assert.deepEqual(after1.subarray(64, 112), before1.subarray(16, 64), 'the old current key is kept as the previous one');
    const resumed = await connect(t0);
    assert.equal(resumed.reused, true, 'a ticket sealed by the previous key resumes');
    t1 = (await connect()).session;

    await crashAndRestart(makeRotationDue);
    const older = await connect(t0);
    assert.equal(older.reused, false, 'a ticket older than two rotations is not accepted');
    assert.equal((await connect(t1)).reused, true, 'one sealed just before the second rotation still is');
  });

  test('a key file readable by others, or of the wrong size, is refused, replaced, and the coordinator starts', async () => {
    const good = await readFile(keyFile);
    await crashAndRestart(() => chmod(keyFile, 0o644));
    assert.match(coord.log(), /NK_TLS_TICKET_KEYS_REFUSED/);
    const replaced = await readFile(keyFile);
    assert.notDeepEqual(replaced.subarray(16, 64), good.subarray(16, 64), 'the exposed keys are not used');
    assert.ok(replaced.subarray(64, 112).every((b) => b === 0), 'nor kept as the previous key');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const fresh = await connect(t1);
    assert.equal(fresh.reused, false, 'tickets sealed by the refused keys do not resume');

    await crashAndRestart(() => writeFile(keyFile, Buffer.alloc(50, 7), { mode: 0o600 }));
    assert.equal((coord.log().match(/NK_TLS_TICKET_KEYS_REFUSED/g) ?? []).length >= 2, true);
    assert.equal((await stat(keyFile)).size, 112);
    const again = await connect();
    assert.equal(again.reused, false);
    assert.equal((await connect(again.session)).reused, true, 'the replacement keys work');
  });

  /** A real agent connection to the coordinator for `identity`, pinning `caPem`, counting its welcomes. */
  const agentConnection = async (identity: { machineId: string; hostname: string }, caPem: string) => {
    const id = { ...identity, addresses: [], zone: null, labels: {} };
    const { token } = await createToken(coord.nkctlConfig, 1);
    const { credential } = (await enrollByHand(coord.url, ca, token, id)).body;
    assert.ok(credential !== undefined);
    const counts = { welcomes: 0 };
    const conn = new CoordinatorConnection({
      server: coord.url,
      credential: () => credential,
      caPem,
      backoff: { baseMs: 100, capMs: 1000 },
      log: createLogger({ name: 'test', level: 'silent' }),
      hello: async () => ({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: id }),
      onReady: () => void (counts.welcomes += 1),
      onMessage: () => {},
      onLost: () => {},
      onRefused: (code) => assert.fail(`refused: ${code}`),
    });
    return { conn, counts };
  };

  test('the agent offers its last ticket when it reconnects: after a coordinator kill -9 and restart, it resumes', async () => {
    const { conn, counts } = await agentConnection({ machineId: '7'.repeat(32), hostname: 'node-7' }, ca);
    try {
      conn.start();
      await waitFor('the agent connected', () => counts.welcomes === 1);
      assert.equal(conn.tlsResumed, false, 'the first dial is a full handshake');
      const port = coord.port;
      await coord.stop('SIGKILL');
      await start(port);
      await waitFor('the agent reconnected', () => counts.welcomes === 2, 30_000);
      assert.equal(conn.tlsResumed, true, 'the reconnect resumed the TLS session');
    } finally {
      await conn.stop();
    }
  });

  test('an agent pinning another CA is never welcomed, dial after dial (the TLS context it keeps still pins)', async () => {
    const other = await ensurePki(path.join(dir, 'other-ca'), ['localhost', '127.0.0.1']);
    const { conn, counts } = await agentConnection({ machineId: '8'.repeat(32), hostname: 'node-8' }, other.caPem);
    try {
      conn.start();
      // About ten dials at a 100 ms backoff base: each must fail the certificate check.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(counts.welcomes, 0, "a coordinator whose certificate the pinned CA did not sign was trusted");
      assert.equal(conn.tlsResumed, null);
    } finally {
      await conn.stop();
    }
  });
});
