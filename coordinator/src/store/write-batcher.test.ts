import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '@nodekeeper/common';
import type { NodeReport } from '@nodekeeper/protocol';
import { openStore, type Store } from './db.ts';
import { StoreErrorCode } from './errors.ts';
import type { StatusWrite } from './status.ts';
import { WriteBatcher } from './write-batcher.ts';
import { identity, sampleReport, tempDir } from './test-support.ts';

const tmp = tempDir();
after(() => tmp.remove());

let clock = 1_000_000;
let n = 0;
function fleet(names: string[]): { store: Store; file: string } {
  const file = tmp.file(`batch-${++n}.db`);
  const store = openStore(file, { now: () => clock });
  const { token } = store.createToken({ ttlMs: 60_000, maxUses: names.length, description: '' });
  for (const name of names) store.enroll({ token, identity: identity(name), agentVersion: '0.1.0' });
  return { store, file };
}

function statusOf(report: NodeReport | null, at: number): StatusWrite {
  return {
    report,
    reportChangedAt: at,
    liveness: { state: 'Ready', since: at, reason: 'AgentHeartbeat', message: 'ok' },
    conditions: [{ type: 'Ready', status: 'True', reason: 'AgentHeartbeat', message: 'ok', lastTransitionTime: at }],
    agentVersion: '0.1.0',
  };
}

function withKubelet(r: NodeReport, health: 'healthy' | 'unhealthy', raw = r.kubelet.version?.raw ?? ''): NodeReport {
  return { ...r, kubelet: { ...r.kubelet, health, reason: health === 'healthy' ? 'HealthzOk' : 'HealthzRefused', version: { raw, semver: null, source: 'binary' } } };
}

test('N heartbeats for M machines cost one transaction and M rows', () => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  const { store } = fleet(names);
  const batcher = new WriteBatcher(store, { intervalMs: 60_000, autoStart: false });
  const txBefore = store.counters.transactions;
  for (let i = 0; i < 1000; i++) batcher.lastSeen(names[i % names.length] ?? 'a', 2_000_000 + i);
  assert.deepEqual(batcher.pending, { lastSeen: 5, statuses: 0 });
  assert.equal(store.counters.transactions, txBefore, 'heartbeats alone write nothing');
  const result = batcher.flush();
  assert.equal(store.counters.transactions, txBefore + 1);
  assert.equal(result?.lastSeenRows, 5);
  assert.equal(batcher.counters.flushes, 1);
  assert.equal(batcher.counters.rowsWritten, 5);
  assert.deepEqual(store.listMachines().map((m) => m.lastSeenAt), [2_000_995, 2_000_996, 2_000_997, 2_000_998, 2_000_999]);
  assert.equal(batcher.flush(), null, 'nothing pending: no transaction');
  assert.equal(store.counters.transactions, txBefore + 1);
  batcher.close();
  store.close();
});

test('last-seen never moves backwards, even across flushes', () => {
  const { store } = fleet(['a']);
  const batcher = new WriteBatcher(store, { intervalMs: 60_000, autoStart: false });
  batcher.lastSeen('a', 500);
  batcher.lastSeen('a', 400);
  batcher.flush();
  batcher.lastSeen('a', 300);
  batcher.flush();
  assert.equal(store.getMachine('a')?.lastSeenAt, 500);
  batcher.close();
  store.close();
});

test('the latest status wins, but every health flap between flushes reaches the history', () => {
  const { store } = fleet(['a', 'b']);
  const batcher = new WriteBatcher(store, { intervalMs: 60_000, autoStart: false });
  const base = sampleReport('a');
  batcher.status('a', statusOf(base, 10));
  batcher.status('a', statusOf(withKubelet(base, 'unhealthy'), 20));
  batcher.status('a', statusOf(withKubelet(base, 'unhealthy'), 25)); // same again: no new observation
  batcher.status('a', statusOf(withKubelet(base, 'healthy'), 30));
  batcher.status('b', statusOf(sampleReport('b'), 40));
  batcher.lastSeen('a', 31);
  const txBefore = store.counters.transactions;
  const result = batcher.flush();
  assert.equal(store.counters.transactions, txBefore + 1);
  assert.deepEqual(result, { lastSeenRows: 1, statusRows: 2, observationRows: 4 + 2 + 4, missing: [] });
  assert.equal(store.getMachine('a')?.reportChangedAt, 30);
  assert.deepEqual(store.machineObservations('a', 100, 'kubelet').map((o) => [o.at, o.health, o.reason]), [
    [10, 'healthy', 'HealthzOk'],
    [20, 'unhealthy', 'HealthzRefused'],
    [30, 'healthy', 'HealthzOk'],
  ]);
  // Nothing changed: a status write, but no history.
  batcher.status('a', statusOf(withKubelet(base, 'healthy'), 30));
  assert.equal(batcher.flush()?.observationRows, 0);
  // A version change is history even when health stays.
  batcher.status('a', statusOf(withKubelet(base, 'healthy', 'Kubernetes v1.32.0'), 50));
  assert.equal(batcher.flush()?.observationRows, 1);
  assert.deepEqual(store.machineObservations('a', 1, 'kubelet').map((o) => o.versionRaw), ['Kubernetes v1.32.0']);
  assert.equal(batcher.counters.observationRows, 11);
  batcher.close();
  store.close();
});

