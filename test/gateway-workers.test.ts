/**
 * --gateway-workers 2, real processes over wss with the CA pinned: the workers hold the
 * port and the agents' sockets, the writer (the coordinator process) holds every state.
 * Agents (the agent's own connection code, with its backoff) enroll, connect and report
 * through the workers; nkctl and a watch stream go through the workers' proxy; a hostile
 * frame is answered with the in-process code; a revocation closes the connection at once;
 * a worker killed -9 costs no machine its Ready (its agents redial the other worker) and
 * comes back; the writer's unix socket wants the secret; a writer killed -9 takes its
 * workers with it (no orphan left in /proc).
 */
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createLogger, rawPublicKey } from '@nodekeeper/common';
import { CloseCode, ProtocolErrorCode, type MachineIdentity } from '@nodekeeper/protocol';
import { CoordinatorConnection } from '../agent/src/connection.ts';
import { enroll } from '../agent/src/enrollment.ts';
import { identity, startNkctlCoordinator, type NkctlCoordinator } from './harness/nkctl-coordinator.ts';
import { waitFor } from './harness/processes.ts';
import { healthyReport } from './harness/scripted-agent.ts';

const COUNT = 6;
const ARGS = ['--gateway-workers', '2', '--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '100', '--flush-interval', '100', '--reconnect-backoff-cap', '1000'];
const quiet = createLogger({ name: 'agent', level: 'silent' });
type Machine = { metadata: { name: string }; status: { phase: string } };

/** Child processes of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing paren.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

/** Socket inodes a process holds open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Established TCP connections on local `port` that `pid` holds (its accepted agents and clients). */
function establishedOn(pid: number, port: number): number {
  const inodes = socketInodes(pid);
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1]!.split(':')[1]!, 16);
      if (localPort === port && f[3] === '01' && inodes.has(f[9]!)) n += 1;
    }
  }
  return n;
}

/** The writer's unix socket: the one in /proc/net/unix under nk-writer- that `pid` holds. */
function writerSocket(pid: number): string {
  const inodes = socketInodes(pid);
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && inodes.has(f[6]!) && /\/nk-writer-[^/]+\/writer\.sock$/.test(f[7]!)) return f[7]!;
  }
  throw new Error(`no writer socket held by ${pid}`);
}

