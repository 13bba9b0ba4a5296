/**
 * A generative test of the HTTP API and the agent protocol (fast-check) against a real
 * coordinator process with a real SQLite file. Random and mutated requests and frames;
 * after each, three properties:
 *   - the coordinator never crashes: the process lives and /healthz answers;
 *   - it always answers with a documented code: every `code` of an error body or error
 *     frame is in docs/errors.md (with the status listed there), HTTP statuses and close
 *     codes are from the documented sets, every close but a normal one follows a fatal
 *     error frame;
 *   - a refused request or frame (and any read) changes nothing: the SQLite file's rows
 *     (but batched last-seen times), the host registration and the artifact files are
 *     the same before and after.
 *
 * Fixed seed and bounded runs (about a minute on 2 cores). Replay or widen with
 * NK_FUZZ_SEED, NK_FUZZ_HTTP_RUNS and NK_FUZZ_WS_RUNS. The coordinator's state moves
 * with accepted requests, so a replay is exact only from a fresh start of this file.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { CloseCode, MAX_FRAME_BYTES, decodeCoordinatorMessage, type MachineIdentity } from '@nodekeeper/protocol';
import { ROUTES, requestArb, type FuzzContext, type FuzzRequest } from './harness/api-fuzz.ts';
import { readErrorCatalog } from './harness/error-docs.ts';
import { batchArb, type FrameBatch, type FuzzFrame } from './harness/frame-fuzz.ts';
import { createToken, startCoordinator, type CoordinatorProc } from './harness/processes.ts';
import { rawRequest, type RawRequest, type RawResult } from './harness/raw-http.ts';
import { StateProbe } from './harness/state-snapshot.ts';

const envInt = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
};
const SEED = envInt('NK_FUZZ_SEED', 20_261_203);
const HTTP_RUNS = envInt('NK_FUZZ_HTTP_RUNS', 120);
const WS_RUNS = envInt('NK_FUZZ_WS_RUNS', 80);

/** Statuses the API documents (docs/nkctl.md "API", docs/errors.md); 500 is a bug. */
const HTTP_STATUSES = new Set([101, 200, 201, 400, 401, 403, 404, 405, 409, 413, 417, 431, 502, 503]);
/** Close codes of docs/protocol.md. */
const CLOSE_CODES = new Set<number>([1000, 1001, 1009, ...Object.values(CloseCode)]);
/** The controllers tick once a second (grace 600 s): a state quiet for longer has settled. */
const SETTLE_QUIET_MS = 1300;

const catalog = readErrorCatalog();
const enrollIdentity = (machineId: string, hostname: string): MachineIdentity => ({ machineId, hostname, addresses: [], zone: null, labels: { pool: 'a' } });
const WS_ID = enrollIdentity('e'.repeat(32), 'ws-node');

/** A request or frame, shortened for a failure message. */
function describeRequest(r: RawRequest): string {
  const body = r.body === null ? 'no body' : `${r.body.length} bytes: ${JSON.stringify(r.body.subarray(0, 160).toString('latin1'))}`;
  return `${JSON.stringify(r.method)} ${JSON.stringify(r.target.slice(0, 160))}${r.target.length > 160 ? `...(${r.target.length})` : ''} headers ${JSON.stringify(r.headers.map(([k, v]) => [k, v.length > 60 ? `${v.slice(0, 40)}...(${v.length})` : v]))} ${body}`;
}
const describeFrame = (f: FuzzFrame) => `${f.note}: ${f.binary ? 'binary' : 'text'} ${f.data.length} bytes ${JSON.stringify(f.data.subarray(0, 160).toString('latin1'))}`;

/** The reasons an HTTP answer breaks the contract; empty when it keeps it. */
export function judgeAnswer(req: RawRequest, result: RawResult): string[] {
  if (result.kind === 'no-answer') return [`no HTTP answer (${result.error}); received ${JSON.stringify(result.received)}`];
  const { status, body } = result.response;
  const problems: string[] = [];
  if (!HTTP_STATUSES.has(status)) problems.push(`status ${status} is not one the API documents`);
  if (status >= 400 && req.method !== 'HEAD') {
    let parsed: { code?: unknown; message?: unknown } | null = null;
    try {
      parsed = JSON.parse(body.toString('utf8')) as { code?: unknown; message?: unknown };
    } catch {
      problems.push(`error answer ${status} without a JSON body: ${JSON.stringify(body.subarray(0, 200).toString('latin1'))}`);
    }
    if (parsed !== null) {
      const code = parsed.code;
      if (typeof code !== 'string' || !catalog.codes.has(code)) problems.push(`error code ${JSON.stringify(code)} (status ${status}) is not in docs/errors.md`);
      else if (catalog.httpStatus.has(code) && catalog.httpStatus.get(code) !== status) problems.push(`${code} answered ${status}; docs/errors.md says ${catalog.httpStatus.get(code)}`);
      if (typeof parsed.message !== 'string' || parsed.message === '') problems.push(`error answer ${status} without a message`);
    }
  }
  return problems;
}