test('a status for a machine the store does not have is skipped and named', () => {
  const { store } = fleet(['a']);
  const batcher = new WriteBatcher(store, { intervalMs: 60_000, autoStart: false });
  batcher.status('ghost', statusOf(sampleReport('ghost'), 1));
  batcher.status('a', statusOf(null, 1));
  assert.deepEqual(batcher.flush(), { lastSeenRows: 0, statusRows: 1, observationRows: 0, missing: ['ghost'] });
  batcher.close();
  store.close();
});

test('close flushes; what was written is there after reopening', () => {
  const { store, file } = fleet(['a']);
  const batcher = new WriteBatcher(store, { intervalMs: 60_000 });
  const report = sampleReport('a');
  const status = statusOf(report, 77);
  batcher.status('a', status);
  batcher.lastSeen('a', 78);
  batcher.close();
  // Agent connections close after the last flush at shutdown: their last-seen is let go, not a crash.
  batcher.lastSeen('a', 79);
  assert.throws(() => batcher.status('a', status), TypeError, 'a status after close is a bug');
  store.close();
  const again = openStore(file);
  const m = again.getMachine('a');
  assert.deepEqual(m?.report, report);
  assert.equal(m?.reportChangedAt, 77);
  assert.equal(m?.lastSeenAt, 78);
  assert.deepEqual(m?.liveness, status.liveness);
  assert.deepEqual(m?.conditions, status.conditions);
  assert.equal(again.machineObservations('a', 10).length, 4);
  again.close();
});

test('the timer flushes on its own', async () => {
  const { store } = fleet(['a']);
  const batcher = new WriteBatcher(store, { intervalMs: 5, random: () => 0.5 });
  batcher.lastSeen('a', 123);
  // Waits for the flush without a time limit of its own: the runner's timeout fails it.
  while (batcher.counters.flushes === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(store.getMachine('a')?.lastSeenAt, 123);
  batcher.close();
  store.close();
});

test('a timed flush holds the loop one slice at a time and writes the rest in the next turns, in order', async () => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  const { store } = fleet(names);
  // A slice far shorter than one row: every timed flush takes exactly one event or status.
  const batcher = new WriteBatcher(store, { intervalMs: 5, random: () => 0.5, sliceMs: 1e-9 });
  for (const [i, name] of names.entries()) {
    batcher.lastSeen(name, 500 + i);
    batcher.status(name, statusOf(sampleReport(name), 10 + i));
  }
  for (const reason of ['First', 'Second', 'Third']) batcher.event({ object: 'machine/a', type: 'Normal', reason, message: reason });
  const txBefore = store.counters.transactions;
  const turns: number[] = [];
  while (batcher.pending.statuses > 0 || batcher.counters.eventRows < 3) {
    await new Promise((r) => setImmediate(r));
    turns.push(batcher.counters.flushes);
  }
  assert.equal(batcher.counters.flushes, 8, 'three events and five statuses, one transaction each');
  assert.equal(store.counters.transactions, txBefore + 8);
  assert.ok(turns.filter((f, i) => f !== (turns[i - 1] ?? 0)).every((f, i, moved) => f === (moved[i - 1] ?? 0) + 1), `one slice a turn: ${turns.join(',')}`);
  assert.deepEqual(store.machineEvents('a', 10).map((e) => e.reason).filter((r) => r !== 'Enrolled'), ['First', 'Second', 'Third']);
  assert.deepEqual(store.listMachines().map((m) => [m.lastSeenAt, m.reportChangedAt]), names.map((_, i) => [500 + i, 10 + i]));
  assert.equal(batcher.counters.lastSeenRows, 5, 'last-seen times go whole with the first slice');
  batcher.close();
  store.close();
});

test('a failed flush keeps everything queued and says NK_STORE_WRITE_FAILED', () => {
  const { store } = fleet(['a']);
  const batcher = new WriteBatcher(store, { intervalMs: 60_000, autoStart: false });
  batcher.lastSeen('a', 5);
  batcher.status('a', statusOf(null, 5));
  store.close();
  assert.throws(() => batcher.flush(), (err) => hasCode(err, StoreErrorCode.writeFailed) && err.cause instanceof Error);
  assert.deepEqual(batcher.pending, { lastSeen: 1, statuses: 1 });
  assert.equal(batcher.counters.failedFlushes, 1);
  assert.equal(batcher.counters.flushes, 0);
});

test('options are checked', () => {
  const { store } = fleet(['a']);
  assert.throws(() => new WriteBatcher(store, { intervalMs: 0 }), RangeError);
  assert.throws(() => new WriteBatcher(store, { intervalMs: 10, jitter: 1 }), RangeError);
  assert.throws(() => new WriteBatcher(store, { intervalMs: 10, sliceMs: 0 }), RangeError);
  store.close();
});
