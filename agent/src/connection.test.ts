/**
 * CoordinatorConnection against real ws servers on loopback: authentication at the
 * upgrade, hello/welcome, reconnects with backoff, Retry-After and retryAfterMs,
 * refusals, the watchdog, and invalid frames. Redial delays are read from the
 * connection's own debug log (an injected pino logger), so backoff is checked exactly
 * and without timed assertions.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { WebSocketServer, WebSocket, type ServerOptions } from 'ws';
import type { BackoffPolicy } from '@nodekeeper/common';
import {
  AGENT_PATH,
  CloseCode,
  ProtocolErrorCode,
  decodeAgentMessage,
  encode,
  errorFrame,
  type AgentMessage,
  type CoordinatorMessage,
  type Hello,
  type Welcome,
} from '@nodekeeper/protocol';
import { CoordinatorConnection, type ConnectionOptions } from './connection.ts';

const CREDENTIAL = 'nkm_test-credential';
const fast: BackoffPolicy = { baseMs: 10, capMs: 80 };

const hello = (): Hello => ({
  type: 'hello',
  minProtocolVersion: 1,
  maxProtocolVersion: 1,
  agentVersion: 'test',
  identity: { machineId: 'abc123', hostname: 'node-1', addresses: ['10.0.0.1'], zone: null, labels: {} },
});
const welcome = (heartbeatIntervalMs = 10_000): Welcome => ({
  type: 'welcome',
  protocolVersion: 1,
  machine: 'node-1',
  heartbeatIntervalMs,
  coordinatorVersion: 'test',
});

/** Everything a test started, torn down after it whatever happened. */
const cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface Upgrade {
  readonly at: number;
  readonly req: IncomingMessage;
}

/** How the server refuses upgrade number n (1-based), or null to accept it. */
type Refuse = (n: number) => { status: number; body: string; headers?: Record<string, string> } | null;

/** A real ws server on a free loopback port; records every upgrade request. */
async function fakeCoordinator(
  opts: ServerOptions = {},
  refuse: Refuse = () => null,
): Promise<{ wss: WebSocketServer; url: string; upgrades: Upgrade[] }> {
  const upgrades: Upgrade[] = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    ...opts,
    verifyClient: (info, cb) => {
      upgrades.push({ at: performance.now(), req: info.req });
      const r = refuse(upgrades.length);
      if (r === null) cb(true);
      else cb(false, r.status, r.body, r.headers);
    },
  });
  await once(wss, 'listening');
  cleanup.push(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  return { wss, url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, upgrades };
}

/** Answers every hello with a welcome; returns the frames each connection received. */
function welcoming(wss: WebSocketServer, heartbeatIntervalMs?: number): { frames: AgentMessage[]; sockets: WebSocket[] } {
  const frames: AgentMessage[] = [];
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data: Buffer) => {
      const d = decodeAgentMessage(data);
      assert.ok(d.ok, `agent sent an invalid frame: ${data.toString()}`);
      frames.push(d.message);
      if (d.message.type === 'hello') ws.send(encode(welcome(heartbeatIntervalMs)));
    });
  });
  return { frames, sockets };
}

/** Polls until `cond` holds; the limit only guards against a hung test. */
async function until(cond: () => boolean, what: string, limitMs = 8000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > limitMs) throw new Error(`gave up waiting for: ${what}`);
    await sleep(10);
  }
}

/** A pino logger whose lines the test can read (the redial delays are logged at debug). */
function capturingLog(): { log: ConnectionOptions['log']; redials: () => number[] } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const redials = () => lines.filter((l) => l['msg'] === 'redialling').map((l) => l['delayMs'] as number);
  return { log, redials };
}

interface Harness {
  readonly conn: CoordinatorConnection;
  readonly events: string[];
  readonly messages: CoordinatorMessage[];
  readonly refusals: Array<{ code: string; message: string }>;
  readonly hellos: number[];
  readonly redials: () => number[];
}

