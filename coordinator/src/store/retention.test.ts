import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { openStore } from './db.ts';
import { identity, tempDir } from './test-support.ts';
import { RetentionController } from '../controllers/retention-controller.ts';
import { createLogger } from '@nodekeeper/common';

const DAY = 86_400_000;
const log = createLogger({ name: 'test', level: 'silent' });

test('events: the oldest go first, by age or beyond the cap, a batch at a time; nobody else can delete them', () => {
  const t = tempDir();
  let now = 1_000 * DAY;
  const store = openStore(t.file(), { now: () => now });
  for (let i = 0; i < 10; i++) store.recordEvent({ object: 'x/old', type: 'Normal', reason: 'Old', message: `${i}` });
  now += 10 * DAY;
  for (let i = 0; i < 5; i++) store.recordEvent({ object: 'x/new', type: 'Normal', reason: 'New', message: `${i}` });
  const before = now - 5 * DAY;
  assert.equal(store.pruneEvents(before, 0, 4), 4, 'one batch at most');
  assert.equal(store.pruneEvents(before, 0, 100), 6);
  assert.equal(store.pruneEvents(before, 0, 100), 0, 'the young ones stay');
  assert.deepEqual(store.listEvents({ limit: 100 }).map((e) => e.reason), ['New', 'New', 'New', 'New', 'New']);
  assert.equal(store.pruneEvents(-Infinity, 2, 100), 3, 'the cap keeps the newest 2');
  assert.deepEqual(store.listEvents({ limit: 100 }).map((e) => e.message), ['3', '4']);
  // The gate is closed again: another writer cannot delete the audit trail.
  const other = new Database(t.file());
  assert.throws(() => other.prepare('DELETE FROM events').run(), /append-only/);
  assert.throws(() => other.prepare("UPDATE events SET message = 'x'").run(), /append-only/);
  other.close();
  store.close();
  t.remove();
});

test('commands: finished ones older than the limit; open ones never', () => {
  const t = tempDir();
  let now = 1_000 * DAY;
  const store = openStore(t.file(), { now: () => now });
  const { token } = store.createToken({ ttlMs: DAY, maxUses: 1, description: '' });
  store.enroll({ token, identity: identity('node-1'), agentVersion: 't' });
  const cmd = (id: string) => store.createCommand({ id, machine: 'node-1', kind: 'service.restart', params: {}, owner: null, timeoutMs: 1000 });
  cmd('old-done');
  cmd('old-open');
  store.finishCommand('old-done', { state: 'Succeeded', result: null, error: null, message: '' });
  now += 20 * DAY;
  cmd('new-done');
  store.finishCommand('new-done', { state: 'Failed', result: null, error: null, message: '' });
  assert.equal(store.pruneCommands(now - 14 * DAY, 100), 1);
  assert.equal(store.getCommand('old-done'), null);
  assert.notEqual(store.getCommand('old-open'), null, 'an open command is never pruned');
  assert.notEqual(store.getCommand('new-done'), null);
  store.close();
  t.remove();
});

test('tokens: spent longer ago than the limit, unless a machine still names it', () => {
  const t = tempDir();
  let now = 1_000 * DAY;
  const store = openStore(t.file(), { now: () => now });
  const enrolled = store.createToken({ ttlMs: DAY, maxUses: 1, description: 'enrolled node-1' });
  store.enroll({ token: enrolled.token, identity: identity('node-1'), agentVersion: 't' });
  const expired = store.createToken({ ttlMs: DAY, maxUses: 1, description: 'expired' });
  const revoked = store.createToken({ ttlMs: 30 * DAY, maxUses: 1, description: 'revoked' });
  store.revokeToken(revoked.record.id);
  const live = store.createToken({ ttlMs: 30 * DAY, maxUses: 1, description: 'live' });
  now += 9 * DAY;
  assert.equal(store.pruneTokens(now - 7 * DAY, 100), 2);
  assert.deepEqual(store.listTokens().map((x) => x.id).sort(), [enrolled.record.id, live.record.id].sort());
  // Once its machine is deleted, the enrolling token goes too.
  store.deleteMachine('node-1', '');
  assert.equal(store.pruneTokens(now - 7 * DAY, 100), 1);
  assert.deepEqual(store.listTokens().map((x) => x.id), [live.record.id]);
  assert.ok(expired.record.id !== '');
  store.close();
  t.remove();
});