function unixGet(socketPath: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: '/v1/machines', headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('gateway workers: two worker processes in front of the writer', { timeout: 240_000 }, () => {
  let nc: NkctlCoordinator;
  const connections: CoordinatorConnection[] = [];
  let lost = 0;
  /** The writer's socket directory: left behind by the kill -9 of the writer, removed here. */
  let socketDir: string | null = null;
  const fetchText = (pathname: string) => new Promise<string>((resolve, reject) => {
    https.get(new URL(pathname, nc.coord.url), { ca: nc.ca }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString('utf8')));
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
  /** One request on a fresh TLS connection: whether it resumed, and the ticket to use next. */
  const tlsRequest = (session: Buffer | undefined) => new Promise<{ reused: boolean; session: Buffer }>((resolve, reject) => {
    let ticket = session;
    const s = tls.connect({ host: '127.0.0.1', port: nc.coord.port, ca: nc.ca, servername: 'localhost', ...(session === undefined ? {} : { session }) }, () => {
      s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    s.on('session', (t: Buffer) => (ticket = t));
    s.on('data', () => {});
    s.on('error', reject);
    s.on('end', () => (ticket === undefined ? reject(new Error('no session ticket')) : resolve({ reused: s.isSessionReused(), session: ticket })));
  });
  const machines = async () => ((await nc.api('GET', '/v1/machines')).json as { items: Machine[] }).items;
  const agentIdentity = (n: number): MachineIdentity => identity(`node-${n}`, n, { machineId: `${n + 1}`.repeat(32) });

  before(async () => {
    nc = await startNkctlCoordinator('nk-gateway-workers-', ARGS);
    const t = await nc.api('POST', '/v1/tokens', { ttlSeconds: 600, uses: COUNT, description: 'gateway workers' });
    assert.equal(t.status, 201);
    for (let n = 0; n < COUNT; n += 1) {
      const id = agentIdentity(n);
      const { credential } = await enroll(nc.coord.url, nc.ca, t.json.token, id, 'test', rawPublicKey(generateKeyPairSync('ed25519').publicKey));
      let seq = 0;
      let beat: NodeJS.Timeout | null = null;
      const c: CoordinatorConnection = new CoordinatorConnection({
        server: nc.coord.url,
        credential: () => credential,
        caPem: nc.ca,
        backoff: { baseMs: 100, capMs: 1000 },
        log: quiet,
        hello: async () => ({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: id }),
        onReady: (welcome) => {
          c.send({ type: 'report', seq: ++seq, full: true, report: healthyReport(id, '1.31.2') });
          if (beat !== null) clearInterval(beat);
          beat = setInterval(() => c.send({ type: 'heartbeat', seq }), welcome.heartbeatIntervalMs).unref();
        },
        onMessage: () => {},
        onLost: () => void (lost += 1),
      });
      connections.push(c);
      c.start();
    }
  });

  after(async () => {
    await Promise.all(connections.map((c) => c.stop()));
    await nc?.stop();
    if (socketDir !== null) await rm(socketDir, { recursive: true, force: true });
  });

  test('two workers hold the port; the writer holds no public connection', async () => {
    await waitFor('two workers', () => childrenOf(nc.coord.child.pid!).length === 2, 20_000);
    await waitFor('all Ready', async () => {
      const ms = await machines();
      return ms.length === COUNT && ms.every((m) => m.status.phase === 'Ready') && connections.every((c) => c.isReady);
    }, 30_000);
    assert.equal(establishedOn(nc.coord.child.pid!, nc.coord.port), 0, 'the writer accepted no connection on the public port');
    const held = childrenOf(nc.coord.child.pid!).reduce((n, pid) => n + establishedOn(pid, nc.coord.port), 0);
    assert.ok(held >= COUNT, `the workers hold the agents' connections (${held})`);
  });

  test('nkctl reads through the proxy, and a watch streams through it', async () => {
    const got = await nc.nk(['get', 'machines']);
    assert.equal(got.code, 0, got.stderr);
    for (let n = 0; n < COUNT; n += 1) assert.match(got.stdout, new RegExp(`^node-${n} +Ready`, 'm'));
    const w = nc.start(['get', 'machines', '-w']);
    await waitFor('the table', () => /^node-0 +Ready/m.test(w.stdout()), 20_000);
    const before = w.stdout().length;
    // A change made while the watch is open arrives on it (a streamed answer, not a buffered one).
    const agent = await nc.enroll(identity('watched', 20, { machineId: 'a'.repeat(32) }));
    await agent.connect();
    await waitFor('a row for the new machine on the open watch', () => /^watched +/m.test(w.stdout().slice(before)), 20_000);
    agent.close();
  });

  test('a hostile frame gets the code it gets in-process; a revoked machine\'s connection is closed at once', async () => {
    const agent = await nc.enroll(identity('hostile', 21, { machineId: 'b'.repeat(32) }));
    const ws = new WebSocket(`${nc.coord.url.replace(/^http/, 'ws')}/v1/agent/connect`, { ca: nc.ca, headers: { Authorization: `Bearer ${agent.credential}` } });
    const frames: Array<{ type: string; code?: string }> = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send('{"type":"hello",');
    ws.send(Buffer.from([0, 1, 2]), { binary: true });
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: agent.opts.identity }));
    await waitFor('the error frames and the welcome', () => frames.some((f) => f.type === 'welcome') && frames.filter((f) => f.type === 'error').length === 2, 10_000);
    assert.deepEqual(frames.filter((f) => f.type === 'error').map((f) => f.code), [ProtocolErrorCode.badJson, ProtocolErrorCode.binaryFrame]);
    // The workers' counts reach the writer's /metrics: one document, the in-process series.
    await waitFor('the rejections counted in /metrics', async () => {
      const text = await (await fetchText('/metrics'));
      return /^nodekeeper_agent_frames_rejected_total\{code="NK_PROTO_BAD_JSON"\} [1-9]/m.test(text) && /^nodekeeper_agent_frames_rejected_total\{code="NK_PROTO_BINARY_FRAME"\} [1-9]/m.test(text)
        && /^nodekeeper_agent_frames_received_total\{type="heartbeat"\} [1-9]/m.test(text) && /^nodekeeper_agent_upgrade_duration_seconds_count [1-9]/m.test(text)
        && /^nodekeeper_http_connections\{kind="agent"\} [1-9]/m.test(text);
    }, 10_000);
    const revoked = await nc.nk(['machine', 'revoke', 'hostile']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000))]), CloseCode.revoked);
  });

  test('TLS sessions resume on whichever worker a connection lands: the workers serve the writer\'s ticket keys', async () => {
    let { session } = await tlsRequest(undefined);
    for (let i = 0; i < 8; i += 1) {
      const r = await tlsRequest(session);
      assert.equal(r.reused, true, `connection ${i} resumed`);
      session = r.session;
    }
  });

  test('the writer\'s unix socket answers 403 without the secret', async () => {
    const socketPath = writerSocket(nc.coord.child.pid!);
    socketDir = path.dirname(socketPath);
    assert.equal(statSync(socketDir).mode & 0o777, 0o700);
    for (const headers of [{}, { 'x-nodekeeper-gateway-secret': 'guessed' }]) {
      const r = await unixGet(socketPath, { ...headers, Authorization: `Bearer ${nc.admin}` });
      assert.equal(r.status, 403);
      assert.equal(JSON.parse(r.body).code, 'NK_GATEWAY_FORBIDDEN');
    }
  });

  test('kill -9 of a worker: its agents redial the other, no machine goes Unknown, and it comes back', async () => {
    const writer = nc.coord.child.pid!;
    const workers = childrenOf(writer);
    assert.equal(workers.length, 2);
    // The worker holding the most connections (at least one agent's, whichever way the kernel spread them).
    const [victim] = workers.map((pid) => ({ pid, held: establishedOn(pid, nc.coord.port) })).sort((a, b) => b.held - a.held);
    assert.ok(victim!.held > 0);
    const lostBefore = lost;
    const killedAt = Date.now();
    process.kill(victim!.pid, 'SIGKILL');
    const seen = new Set<string>();
    await waitFor('the worker back, every agent ready again', async () => {
      for (const m of await machines()) seen.add(m.status.phase);
      const now = childrenOf(writer);
      return now.length === 2 && !now.includes(victim!.pid) && lost > lostBefore && connections.every((c) => c.isReady);
    }, 40_000, 100);
    // And a little longer: a machine whose agent came back late would turn Unknown now.
    const settleUntil = Date.now() + 2000;
    while (Date.now() < settleUntil) {
      for (const m of await machines()) if (m.metadata.name.startsWith('node-')) seen.add(m.status.phase);
      await new Promise((r) => setTimeout(r, 100));
    }
    const events = ((await nc.api('GET', '/v1/events?limit=1000')).json as { items: Array<{ object: string; reason: string; at: string }> }).items;
    assert.deepEqual(events.filter((e) => e.reason === 'MachineUnknown' && Date.parse(e.at) >= killedAt && /node-/.test(e.object)), []);
    assert.ok(!seen.has('Unknown') && !seen.has('NotReady'), `phases seen: ${[...seen].join(', ')}`);
    const restarted = childrenOf(writer).find((pid) => pid !== victim!.pid && !workers.includes(pid));
    assert.ok(restarted !== undefined && alive(restarted), 'a new worker process runs');
    const got = await nc.nk(['get', 'machines']);
    assert.equal(got.code, 0, got.stderr);
  });

  test('kill -9 of the writer: the workers exit, none is left behind', async () => {
    const workers = childrenOf(nc.coord.child.pid!);
    assert.equal(workers.length, 2);
    await nc.coord.stop('SIGKILL');
    await waitFor('every worker gone', () => workers.every((pid) => !alive(pid)), 15_000);
  });
});

describe('gateway workers: a renewed serving certificate reaches every worker', { timeout: 120_000 }, () => {
  let nc: NkctlCoordinator;
  before(async () => {
    nc = await startNkctlCoordinator('nk-gateway-workers-renew-', ['--gateway-workers', '2', '--tls-serving-lifetime', '8']);
  });
  after(async () => nc?.stop());

  const served = () => new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: nc.coord.port, ca: nc.ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });

  test('renewed in place: after the renewal every new connection, on either worker, gets the new certificate', async () => {
    const first = await served();
    await waitFor('a renewed certificate served', async () => (await served()) !== first, 30_000, 200);
    // Eight fresh connections, spread by the kernel over both workers: none sees the old one.
    const serials = [];
    for (let i = 0; i < 8; i += 1) serials.push(await served());
    assert.ok(serials.every((s) => s !== first), `serials after the renewal: ${serials.join(', ')} (first ${first})`);
    assert.equal((await nc.api('GET', '/v1/machines')).status, 200);
  });
});