function connect(server: string, opts: Partial<ConnectionOptions> = {}): Harness {
  const events: string[] = [];
  const messages: CoordinatorMessage[] = [];
  const refusals: Array<{ code: string; message: string }> = [];
  const hellos: number[] = [];
  const { log, redials } = capturingLog();
  const conn = new CoordinatorConnection({
    server,
    credential: () => CREDENTIAL,
    caPem: null,
    backoff: fast,
    log,
    hello: async () => {
      hellos.push(performance.now());
      return hello();
    },
    onReady: () => void events.push('ready'),
    onMessage: (m) => void messages.push(m),
    onLost: () => void events.push('lost'),
    onRefused: (code, message) => void refusals.push({ code, message }),
    random: () => 0.5,
    minWatchdogMs: 3000,
    ...opts,
  });
  cleanup.push(() => conn.stop());
  conn.start();
  return { conn, events, messages, refusals, hellos, redials };
}

test('authenticates at the upgrade, says hello first, is ready only after welcome', async () => {
  const { wss, url, upgrades } = await fakeCoordinator();
  const frames: AgentMessage[] = [];
  let server: WebSocket | null = null;
  wss.on('connection', (ws) => {
    server = ws;
    ws.on('message', (data: Buffer) => {
      const d = decodeAgentMessage(data);
      assert.ok(d.ok, data.toString());
      frames.push(d.message);
    });
  });
  const h = connect(url);
  await until(() => frames.length === 1, 'hello');
  assert.equal(upgrades[0]?.req.headers.authorization, `Bearer ${CREDENTIAL}`);
  assert.equal(upgrades[0]?.req.url, AGENT_PATH);
  assert.deepEqual(frames[0], hello());
  // Connected but not welcomed: nothing may be sent yet.
  assert.equal(h.conn.isReady, false);
  assert.equal(h.conn.send({ type: 'heartbeat', seq: 1 }), false);
  (server as WebSocket | null)?.send(encode(welcome()));
  await until(() => h.conn.isReady, 'ready');
  assert.deepEqual(h.events, ['ready']);
  assert.equal(h.conn.send({ type: 'heartbeat', seq: 1 }), true);
  await until(() => frames.length === 2, 'heartbeat');
  assert.deepEqual(frames[1], { type: 'heartbeat', seq: 1 });
});

test('reconnects after the server closes the socket: onLost, then onReady again', async () => {
  // The first upgrade is turned away, so the welcome comes on the second attempt.
  const { wss, url } = await fakeCoordinator({}, (n) => (n === 1 ? { status: 503, body: 'busy' } : null));
  const { sockets } = welcoming(wss);
  const h = connect(url);
  await until(() => h.events.length === 1, 'first welcome');
  sockets[0]?.close(CloseCode.goingAway, 'coordinator restarting');
  await until(() => h.events.length === 3, 'second welcome');
  assert.deepEqual(h.events, ['ready', 'lost', 'ready']);
  // A welcome resets the attempt counter: the redial after a good session starts at
  // the first step of the backoff again (random 0.5 * base 10), not at the third.
  assert.deepEqual(h.redials(), [5, 5]);
});

/** A loopback port nothing listens on (bound, then released). */
async function refusedPort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('backoff: with random near 1 the delays double up to the cap and stay there', async () => {
  const port = await refusedPort();
  const started = performance.now();
  const h = connect(`http://127.0.0.1:${port}`, { random: () => 0.999 });
  await until(() => h.hellos.length >= 7, 'seven dial attempts');
  h.conn.stop();
  const elapsed = performance.now() - started;
  const delays = h.redials();
  assert.deepEqual(delays.slice(0, 6), [9, 19, 39, 79, 79, 79]);
  // Timers never fire early, so the number of dials in `elapsed` is bounded by the
  // policy: one immediate dial plus one per delay that fits.
  let budget = elapsed;
  let allowed = 1;
  for (const d of [9, 19, 39, ...Array<number>(1000).fill(79)]) {
    if (budget < d) break;
    budget -= d;
    allowed += 1;
  }
  assert.ok(h.hellos.length <= allowed, `${h.hellos.length} dials in ${elapsed.toFixed(0)} ms, policy allows ${allowed}`);
  for (let i = 1; i < 7; i++) {
    const gap = (h.hellos[i] ?? 0) - (h.hellos[i - 1] ?? 0);
    assert.ok(gap >= (delays[i - 1] ?? 0) - 1, `dial ${i} came ${gap.toFixed(1)} ms after the previous, delay was ${delays[i - 1]}`);
  }
});