describe('generative: the HTTP API and the agent protocol against a real coordinator', { timeout: 600_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let probe: StateProbe;
  let ctx: FuzzContext;
  let wsCredential: string;
  const host = '127.0.0.1';

  const call = (r: RawRequest) => rawRequest(host, coord.port, ca, r);
  const postJson = async (target: string, body: unknown, auth?: string) => {
    const res = await call({ method: 'POST', target, headers: [['Content-Type', 'application/json'], ...(auth === undefined ? [] : [['Authorization', `Bearer ${auth}`] as const])], body: Buffer.from(JSON.stringify(body)) });
    assert.equal(res.kind, 'answer');
    return { status: res.response.status, body: JSON.parse(res.response.body.toString('utf8')) };
  };

  /** What was sent just before the coordinator was first found dead (shrinking runs on against a dead process). */
  let firstDeath: string | null = null;

  /** The process lives and /healthz answers. */
  async function assertAlive(after: string): Promise<void> {
    if (coord.child.exitCode !== null || coord.child.signalCode !== null) {
      firstDeath ??= after;
      throw new Error(`the coordinator died (${coord.child.exitCode ?? coord.child.signalCode}), first after ${firstDeath}\n${coord.log().slice(-3000)}`);
    }
    const r = await call({ method: 'GET', target: '/healthz', headers: [], body: null });
    if (r.kind !== 'answer' || r.response.status !== 200) throw new Error(`/healthz did not answer 200 after ${after}: ${JSON.stringify(r).slice(0, 500)}`);
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-generative-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--liveness-grace', '600000', '--flush-interval', '50']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    const admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    const readOnly = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
    const { token } = await createToken(coord.nkctlConfig, 10_000);
    const creds: Record<string, string> = {};
    for (const [id, name] of [['1'.repeat(32), 'node-1'], ['2'.repeat(32), 'node-2'], [WS_ID.machineId, WS_ID.hostname]] as const) {
      const r = await postJson('/v1/enroll', { token, identity: enrollIdentity(id, name), agentVersion: 'fuzz' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      creds[name] = r.body.credential;
    }
    wsCredential = creds['ws-node']!;
    // A token of its own for the fuzzer to revoke, so enrollment stays reachable.
    const { token: spare } = await createToken(coord.nkctlConfig, 1);
    // An artifact for the rollout body's target, so a valid rollout is accepted and its
    // requests (pause, resume, abort, rollback) reach a real rollout.
    const pushed = await call({ method: 'PUT', target: '/v1/artifacts?package=containerd&version=1.7.99', headers: [['Authorization', `Bearer ${admin}`], ['Content-Type', 'application/octet-stream']], body: Buffer.from('containerd 1.7.99') });
    assert.equal(pushed.kind === 'answer' && pushed.response.status, 201);
    ctx = { admin, readOnly, machine: creds['node-1']!, token, tokenId: spare.split('.')[0]!, machines: ['node-1', 'node-2'], port: coord.port };
    probe = new StateProbe(coord.dataDir);
    // The controllers take in the new machines on their next ticks; start from rest.
    await probe.settle(SETTLE_QUIET_MS);
  });

  after(async () => {
    probe?.close();
    await coord?.stop();
    if (process.env['NK_FUZZ_KEEP'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  // What the generator found, kept as plain cases (each failed on the code before its fix).
  const found: Array<[string, RawRequest]> = [
    // `new URL('//', base)` threw in the request listener: the coordinator exited.
    ['a request target of // (crashed the coordinator)', { method: 'GET', target: '//', headers: [], body: null }],
    ['an upgrade with a request target of // (crashed the coordinator)', { method: 'GET', target: '//', headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade']], body: null }],
    ['a request target of http://[::1 (crashed the coordinator)', { method: 'GET', target: 'http://[::1', headers: [], body: null }],
    // node's parser refused these and the connection was destroyed without an answer.
    ['Content-Length: -1 (no answer)', { method: 'GET', target: '/metrics', headers: [['Content-Length', '-1']], body: null }],
    ['headers over 16 KiB (no answer)', { method: 'GET', target: '/healthz', headers: [['X-Huge', 'h'.repeat(20_000)]], body: null }],
    ['CONNECT (no answer)', { method: 'CONNECT', target: '/v1/clusterpackageversion', headers: [], body: null }],
    // node answered these itself, with no code.
    ['Expect: teapot (417 with an empty body)', { method: 'GET', target: '/healthz', headers: [['Expect', 'teapot']], body: null }],
    ['an upgrade to a path that is not the agents\' (404 with an empty body)', { method: 'GET', target: '/v1/machines', headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade']], body: null }],
  ];
  for (const [name, request] of found) {
    test(`found by the generator: ${name} is answered with a documented code`, async () => {
      const result = await call(request);
      assert.deepEqual(judgeAnswer(request, result), []);
      await assertAlive(name);
    });
  }

  // ---- the agent protocol ----

  interface Session {
    readonly ws: WebSocket;
    readonly received: string[];
    closed: { code: number; reason: string } | null;
    readonly closing: Promise<{ code: number; reason: string }>;
  }

  async function openSession(): Promise<Session> {
    const ws = new WebSocket(`wss://${host}:${coord.port}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${wsCredential}` }, maxPayload: 1 << 20 });
    const s: Session = { ws, received: [], closed: null, closing: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }))) };
    void s.closing.then((c) => (s.closed = c));
    ws.on('message', (d) => s.received.push(String(d)));
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return s;
  }

  /** Resolves once the server has handled everything sent before (a ping is answered in order), or closed. */
  function sync(s: Session, k: number): Promise<void> {
    if (s.closed !== null || s.ws.readyState !== WebSocket.OPEN) return s.closing.then(() => undefined);
    const tag = `sync-${k}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no pong within 10 s: the coordinator stopped reading')), 10_000);
      const onPong = (d: Buffer) => {
        if (d.toString() !== tag) return;
        done();
      };
      const done = () => {
        clearTimeout(timer);
        s.ws.off('pong', onPong);
        resolve();
      };
      s.ws.on('pong', onPong);
      void s.closing.then(done);
      s.ws.ping(tag);
    });
  }

  /** Known gaps of the gateway (reported to the lead, not fixed here): frame -> what happened. */
  const gatewayGaps = new Map<string, string>();

  async function runBatch(batch: FrameBatch): Promise<void> {
    const s = await openSession();
    const problems: string[] = [];
    try {
      let k = 0;
      if (batch.hello) {
        s.ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'fuzz', identity: WS_ID }));
        await sync(s, k++);
        const welcome = s.received.shift();
        if (welcome === undefined || JSON.parse(welcome).type !== 'welcome') throw new Error(`no welcome: ${welcome}`);
      }
      const start = await probe.settle(150);
      let allRefused = true;
      for (const frame of batch.frames) {
        if (s.closed !== null) break;
        const seen = s.received.length;
        s.ws.send(frame.data, { binary: frame.binary });
        await sync(s, k++);
        const answers = s.received.slice(seen);
        const decoded = answers.map((a) => decodeCoordinatorMessage(a));
        for (const [i, d] of decoded.entries()) {
          if (!d.ok) problems.push(`the coordinator sent a frame that is not its protocol (${d.error.code}): ${answers[i]!.slice(0, 200)}`);
          else if (d.message.type === 'error' && !catalog.codes.has(d.message.code)) problems.push(`error frame code ${d.message.code} is not in docs/errors.md`);
        }
        const errors = decoded.flatMap((d) => (d.ok && d.message.type === 'error' ? [d.message] : []));
        if (s.closed !== null) {
          const { code } = s.closed;
          const fatal = errors.some((e) => e.fatal);
          if (!CLOSE_CODES.has(code)) {
            if (code === 1007 && !frame.binary && !isUtf8(frame.data)) gatewayGaps.set('a text frame that is not UTF-8 is closed 1007 with no NK_PROTO_BAD_JSON error frame (docs/errors.md: "error frame; the frame is ignored")', describeFrame(frame));
            else problems.push(`closed with ${code}, which docs/protocol.md does not list, after ${describeFrame(frame)}`);
          } else if (code === 1009 && !fatal) {
            if (frame.data.length > MAX_FRAME_BYTES) gatewayGaps.set('an oversize frame gets a bare 1009 close, with no NK_PROTO_FRAME_TOO_LARGE error frame', describeFrame(frame));
            else problems.push(`closed 1009 after a frame under the limit: ${describeFrame(frame)}`);
          } else if (code !== 1000 && code !== 1001 && !fatal) problems.push(`closed ${code} without a fatal error frame before it, after ${describeFrame(frame)}`);
        } else if (errors.length === 0) allRefused = false;
      }
      if (problems.length === 0 && allRefused) {
        await new Promise((r) => setTimeout(r, 150)); // three flush intervals
        const diff = StateProbe.diff(start, probe.snapshot());
        if (diff !== '') problems.push(`refused frames changed the state:\n${diff}`);
      }
    } finally {
      if (s.closed === null) {
        s.ws.close(1000);
        await s.closing;
      }
    }
    await assertAlive(`frames:\n${batch.frames.map(describeFrame).join('\n')}`);
    if (problems.length > 0) throw new Error(`${problems.join('\n')}\nframes:\n${batch.frames.map(describeFrame).join('\n')}`);
  }

  test(`agent protocol: random and mutated frames of every type (seed ${SEED}, ${WS_RUNS} connections)`, async (t: TestContext) => {
    t.diagnostic(`seed ${SEED}; replay with NK_FUZZ_SEED=${SEED} NK_FUZZ_WS_RUNS=${WS_RUNS}`);
    await fc.assert(fc.asyncProperty(batchArb(WS_ID), runBatch), { seed: SEED, numRuns: WS_RUNS, interruptAfterTimeLimit: 240_000 });
    for (const [gap, example] of gatewayGaps) t.diagnostic(`known gateway gap (agent-gateway.ts, the lead's): ${gap}; e.g. ${example}`);
  });

  // ---- the HTTP API ----

  const tally = new Map<string, number>();
  /** The state after the last request, and that request when it was refused or a read. */
  let last: { state: ReturnType<StateProbe['snapshot']>; unchanged: FuzzRequest | null } | null = null;

  async function runRequests(reqs: readonly FuzzRequest[]): Promise<void> {
    const problems: string[] = [];
    for (const fr of reqs) {
      const beforeState = last === null ? await probe.settle(SETTLE_QUIET_MS) : probe.snapshot();
      if (last?.unchanged != null) {
        // Nothing ran since: a change now came late from the refused request before.
        const late = StateProbe.diff(last.state, beforeState);
        if (late !== '') problems.push(`the state changed after a refused or read-only request had been answered:\n${late}\n  request (${last.unchanged.route}): ${describeRequest(last.unchanged.request)}`);
      }
      const result = await call(fr.request);
      const status = result.kind === 'answer' ? result.response.status : 0;
      tally.set(`${fr.route} ${status}`, (tally.get(`${fr.route} ${status}`) ?? 0) + 1);
      for (const p of judgeAnswer(fr.request, result)) problems.push(`${p}\n  request (${fr.route}): ${describeRequest(fr.request)}`);
      const refused = status >= 400 || status === 0;
      if (refused || fr.readOnly) {
        const afterState = probe.snapshot();
        const diff = StateProbe.diff(beforeState, afterState);
        if (diff !== '') problems.push(`a ${refused ? `refused (${status})` : 'read-only'} request changed the state:\n${diff}\n  request (${fr.route}): ${describeRequest(fr.request)}`);
        last = { state: afterState, unchanged: fr };
      } else {
        // Accepted: its effects may still be moving (a rollout, remediation); wait them out.
        last = { state: await probe.settle(SETTLE_QUIET_MS), unchanged: null };
      }
      if (problems.length > 0) break;
    }
    await assertAlive(`requests:\n${reqs.map((r) => `  (${r.route}) ${describeRequest(r.request)}`).join('\n')}`);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  }

  test(`HTTP API: random and mutated requests on every route (seed ${SEED}, ${HTTP_RUNS} batches)`, async (t: TestContext) => {
    t.diagnostic(`seed ${SEED}; replay with NK_FUZZ_SEED=${SEED} NK_FUZZ_HTTP_RUNS=${HTTP_RUNS}`);
    await fc.assert(fc.asyncProperty(fc.array(requestArb(ctx), { minLength: 1, maxLength: 4 }), runRequests), { seed: SEED, numRuns: HTTP_RUNS, interruptAfterTimeLimit: 240_000 });
    const routesHit = new Set([...tally.keys()].map((k) => k.split(' ')[0]));
    t.diagnostic(`answers by route and status: ${[...tally.entries()].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`);
    if (HTTP_RUNS >= 100) {
      const missed = ROUTES.map((r) => r.name).filter((n) => !routesHit.has(n));
      assert.deepEqual(missed, [], 'every route was tried');
    }
  });
});

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}
