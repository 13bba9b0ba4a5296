import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseWorkerMessage } from './worker-ipc.ts';

const valid = [
  { t: 'listening', port: 7443 },
  { t: 'upgrade', session: 1, credential: 'nkm_abc', source: '10.0.0.1' },
  { t: 'upgrade', session: 2, credential: null, source: 'unknown' },
  { t: 'opened', session: 3 },
  { t: 'closed', session: 3 },
  { t: 'message', session: 3, message: { type: 'report', seq: 1, full: true, report: {} } },
  { t: 'message', session: 3, message: { type: 'command.result', commandId: 'c1', ok: true } },
  { t: 'heartbeats', sessions: [1, 2, 3] },
  { t: 'metrics', received: { heartbeat: 3 }, rejected: {}, upgradesRejected: { NK_HTTP_BAD_REQUEST: 1 }, upgradeSeconds: [0.01], handshakeSeconds: [], connectionsRefused: 0, logLinesDropped: 0, connections: { agents: 2, other: 1 } },
];

test('the messages a worker sends pass', () => {
  for (const m of valid) assert.deepEqual(parseWorkerMessage(m), { ok: true, message: m }, JSON.stringify(m));
});

test('malformed messages are refused with the part that is wrong named, never thrown', () => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /not an object/],
    [[1, 2], /not an object/],
    ['upgrade', /not an object/],
    [{ t: 'shutdown' }, /unknown type "shutdown"/],
    [{ t: { toString: () => 'x' } }, /unknown type/],
    [{ t: 'listening', port: 70000 }, /listening: port/],
    [{ t: 'upgrade', session: -1, credential: null, source: 'a' }, /upgrade: session/],
    [{ t: 'upgrade', session: 1.5, credential: null, source: 'a' }, /upgrade: session/],
    [{ t: 'upgrade', session: 1, credential: 'x'.repeat(513), source: 'a' }, /upgrade: credential/],
    [{ t: 'upgrade', session: 1, credential: 7, source: 'a' }, /upgrade: credential/],
    [{ t: 'upgrade', session: 1, credential: null, source: { a: 1 } }, /upgrade: source/],
    [{ t: 'opened', session: '1' }, /opened: session/],
    [{ t: 'closed' }, /closed: session/],
    [{ t: 'message', session: 1, message: { type: 'welcome' } }, /not an agent message/],
    [{ t: 'message', session: 1, message: { type: '__proto__' } }, /not an agent message/],
    [{ t: 'message', session: 1, message: { type: 'toString' } }, /not an agent message/],
    [{ t: 'message', session: 1, message: 'heartbeat' }, /not an agent message/],
    [{ t: 'heartbeats', sessions: [1, 'x'] }, /heartbeats: sessions/],
    [{ t: 'heartbeats', sessions: {} }, /heartbeats: sessions/],
    [{ ...valid[8], received: { heartbeat: -1 } }, /metrics: counters/],
    [{ ...valid[8], rejected: { x: Number.NaN } }, /metrics: counters/],
    [{ ...valid[8], upgradeSeconds: [Infinity] }, /metrics: observations/],
    [{ ...valid[8], connections: null }, /metrics: connections/],
    [{ ...valid[8], logLinesDropped: -1 }, /metrics: logLinesDropped/],
  ];
  for (const [raw, problem] of cases) {
    const r = parseWorkerMessage(raw);
    assert.equal(r.ok, false, JSON.stringify(raw));
    if (!r.ok) assert.match(r.problem, problem);
  }
});

test('any value at all is answered (accepted or refused), never thrown', () => {
  fc.assert(fc.property(fc.oneof(fc.anything(), fc.record({ t: fc.constantFrom('listening', 'upgrade', 'opened', 'closed', 'message', 'heartbeats', 'metrics'), session: fc.anything(), message: fc.anything(), sessions: fc.anything(), port: fc.anything() })), (raw) => {
    const r = parseWorkerMessage(raw);
    assert.equal(typeof r.ok, 'boolean');
  }), { numRuns: 2000 });
});