test('backoff: with full jitter every delay is within [0, min(cap, base*2^n))', async () => {
  const port = await refusedPort();
  let seed = 42;
  // A small LCG: deterministic, spread over [0, 1).
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const policy = { baseMs: 5, capMs: 40 };
  const h = connect(`http://127.0.0.1:${port}`, { random, backoff: policy });
  await until(() => h.redials().length >= 12, 'twelve redials');
  h.conn.stop();
  const delays = h.redials();
  delays.forEach((d, n) => {
    const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** n);
    assert.ok(Number.isInteger(d) && d >= 0 && d < ceiling, `delay ${n} = ${d}, ceiling ${ceiling}`);
  });
  // Jitter is really applied: the delays at the cap are not all the same.
  assert.ok(new Set(delays.slice(4)).size > 1, `no jitter in ${delays.join(',')}`);
});

test('retry-after: an HTTP 503 with Retry-After: 1 at the upgrade delays the next dial', async () => {
  const { wss, url, upgrades } = await fakeCoordinator({}, (n) =>
    n === 1 ? { status: 503, body: 'busy', headers: { 'Retry-After': '1' } } : null,
  );
  welcoming(wss);
  const h = connect(url);
  await until(() => h.conn.isReady, 'welcome after the retry', 10_000);
  assert.equal(upgrades.length, 2);
  const gap = (upgrades[1]?.at ?? 0) - (upgrades[0]?.at ?? 0);
  // Without Retry-After the first redial would come after 5 ms (base 10 * 0.5).
  assert.ok(gap >= 900, `second upgrade came ${gap.toFixed(0)} ms after the 503`);
  assert.deepEqual(h.refusals, [], 'a 503 is not a refusal of the credential');
});

test('retry-after: an error frame with retryAfterMs delays the next dial', async () => {
  const { wss, url, upgrades } = await fakeCoordinator();
  wss.on('connection', (ws) => {
    ws.once('message', () => {
      if (upgrades.length === 1) {
        ws.send(encode(errorFrame(ProtocolErrorCode.tryAgainLater, 'shedding load', { fatal: true, retryAfterMs: 1000 })));
        ws.close(CloseCode.tryAgainLater, 'try again later');
      } else ws.send(encode(welcome()));
    });
  });
  const h = connect(url);
  await until(() => h.conn.isReady, 'welcome after the retry', 10_000);
  assert.equal(upgrades.length, 2);
  const gap = (upgrades[1]?.at ?? 0) - (upgrades[0]?.at ?? 0);
  assert.ok(gap >= 900, `second upgrade came ${gap.toFixed(0)} ms after the error frame`);
  assert.ok((h.redials()[0] ?? 0) >= 1000, `redial delay ${h.redials()[0]}`);
});

test('401 with a JSON error body calls onRefused with its code', async () => {
  const body = JSON.stringify({ code: 'NK_AUTH_CREDENTIAL_INVALID', message: 'unknown machine credential' });
  const { url } = await fakeCoordinator({}, () => ({ status: 401, body }));
  const h = connect(url);
  await until(() => h.refusals.length >= 1, 'refusal');
  h.conn.stop();
  assert.deepEqual(h.refusals[0], { code: 'NK_AUTH_CREDENTIAL_INVALID', message: 'unknown machine credential' });
  assert.deepEqual(h.events, []);
});

