/**
 * A generative test of the HTTP API and the agent protocol (fast-check) against real
 * coordinator processes with real SQLite files. Random and mutated requests and frames;
 * after each, three properties:
 *   - the coordinator never crashes: the process lives and /healthz answers;
 *   - it always answers with a documented code: every `code` of an error body or error
 *     frame is in docs/errors.md (with the status listed there), HTTP statuses and close
 *     codes are from the documented sets, and every close but a normal one follows a
 *     fatal error frame;
 *   - a refused request or frame (and any read) changes nothing: the SQLite file's rows
 *     (but batched last-seen times), the host registration and the artifact files are
 *     the same before and after.
 *
 * Fixed seed and bounded runs (about a minute on 2 cores). Replay or widen with
 * NK_FUZZ_SEED, NK_FUZZ_HTTP_RUNS and NK_FUZZ_WS_RUNS (NK_FUZZ_KEEP keeps the data
 * dirs). Accepted requests move the coordinator's state on, so a replay is exact only
 * from a fresh start of this file.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { MAX_FRAME_BYTES } from '@nodekeeper/protocol';
import { ROUTES, requestArb, routeRequestArb, type FuzzRequest } from './harness/api-fuzz.ts';
import { batchArb, type FrameBatch } from './harness/frame-fuzz.ts';
import { GAP, describeFrame, describeRequest, judgeAnswer, judgeFrame } from './harness/fuzz-judge.ts';
import { WS_ID, hello, openAgentSession, startFuzzTarget, type FuzzTarget } from './harness/fuzz-target.ts';
import { REPO } from './harness/processes.ts';
import type { RawRequest } from './harness/raw-http.ts';
import { StateProbe, type Snapshot } from './harness/state-snapshot.ts';

const envInt = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
};
const SEED = envInt('NK_FUZZ_SEED', 20_261_203);
// 120: with ~55 routes drawn uniformly, 100 batches (~250 requests) left one route untried now and then.
const HTTP_RUNS = envInt('NK_FUZZ_HTTP_RUNS', 120);
const WS_RUNS = envInt('NK_FUZZ_WS_RUNS', 70);
/** The controllers tick once a second (grace 600 s): a state quiet for longer has settled. */
const SETTLE_QUIET_MS = 1300;
/** Shrinking re-runs against a live process; past this the failure found so far is reported. */
const TIME_LIMIT_MS = 240_000;