test("observations: old ones go, each component's latest stays; a batch looks at a bounded number of rows", () => {
  const t = tempDir();
  let now = 1_000 * DAY;
  const store = openStore(t.file(), { now: () => now });
  const { token } = store.createToken({ ttlMs: DAY, maxUses: 1, description: '' });
  store.enroll({ token, identity: identity('node-1'), agentVersion: 't' });
  const db = new Database(t.file());
  const insert = db.prepare('INSERT INTO observations (machine, at, component, health, version_raw, reason) VALUES (?, ?, ?, ?, NULL, ?)');
  for (let i = 0; i < 20; i++) insert.run('node-1', now + i, i % 2 === 0 ? 'kubelet' : 'cni', i % 4 < 2 ? 'healthy' : 'unhealthy', 'r');
  db.close();
  now += 30 * DAY;
  let cursor = 0;
  let deleted = 0;
  let batches = 0;
  for (;;) {
    const r = store.pruneObservations(now - 14 * DAY, cursor, 3);
    batches += 1;
    deleted += r.deleted;
    cursor = r.lastId;
    if (r.done) break;
  }
  assert.equal(deleted, 18);
  assert.ok(batches >= 7, `${batches} batches of at most 3 rows`);
  assert.deepEqual(store.machineObservations('node-1', 100).map((o) => o.component).sort(), ['cni', 'kubelet']);
  store.close();
  t.remove();
});

test('machine delete: its rows go in one transaction with an event; NK_MACHINE_NOT_FOUND after', () => {
  const t = tempDir();
  const store = openStore(t.file(), { now: () => 1_000 * DAY });
  const { token } = store.createToken({ ttlMs: DAY, maxUses: 2, description: '' });
  store.enroll({ token, identity: identity('node-1'), agentVersion: 't' });
  store.enroll({ token, identity: identity('node-2'), agentVersion: 't' });
  store.createCommand({ id: 'c1', machine: 'node-1', kind: 'service.restart', params: {}, owner: null, timeoutMs: 1000 });
  store.saveRemediation({ machines: new Map([['node-1', { phase: 'Idle' } as never]]), faults: new Map([['node-1', { type: 'x' } as never]]) });
  const gone = store.deleteMachine('node-1', 'test');
  assert.equal(gone.commands, 1);
  assert.equal(store.getMachine('node-1'), null);
  assert.equal(store.getCommand('c1'), null);
  const rec = store.getRemediation();
  assert.equal((rec?.state as { machines?: Record<string, unknown> } | null)?.machines?.['node-1'], undefined);
  assert.equal(rec?.faults.get('node-1'), undefined);
  assert.notEqual(store.getMachine('node-2'), null, 'the others stay');
  assert.match(store.machineEvents('node-1', 10).at(-1)?.message ?? '', /deleted \(test\): 1 command/);
  assert.throws(() => store.deleteMachine('node-1', ''), { code: 'NK_MACHINE_NOT_FOUND' });
  store.close();
  t.remove();
});

test('the controller works a backlog off in batches, letting the event loop run in between', async () => {
  const t = tempDir();
  let now = 1_000 * DAY;
  const store = openStore(t.file(), { now: () => now });
  store.transaction(() => {
    for (let i = 0; i < 5_000; i++) store.recordEvent({ object: 'x/y', type: 'Normal', reason: 'Old', message: `${i}` });
  });
  now += 40 * DAY;
  const pruned: number[] = [];
  const retention = new RetentionController({ store, log, pruned: (_k, n) => pruned.push(n) }, {
    eventsMaxAgeMs: 30 * DAY, eventsMaxRows: 0, commandsMaxAgeMs: 0, tokensMaxAgeMs: 0, observationsMaxAgeMs: 0, intervalMs: 1000, batchRows: 100, maxBatchesPerRound: 30,
  });
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 0);
  const first = await retention.runOnce();
  clearInterval(timer);
  assert.equal(first.events, 3_000, 'at most maxBatchesPerRound batches in a round');
  assert.ok(pruned.every((n) => n <= 100));
  assert.ok(ticks > 0, 'timers ran during the round');
  assert.equal((await retention.runOnce()).events, 2_000, 'the next round goes on');
  await retention.stop();
  store.close();
  t.remove();
});