test('403 at the upgrade (a revoked machine) calls onRefused with NK_MACHINE_REVOKED', async () => {
  const body = JSON.stringify({ code: 'NK_MACHINE_REVOKED', message: 'machine node-1 was revoked' });
  const { url } = await fakeCoordinator({}, () => ({ status: 403, body }));
  const h = connect(url);
  await until(() => h.refusals.length >= 1, 'refusal');
  h.conn.stop();
  assert.deepEqual(h.refusals[0], { code: 'NK_MACHINE_REVOKED', message: 'machine node-1 was revoked' });
});

test('close code 4003 calls onRefused with NK_MACHINE_REVOKED', async () => {
  const { wss, url } = await fakeCoordinator();
  const { sockets } = welcoming(wss);
  const h = connect(url);
  await until(() => h.conn.isReady, 'welcome');
  sockets[0]?.close(CloseCode.revoked, 'machine revoked');
  await until(() => h.refusals.length >= 1, 'refusal');
  h.conn.stop();
  assert.deepEqual(h.refusals[0], { code: 'NK_MACHINE_REVOKED', message: 'machine revoked' });
  assert.deepEqual(h.events.slice(0, 2), ['ready', 'lost']);
});

test('watchdog: a coordinator that goes silent and ignores pings is dropped and redialled', async () => {
  const { wss, url, upgrades } = await fakeCoordinator({ autoPong: false });
  let pings = 0;
  welcoming(wss, 200);
  wss.on('connection', (ws) => ws.on('ping', () => void (pings += 1)));
  const h = connect(url);
  await until(() => h.events.length >= 3, 'lost and welcomed again', 15_000);
  assert.deepEqual(h.events.slice(0, 3), ['ready', 'lost', 'ready']);
  assert.ok(upgrades.length >= 2);
  assert.ok(pings >= 2, `the agent pinged only ${pings} times before giving up`);
});

test('watchdog: pongs alone keep a quiet connection alive', async () => {
  const { wss, url, upgrades } = await fakeCoordinator();
  welcoming(wss, 200);
  const h = connect(url);
  await until(() => h.conn.isReady, 'welcome');
  // Longer than the watchdog's limit (3 heartbeats, at least 3 s): only pongs arrive.
  await sleep(3600);
  assert.deepEqual(h.events, ['ready']);
  assert.equal(upgrades.length, 1);
});

test('invalid frames from the coordinator are answered with error frames and do not end the session', async () => {
  const { wss, url } = await fakeCoordinator();
  const { frames, sockets } = welcoming(wss);
  const h = connect(url);
  await until(() => h.conn.isReady, 'welcome');
  const server = sockets[0];
  assert.ok(server);
  server.send('{not json');
  server.send(JSON.stringify({ type: 'gossip' }));
  server.send(JSON.stringify({ type: 'command', commandId: 'c1' }));
  server.send(JSON.stringify([1, 2]));
  server.send(Buffer.from([1, 2, 3]), { binary: true });
  const command = { type: 'command', commandId: 'c2', kind: 'probe.now', params: {}, timeoutMs: 1000 } as const;
  server.send(encode(command));
  await until(() => h.messages.length === 1, 'the valid command');
  await until(() => frames.filter((f) => f.type === 'error').length === 5, 'five error frames');
  const codes = frames.flatMap((f) => (f.type === 'error' ? [f.code] : []));
  assert.deepEqual(codes, [
    ProtocolErrorCode.badJson,
    ProtocolErrorCode.unknownType,
    ProtocolErrorCode.invalidMessage,
    ProtocolErrorCode.badEnvelope,
    ProtocolErrorCode.binaryFrame,
  ]);
  assert.deepEqual(h.messages, [command]);
  assert.equal(h.conn.isReady, true);
  assert.deepEqual(h.events, ['ready']);
});

test('stop() right after start() leaves no connection behind', async () => {
  const { wss, url, upgrades } = await fakeCoordinator();
  welcoming(wss);
  const h = connect(url);
  h.conn.stop();
  // hello() is async: a dial already under way must notice the stop.
  await sleep(300);
  assert.equal(upgrades.length, 0, 'the agent dialled after stop()');
  assert.equal(h.conn.isReady, false);
});