describe('generative: the agent protocol against a real coordinator', { timeout: 600_000 }, () => {
  let target: FuzzTarget;

  before(async () => {
    // Fault tracking is remediation's derived state: it moves on its own clock (30 s to
    // fault, 60 s to clear) after reports accepted earlier, so it is left out. A frame's
    // own effects land in machines, observations, commands and events. Remediation is
    // paused, so no ladder starts commands meanwhile.
    target = await startFuzzTarget('generative-ws', { ignoreTables: ['remediation_faults'] });
    const paused = await target.call({ method: 'POST', target: '/v1/remediations/pause', headers: [['Authorization', `Bearer ${target.ctx.admin}`]], body: null });
    assert.equal(paused.kind === 'answer' && paused.response.status, 200);
    await target.probe.settle(SETTLE_QUIET_MS);
  });
  after(async () => target?.stop());

  /**
   * Whether the batch before had a report or hello accepted: the controllers may still
   * act on it at their next tick. (Accepted heartbeats and error frames move only the
   * last-seen time, or nothing.)
   */
  let moving = true;

  async function runBatch(batch: FrameBatch): Promise<void> {
    const s = await openAgentSession(target);
    const problems: string[] = [];
    try {
      if (batch.hello) await hello(s);
      const start = await target.probe.settle(moving ? SETTLE_QUIET_MS : 150);
      moving = false;
      let allRefused = true;
      for (const frame of batch.frames) {
        if (s.closed !== null) break;
        const seen = s.received.length;
        s.ws.send(frame.data, { binary: frame.binary });
        await s.sync();
        const verdict = judgeFrame(frame, s.received.slice(seen), s.closed);
        for (const p of verdict.problems) problems.push(`${p}, after ${describeFrame(frame)}`);
        if (!verdict.refused) {
          allRefused = false;
          if (!frame.binary && /"type"\s*:\s*"(report|hello)"/.test(frame.data.toString('utf8'))) moving = true;
        }
      }
      if (problems.length === 0 && allRefused) {
        await new Promise((r) => setTimeout(r, 150)); // three flush intervals
        const diff = StateProbe.diff(start, target.probe.snapshot());
        if (diff !== '') problems.push(`refused frames changed the state:\n${diff}`);
      }
    } finally {
      await s.end();
    }
    const sent = `frames:\n${batch.frames.map(describeFrame).join('\n')}`;
    await target.assertAlive(sent);
    if (problems.length > 0) throw new Error(`${problems.join('\n')}\n${sent}`);
  }

  test(`random and mutated frames of every type (seed ${SEED}, ${WS_RUNS} connections)`, async (t) => {
    t.diagnostic(`seed ${SEED}; replay with NK_FUZZ_SEED=${SEED} NK_FUZZ_WS_RUNS=${WS_RUNS}`);
    await fc.assert(fc.asyncProperty(batchArb(WS_ID), runBatch), { seed: SEED, numRuns: WS_RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS });
  });

  // The gaps the generator met in the agent gateway, kept as plain cases.

  test(`${GAP.oversize}: it gets NK_PROTO_FRAME_TOO_LARGE before the close`, async () => {
    const s = await openAgentSession(target);
    await hello(s);
    s.ws.send('x'.repeat(MAX_FRAME_BYTES + 1));
    assert.equal((await s.closing).code, 1009);
    const errors = s.received.map((r) => JSON.parse(r)).filter((m) => m.type === 'error');
    assert.deepEqual(errors.map((e) => [e.code, e.fatal]), [['NK_PROTO_FRAME_TOO_LARGE', true]]);
  });

  test(`${GAP.notUtf8}: it gets NK_PROTO_BAD_JSON and the connection stays`, async () => {
    const s = await openAgentSession(target);
    await hello(s);
    s.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    await s.sync();
    try {
      assert.equal(s.closed, null, `closed: ${JSON.stringify(s.closed)}`);
      assert.equal(JSON.parse(s.received.at(-1) ?? '{}').code, 'NK_PROTO_BAD_JSON');
    } finally {
      await s.end();
    }
  });

  test('error frames an agent chooses are not logged at warn without limit', async () => {
    const marker = `fuzz-flood-${Date.now()}`;
    const s = await openAgentSession(target);
    await hello(s);
    // 60 frames: within the burst of 100, so the rate limit lets every one through.
    for (let i = 0; i < 60; i++) s.ws.send(JSON.stringify({ type: 'error', code: 'NK_AGENT_PROBE_FAILED', message: `${marker} ${i} ${'A'.repeat(3000)}`, fatal: false }));
    await s.sync();
    await s.end();
    await new Promise((r) => setTimeout(r, 300));
    const warned = target.coord.log().split('\n').filter((l) => l.includes(marker) && /"level":(40|50|60)/.test(l)).length;
    assert.ok(warned <= 5, `${warned} of 60 attacker-chosen error frames (3 KB of text each) were logged at warn or above`);
  });

  test(`${GAP.handshake}: it gets a documented code`, async () => {
    const upgrade = (extra: Array<readonly [string, string]>, method = 'GET'): RawRequest => ({
      method, target: '/v1/agent/connect', body: null,
      headers: [['Authorization', `Bearer ${target.wsCredential}`], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ...extra],
    });
    const problems: string[] = [];
    for (const r of [
      upgrade([['Sec-WebSocket-Version', '13']]),
      upgrade([['Sec-WebSocket-Version', '99'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']]),
      upgrade([['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']], 'POST'),
    ]) for (const p of judgeAnswer(r, await target.call(r))) problems.push(`${p}: ${describeRequest(r)}`);
    assert.deepEqual(problems, []);
  });
});

describe('generative: the HTTP API against a real coordinator', { timeout: 600_000 }, () => {
  let target: FuzzTarget;

  before(async () => {
    target = await startFuzzTarget('generative-api');
    await target.probe.settle(SETTLE_QUIET_MS);
  });
  after(async () => target?.stop());

  // What the generator found, kept as plain cases (each failed on the code before its fix).
  const found: Array<[string, RawRequest]> = [
    // `new URL('//', base)` threw in the request listener: the coordinator exited.
    ['a request target of // (crashed the coordinator)', { method: 'GET', target: '//', headers: [], body: null }],
    ['an upgrade with a request target of // (crashed the coordinator)', { method: 'GET', target: '//', headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade']], body: null }],
    ['a request target of http://[::1 (crashed the coordinator)', { method: 'GET', target: 'http://[::1', headers: [], body: null }],
    // node's parser refused these, and the connection was destroyed without an answer.
    ['Content-Length: -1 (no answer)', { method: 'GET', target: '/metrics', headers: [['Content-Length', '-1']], body: null }],
    ['headers over 16 KiB (no answer)', { method: 'GET', target: '/healthz', headers: [['X-Huge', 'h'.repeat(20_000)]], body: null }],
    ['CONNECT (no answer)', { method: 'CONNECT', target: '/v1/clusterpackageversion', headers: [], body: null }],
    // node answered these itself, with no code.
    ['Expect: teapot (417 with an empty body)', { method: 'GET', target: '/healthz', headers: [['Expect', 'teapot']], body: null }],
    ["an upgrade to a path that is not the agents' (404 with an empty body)", { method: 'GET', target: '/v1/machines', headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade']], body: null }],
  ];
  for (const [name, request] of found) {
    test(`found by the generator: ${name} is answered with a documented code`, async () => {
      assert.deepEqual(judgeAnswer(request, await target.call(request)), []);
      await target.assertAlive(name);
    });
  }

  test('the generator knows every route the server declares (coordinator/src/server/*-routes.ts)', () => {
    const dir = path.join(REPO, 'coordinator/src/server');
    const declared = readdirSync(dir).filter((f) => f.endsWith('-routes.ts'))
      .flatMap((f) => [...readFileSync(path.join(dir, f), 'utf8').matchAll(/pattern: [^\n]*?, name: '([a-z-]+)'/g)].map((m) => m[1]!));
    assert.ok(declared.length >= 40, `found only ${declared.length} routes: the pattern no longer matches the route files?`);
    const known = new Set(ROUTES.map((r) => r.name));
    assert.deepEqual(declared.filter((n) => !known.has(n)).sort(), [], 'routes the generator does not try: add them to ROUTES in test/harness/api-fuzz.ts');
  });

  const tally = new Map<string, number>();
  /** The state after the last request, and that request when it was refused or a read. */
  let last: { state: Snapshot; unchanged: FuzzRequest | null } | null = null;

  async function runRequests(reqs: readonly FuzzRequest[]): Promise<void> {
    const problems: string[] = [];
    const { probe } = target;
    const viewBefore = await target.apiView();
    let changedNothing = true;
    for (const fr of reqs) {
      const before = last === null ? await probe.settle(SETTLE_QUIET_MS) : probe.snapshot();
      if (last?.unchanged != null) {
        // Nothing ran since: a change now came late from the refused request before.
        const late = StateProbe.diff(last.state, before);
        if (late !== '') problems.push(`the state changed after a refused or read-only request had been answered:\n${late}\n  request (${last.unchanged.route}): ${describeRequest(last.unchanged.request)}`);
      }
      const result = await target.call(fr.request);
      const status = result.kind === 'answer' ? result.response.status : 0;
      tally.set(`${fr.route} ${status}`, (tally.get(`${fr.route} ${status}`) ?? 0) + 1);
      const judged = judgeAnswer(fr.request, result);
      for (const p of judged) problems.push(`${p}\n  request (${fr.route}): ${describeRequest(fr.request)}`);
      const refused = status >= 400 || status === 0;
      if (refused || fr.readOnly) {
        const afterState = probe.snapshot();
        const diff = StateProbe.diff(before, afterState);
        if (diff !== '') problems.push(`a ${refused ? `refused (${status})` : 'read-only'} request changed the state:\n${diff}\n  request (${fr.route}): ${describeRequest(fr.request)}`);
        last = { state: afterState, unchanged: fr };
      } else {
        // Accepted: its effects may still be moving (a rollout, remediation); wait them out.
        last = { state: await probe.settle(SETTLE_QUIET_MS), unchanged: null };
        changedNothing = false;
      }
      if (problems.length > 0) break;
    }
    if (problems.length === 0 && changedNothing) {
      // The same through the API: state held in memory, not only in the file.
      const viewAfter = await target.apiView();
      for (const [p, v] of viewBefore) if (viewAfter.get(p) !== v) problems.push(`GET ${p} changed after refused and read-only requests only:\n${v.slice(0, 600)}\n->\n${viewAfter.get(p)?.slice(0, 600)}`);
      if (problems.length > 0) problems.push(`requests:\n${reqs.map((r) => `  (${r.route}) ${describeRequest(r.request)}`).join('\n')}`);
    }
    await target.assertAlive(`requests:\n${reqs.map((r) => `  (${r.route}) ${describeRequest(r.request)}`).join('\n')}`);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  }

  test(`random and mutated requests on every route (seed ${SEED}, ${HTTP_RUNS} batches)`, async (t) => {
    t.diagnostic(`seed ${SEED}; replay with NK_FUZZ_SEED=${SEED} NK_FUZZ_HTTP_RUNS=${HTTP_RUNS}`);
    // Every route at least once, whatever the seed draws: one request per route, four to a batch, run first.
    const everyRoute = ROUTES.map((r, i) => fc.sample(routeRequestArb(target.ctx, r), { seed: SEED + i, numRuns: 1 })[0]!);
    const examples = Array.from({ length: Math.ceil(everyRoute.length / 4) }, (_, i): [FuzzRequest[]] => [everyRoute.slice(i * 4, i * 4 + 4)]);
    await fc.assert(fc.asyncProperty(fc.array(requestArb(target.ctx), { minLength: 1, maxLength: 4 }), runRequests), { seed: SEED, numRuns: HTTP_RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, examples });
    t.diagnostic(`answers by route and status: ${[...tally.entries()].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`);
    if (HTTP_RUNS >= 100) {
      const tried = new Set([...tally.keys()].map((k) => k.split(' ')[0]));
      assert.deepEqual(ROUTES.map((r) => r.name).filter((n) => !tried.has(n)), [], 'every route was tried');
    }
  });
});
